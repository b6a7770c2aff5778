"""Gradient inversion of federated client updates: "Inverting gradients" (Geiping et al. 2020, arXiv:2003.14053),
with the L2 loss of "Deep leakage from gradients" (Zhu et al. 2019, arXiv:1906.08935) as an option and the labels
recovered from the update first (Zhao et al. 2020, iDLG, arXiv:2001.02610; for a batch, Wainakh et al. 2022, LLG,
arXiv:2111.04706).

Threat model: an honest-but-curious server. It knows the global model (the model's current weights) and the
clients' protocol: a client holds ``B`` images and takes ``K`` full-batch steps of plain SGD (learning rate
``client_lr``, cross-entropy, the network in training mode) from the global weights, then sends its update (new
weights − global weights) as the defense releases it: ``release(update, rng)`` is the defense's
``released_update`` (FedAvg: the update itself; DP-FedAvg: clipped to norm C, plus Gaussian noise of std σ·C). The
server sees one client's released update and reconstructs that client's images.

The attack, per victim (``victims`` clients per setting, each with ``B`` distinct training images drawn with the
seed):

1. Labels from the last linear layer's update (``recover_labels``), its sign reversed to give the gradient
   direction. A class is present when its weight-gradient row has a negative entry: the row is Σ_i (p_ic − y_ic)·h_i
   over the images, and with non-negative features h (a ReLU before the last layer) it is ≥ 0 for an absent class.
   For one image that finds the true class alone (iDLG); for a batch it is the row-minimum rule of Yin et al. 2021
   (exact for distinct labels, at most B classes, most negative first). Repeated labels are then filled by LLG's
   greedy rule (Wainakh et al. 2022) on the bias (or the rows summed): one image's impact is estimated as the found
   classes' negative mass over B; the found class with the most negative remaining entry takes the next slot, and
   its entry rises by that impact.
2. Images: ``restarts`` dummy batches drawn uniformly in [0, 1] are optimised for ``iterations`` steps of signed
   Adam (step ``step_size``, divided by 10 at 3/8, 5/8 and 7/8 of the iterations, each step followed by a clamp to
   the box [0, 1]), on the distance between the update the dummy batch produces (``K`` SGD steps unrolled and
   differentiated through, ``create_graph=True``) and the observed one: ``loss="cosine"`` (1 − cosine similarity
   over all parameters together, Geiping et al.) or ``"l2"`` (squared distance, DLG), plus ``tv_weight`` × the
   total variation of the dummy images. The restart with the lowest final loss is kept (the attacker cannot see the
   truth).
3. Scoring: each reconstruction against its best-matching true image of that client (one-to-one, maximal total
   PSNR: ``benchmark.image_metrics.best_match``), PSNR and SSIM.

Deterministic given the seed: the victims' images, the release's noise and every restart's start are drawn from
the seed, and the attack runs on one torch thread. The caller's model is not touched: the attack works on a copy.

Example::

    bench evaluate --defense fedavg,dp-fedavg --privacy "gradient-inversion:batch_sizes=1 4 8,local_steps=1 5"
"""

from __future__ import annotations

import copy
import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from benchmark import PRIVACY
from benchmark.constraints import Constrained, Interval, Options
from benchmark.image_metrics import best_match
from benchmark.privacy import InversionOutcome, InversionSetting

log = logging.getLogger(__name__)

LOSSES = ("cosine", "l2")
#: The largest client batch and the most local steps a setting may ask for.
MAX_BATCH = 64
MAX_STEPS = 100
#: The fractions of the iterations after which the step size is divided by 10 (Geiping et al.'s schedule).
MILESTONES = (3 / 8, 5 / 8, 7 / 8)


@dataclass(frozen=True)
class Counts(Interval):
    """Ascending distinct integers, each in [``low``, ``high``]: ``(1, 4, 8)``; from text, separated by spaces
    (``--privacy "gradient-inversion:batch_sizes=1 4 8"``), or a TOML list."""

    def convert(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):  # a TOML number: one count
            return (value,)
        items = value.split() if isinstance(value, str) else value
        if isinstance(items, list | tuple) and all(isinstance(item, str) for item in items):
            try:
                return tuple(int(item) for item in items)
            except ValueError:
                return value
        return tuple(items) if isinstance(items, list) else value

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, tuple) and len(value) > 0 and all(Interval.accepts(self, v) for v in value)
                and list(value) == sorted(set(value)))

    def describe(self) -> str:
        return f"ascending distinct ints in {self.bounds(', ')}, separated by spaces"


@PRIVACY.register("gradient-inversion", "inverting-gradients")
@dataclass(frozen=True)
class GradientInversion(Constrained):
    """Gradient inversion of a federated client's update (Geiping et al. 2020; DLG's L2 loss as an option; labels
    as in iDLG / LLG), swept over client batch sizes × local SGD steps.

    Args:
        batch_sizes: the client batch sizes B to attack, ascending (as text, separated by spaces: "1 4 8").
        local_steps: the numbers K of local full-batch SGD steps to attack, ascending ("1 5").
        victims: clients attacked per setting (each with B images of the train split).
        iterations: optimisation steps per restart.
        restarts: random starts per victim; the one with the lowest final loss is kept.
        step_size: signed Adam's initial step on the dummy images.
        tv_weight: weight of the total-variation prior.
        loss: "cosine" (Geiping et al.) or "l2" (DLG).
        client_lr: the SGD learning rate of the clients' protocol.
        psnr_threshold: a reconstruction counts as recovered at this PSNR (dB) or more. 25 dB (RMS error 5.6 % of
            the range, below one of digits' 17 grey levels) is the issue's bar for a reconstructed image.
    """

    batch_sizes: tuple[int, ...] = (1, 4, 8)
    local_steps: tuple[int, ...] = (1, 5)
    victims: int = 2
    iterations: int = 500
    restarts: int = 2
    step_size: float = 0.1
    tv_weight: float = 1e-4
    loss: str = "cosine"
    client_lr: float = 0.1
    psnr_threshold: float = 25.0

    parameter_constraints: ClassVar[dict] = {
        "batch_sizes": Counts(int, 1, MAX_BATCH),
        "local_steps": Counts(int, 1, MAX_STEPS),
        "victims": Interval(int, 1, 1_000),
        "iterations": Interval(int, 1, 100_000),
        "restarts": Interval(int, 1, 100),
        "step_size": Interval(float, 0, None, closed="neither"),
        "tv_weight": Interval(float, 0, None),
        "loss": Options(*LOSSES),
        "client_lr": Interval(float, 0, None, closed="neither"),
        "psnr_threshold": Interval(float, 0, None, closed="neither"),
    }
    kind: ClassVar[str] = "inversion"

    def settings(self) -> list[tuple[int, int]]:
        """The (batch size, local steps) pairs attacked, smallest batch and fewest steps first (the headline)."""
        return [(batch, steps) for batch in self.batch_sizes for steps in self.local_steps]

    def check_data(self, data: Any) -> None:
        """Refuse (``ValueError``) data this attack cannot take, before any work (``check_inputs``)."""
        check_inputs(data, self.batch_sizes[-1])

    def run(self, model: Any, data: Any, release: Any, *, seed: int, device: str) -> InversionOutcome:
        """Attack ``victims`` clients in every setting; ``release(update, rng)`` is what the defense sends."""
        start = time.perf_counter()
        check_inputs(data, self.batch_sizes[-1])
        with one_torch_thread():
            client = Client.of(model, device, self.client_lr, data.input_shape)
            results = tuple(self.attack_setting(client, data, release, seed, batch, steps)
                            for batch, steps in self.settings())
        return InversionOutcome(attack="gradient-inversion", settings=results, psnr_threshold=self.psnr_threshold,
                                seconds=time.perf_counter() - start)

    def attack_setting(self, client: Client, data: Any, release: Any, seed: int, batch: int,
                       steps: int) -> InversionSetting:
        """Attack ``victims`` clients holding ``batch`` images each and taking ``steps`` local steps."""
        import torch

        psnrs, ssims = [], []
        for victim in range(self.victims):
            images, labels = victim_batch(data, batch, seed, victim)
            true_update = client.update(torch.from_numpy(images), torch.from_numpy(labels), steps)
            rng = np.random.default_rng([seed, batch, steps, victim, 0x5E1])
            released = release(flatten(true_update).double().cpu().numpy(), rng)
            observed = client.unflatten(released)
            guessed = recover_labels(*last_layer(observed, data.nb_classes), batch)
            starts = [int(np.random.SeedSequence([seed, batch, steps, victim, r]).generate_state(1)[0])
                      for r in range(self.restarts)]
            reconstruction = self.reconstruct(client, observed, guessed, steps, starts)
            matching = best_match(reconstruction, images)
            psnrs.extend(matching.psnr)
            ssims.extend(matching.ssim)
        log.info("gradient inversion, batch %d, %d local steps: mean PSNR %.1f dB", batch, steps, np.mean(psnrs))
        return InversionSetting(batch_size=batch, local_steps=steps, psnr=tuple(psnrs), ssim=tuple(ssims))

    def reconstruct(self, client: Client, observed: list, labels: Any, steps: int, starts: list[int]) -> np.ndarray:
        """The best of the restarts (lowest final loss): one dummy batch per seed in ``starts``."""
        best, best_loss = None, math.inf
        for start in starts:
            images, loss = self.descend(client, observed, labels, steps, start)
            if best is None or loss < best_loss:
                best, best_loss = images, loss
        return best

    def descend(self, client: Client, observed: list, labels: Any, steps: int, start: int) -> tuple[np.ndarray, float]:
        """Signed Adam on dummy images from a uniform start drawn from ``start``; returns them and their final loss."""
        import torch

        shape = (len(labels), *client.input_shape)
        dummy = torch.rand(shape, generator=torch.Generator().manual_seed(start)).to(client.device)
        dummy.requires_grad_(True)
        optimiser = torch.optim.Adam([dummy], lr=self.step_size)
        milestones = [int(fraction * self.iterations) for fraction in MILESTONES]
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimiser, milestones=milestones, gamma=0.1)
        for _ in range(self.iterations):
            loss = self.objective(client, observed, dummy, labels, steps, create_graph=True)
            (gradient,) = torch.autograd.grad(loss, dummy)
            dummy.grad = torch.nan_to_num(gradient).sign()
            optimiser.step()
            schedule.step()
            with torch.no_grad():
                dummy.clamp_(0.0, 1.0)
        final = self.objective(client, observed, dummy, labels, steps, create_graph=False)
        return dummy.detach().cpu().numpy(), float(final.detach())

    def objective(self, client: Client, observed: list, dummy: Any, labels: Any, steps: int, *,
                  create_graph: bool) -> Any:
        """The update distance of the dummy batch plus the total-variation prior."""
        simulated = client.update(dummy, labels, steps, create_graph=create_graph)
        return update_distance(simulated, observed, self.loss) + self.tv_weight * total_variation(dummy)


@dataclass(frozen=True)
class Client:
    """The clients' protocol, simulated by the server on a copy of the global model: ``update`` runs ``steps``
    full-batch SGD steps from the global weights (``params``, leaves of the autograd graph) and returns the weight
    difference per parameter."""

    net: Any  # a copy of the model, in training mode, on the device
    params: dict  # name → global weight (a leaf that requires grad)
    lr: float
    device: str
    input_shape: tuple[int, ...]

    @classmethod
    def of(cls, model: Any, device: str, lr: float, input_shape: tuple[int, ...]) -> Client:
        import torch

        net = copy.deepcopy(model).to(torch.device(device)).train()
        params = {name: p.detach().clone().requires_grad_(True) for name, p in net.named_parameters()}
        return cls(net=net, params=params, lr=lr, device=device, input_shape=tuple(input_shape))

    def update(self, x: Any, y: Any, steps: int, *, create_graph: bool = False) -> list:
        """New weights − global weights after ``steps`` SGD steps on ``(x, y)``; differentiable in ``x`` when
        ``create_graph``. The true client's update (``create_graph`` False) comes back detached."""
        import torch
        from torch.func import functional_call

        x, y = x.to(self.device), y.to(self.device)
        weights = dict(self.params)
        for _ in range(steps):
            loss = torch.nn.functional.cross_entropy(functional_call(self.net, weights, (x,)), y)
            grads = torch.autograd.grad(loss, list(weights.values()), create_graph=create_graph)
            weights = {name: w - self.lr * g for (name, w), g in zip(weights.items(), grads, strict=True)}
        difference = [weights[name] - self.params[name] for name in self.params]
        return difference if create_graph else [d.detach() for d in difference]

    def unflatten(self, vector: np.ndarray) -> list:
        """A flat update (``parameters_to_vector`` order) as one float32 tensor per parameter."""
        import torch

        flat = torch.from_numpy(np.asarray(vector, dtype=np.float32).reshape(-1)).to(self.device)
        sizes = [p.numel() for p in self.params.values()]
        if flat.numel() != sum(sizes):
            raise ValueError(f"the released update has {flat.numel()} values, the model {sum(sizes)} parameters")
        return [part.view_as(p) for part, p in zip(flat.split(sizes), self.params.values(), strict=True)]


def check_inputs(data: Any, largest_batch: int) -> None:
    """Refuse data the attack cannot take: inputs that are not ``(C, H, W)`` images, or fewer training images than
    the largest client batch."""
    if len(data.input_shape) != 3:
        raise ValueError(f"gradient-inversion reconstructs images of shape (C, H, W), got inputs of shape "
                         f"{data.input_shape}")
    if len(data.y_train) < largest_batch:
        raise ValueError(f"gradient-inversion: batch_sizes asks for a client of {largest_batch} images, but the "
                         f"train split holds {len(data.y_train)}")


@contextmanager
def one_torch_thread():
    """Run the block on one torch thread (the result then depends on nothing else), restoring the count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def victim_batch(data: Any, batch: int, seed: int, victim: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``victim``-th client's ``batch`` distinct training images (float32) and labels (int64), drawn from the
    seed; the same images for every number of local steps."""
    rng = np.random.default_rng([seed, batch, victim, 0x1D])
    index = np.sort(rng.choice(len(data.y_train), size=batch, replace=False))
    return data.batch("train", index), data.y_train[index].astype(np.int64)


def flatten(update: list) -> Any:
    """Per-parameter tensors as one vector (``parameters_to_vector`` order)."""
    import torch

    return torch.cat([part.reshape(-1) for part in update])


def last_layer(update: list, nb_classes: int) -> tuple[Any, Any]:
    """The last linear layer's gradient direction from an SGD update (its sign reversed): its weight ``(classes,
    features)`` and its bias (None without one)."""
    weight, bias = update[-1], None
    if weight.ndim == 1 and len(update) > 1:
        weight, bias = update[-2], weight
    if weight.ndim != 2 or weight.shape[0] != nb_classes or (bias is not None and bias.shape != (nb_classes,)):
        raise ValueError(f"gradient-inversion recovers labels from a last linear layer of {nb_classes} outputs; the "
                         f"model's last parameters have shapes {[tuple(p.shape) for p in update[-2:]]}")
    return -weight.detach(), None if bias is None else -bias.detach()


def recover_labels(weight: Any, bias: Any, batch: int) -> Any:
    """The labels of ``batch`` images from the last layer's gradient (``last_layer``), in ascending order: the
    classes whose row has a negative entry, then LLG's greedy fill for repeats (see the module docstring)."""
    import torch

    weight = weight.double().cpu()
    counts = (bias if bias is not None else weight.sum(dim=1)).double().cpu()
    lowest = weight.min(dim=1).values
    ranked = torch.argsort(lowest).tolist()
    labels = [c for c in ranked if lowest[c] < 0][:batch] or ranked[:1]
    found = torch.tensor(labels)
    impact = float(-counts[found].sum()) / batch
    remaining = counts.clone()
    remaining[found] += impact
    while len(labels) < batch:
        chosen = int(found[torch.argmin(remaining[found])])
        labels.append(chosen)
        remaining[chosen] += impact
    return torch.tensor(sorted(labels), dtype=torch.int64)


def update_distance(simulated: list, observed: list, loss: str) -> Any:
    """1 − the cosine similarity of the two updates over all parameters together (``"cosine"``), or their squared
    distance (``"l2"``)."""
    if loss == "l2":
        return sum(((s - o) ** 2).sum() for s, o in zip(simulated, observed, strict=True))
    dot = sum((s * o).sum() for s, o in zip(simulated, observed, strict=True))
    norms = sum((s * s).sum() for s in simulated).sqrt() * sum((o * o).sum() for o in observed).sqrt()
    return 1.0 - dot / norms.clamp_min(1e-30)


def total_variation(images: Any) -> Any:
    """Mean absolute difference of horizontally plus vertically adjacent pixels (Geiping et al.'s prior)."""
    across = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    down = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return across + down
