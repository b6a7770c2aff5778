"""Randomized-smoothing certificates (Cohen, Rosenfeld & Kolter 2019, "Certified adversarial robustness via
randomized smoothing", arXiv:1902.02918): the smoothed classifier g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ²I), is
constant within the L2 ball of radius σ·Φ⁻¹(p_A) around x, where p_A lower-bounds the top class's probability.

* Pure maths on class counts (numpy/scipy): ``clopper_pearson_lower``, ``certify_counts`` (the paper's CERTIFY),
  ``predict_counts`` (PREDICT), ``certified_accuracy`` (the curve over L2 radii, with the abstain rate).
* Sampling (torch, imported inside): ``sample_counts`` (the base classifier's argmax over Gaussian draws) and
  ``certify`` (n0 selection draws, then N estimation draws from a separate stream), which returns a ``Certification``.

scipy is imported inside the functions that need it, so that records (``Certification``) load without it.

As in Cohen's reference code (locuslab/smoothing, ``code/core.py``), the noise is added to the raw input and the
noisy input is not clipped to the data range; any normalisation belongs inside the model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.privacy import from_fields

if TYPE_CHECKING:  # pragma: no cover
    import torch

logger = logging.getLogger(__name__)

#: The class ``certify_counts`` and ``predict_counts`` return when they abstain (Cohen's ``Smooth.ABSTAIN``).
ABSTAIN = -1
#: Cohen et al.'s settings: n0 selection draws, α, N estimation draws on a GPU, inputs per forward pass.
DEFAULT_N0 = 100
DEFAULT_ALPHA = 0.001
GPU_N = 100_000
CPU_N = 10_000
DEFAULT_BATCH = 1000


def check_parameters(*, sigma: float, n0: int, n: int, alpha: float) -> None:
    """Refuse a certification setting before any work: σ ≤ 0, n0 < 1, N < n0, α outside (0, 1)."""
    _check_sigma(sigma)
    if not n0 >= 1:
        raise ValueError(f"n0 must be >= 1, got {n0}")
    if not n >= n0:
        raise ValueError(f"n must be at least n0 (N < n0: N={n}, n0={n0})")
    _check_alpha(alpha)


def check_radius_grid(radius_grid: Any) -> tuple[float, ...]:
    """The L2 radii of a certified-accuracy curve as floats; a radius ≤ 0 (or not finite) is refused."""
    radii = tuple(float(r) for r in np.atleast_1d(np.asarray(radius_grid, dtype=float)))
    for r in radii:
        if not 0 < r < float("inf"):
            raise ValueError(f"radius must be > 0 and finite, got {r} in the radius grid")
    return radii


def default_n(device: str) -> int:
    """N estimation draws by device: Cohen's 100,000 on a GPU, 10,000 on a CPU (a tenth of the cost per sample)."""
    return GPU_N if str(device).startswith("cuda") else CPU_N


def _check_sigma(sigma: float) -> None:
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def clopper_pearson_lower(k: Any, n: Any, alpha: float) -> Any:
    """One-sided (1 − α) Clopper–Pearson lower bound on a binomial proportion from ``k`` successes in ``n`` draws:
    the α quantile of Beta(k, n − k + 1), 0 for k = 0 (Cohen et al.'s ``lowerConfBound``, statsmodels'
    ``proportion_confint(k, n, alpha=2α, method="beta")[0]``). Vectorised; a float for scalar inputs."""
    from scipy.stats import beta

    _check_alpha(alpha)
    k, n = np.asarray(k), np.asarray(n)
    if not (np.issubdtype(k.dtype, np.integer) and np.issubdtype(n.dtype, np.integer)):
        raise ValueError(f"k and n must be integer counts, got {k.dtype} and {n.dtype}")
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ValueError("k must lie in [0, n] with n >= 1")
    bound = np.where(k == 0, 0.0, beta.ppf(alpha, np.maximum(k, 1), n - k + 1))
    return float(bound) if bound.ndim == 0 else bound


def _counts(counts: Any, name: str) -> np.ndarray:
    array = np.asarray(counts)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer) or np.any(array < 0):
        raise ValueError(f"{name} must be non-negative integer counts shaped (n_samples, n_classes), got "
                         f"{array.dtype} {array.shape}")
    if np.any(array.sum(axis=1) < 1):
        raise ValueError(f"{name}: every sample needs at least one draw")
    return array


def certify_counts(counts0: Any, counts: Any, *, sigma: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Cohen et al.'s CERTIFY on counts, per sample (row): ĉ_A = argmax of the n0 selection counts ``counts0``; p_A =
    ``clopper_pearson_lower`` of ĉ_A's share of the N estimation ``counts`` (drawn independently of ``counts0``);
    ABSTAIN with radius 0 if p_A ≤ 1/2, else ĉ_A with radius σ·Φ⁻¹(p_A). Returns (predicted, radius) arrays."""
    from scipy.stats import norm

    _check_sigma(sigma)
    counts0, counts = _counts(counts0, "counts0"), _counts(counts, "counts")
    if counts0.shape != counts.shape:
        raise ValueError(f"counts0 and counts must have the same shape, got {counts0.shape} and {counts.shape}")
    selected = counts0.argmax(axis=1)
    p_a = np.atleast_1d(clopper_pearson_lower(counts[np.arange(len(counts)), selected], counts.sum(axis=1), alpha))
    certified = p_a > 0.5
    radius = np.where(certified, sigma * norm.ppf(np.where(certified, p_a, 0.5)), 0.0)
    return np.where(certified, selected, ABSTAIN), radius


def predict_counts(counts: Any, *, alpha: float) -> np.ndarray:
    """Cohen et al.'s PREDICT on counts, per sample: the top class if the two-sided binomial test of the top two
    counts (n_A of n_A + n_B at p = 1/2) gives a p-value ≤ α, else ABSTAIN (a wrong class with probability ≤ α)."""
    from scipy.stats import binomtest

    _check_alpha(alpha)
    counts = _counts(counts, "counts")
    if counts.shape[1] < 2:
        raise ValueError(f"counts needs at least 2 classes, got {counts.shape[1]}")
    ordered = np.sort(counts, axis=1)
    first, second = ordered[:, -1], ordered[:, -2]
    p_values = [binomtest(int(a), int(a + b), p=0.5).pvalue for a, b in zip(first, second, strict=True)]
    top = counts.argmax(axis=1)
    return np.where(np.asarray(p_values) <= alpha, top, ABSTAIN)


def certified_accuracy(predicted: Any, radii: Any, labels: Any, radius_grid: Any) -> tuple[np.ndarray, float]:
    """Certified accuracy at each radius r of ``radius_grid`` (the share of samples predicted correctly with a
    certified radius ≥ r; an abstention never counts), and the abstain rate: Cohen et al.'s curve (their Fig. 6)."""
    grid = np.asarray(check_radius_grid(radius_grid))
    predicted, radii, labels = np.asarray(predicted), np.asarray(radii, dtype=float), np.asarray(labels)
    if not predicted.ndim == radii.ndim == labels.ndim == 1 or not len(predicted) == len(radii) == len(labels) > 0:
        raise ValueError(f"predicted, radii and labels must be non-empty and of one length, got {predicted.shape}, "
                         f"{radii.shape} and {labels.shape}")
    correct = (predicted == labels) & (predicted != ABSTAIN)
    accuracy = (correct[None, :] & (radii[None, :] >= grid[:, None])).mean(axis=1)
    return accuracy, float(np.mean(predicted == ABSTAIN))


@dataclass(frozen=True, kw_only=True)
class Certification:
    """CERTIFY run on a model's samples: its setting (σ, n0 selection and N estimation draws, α, ``batch`` noisy
    inputs per forward pass, ``seed`` of the noise), per sample the class (ABSTAIN = -1) and certified L2 radius (0
    when abstaining), and its cost: ``seconds`` and ``forward_passes`` (noisy inputs classified, n_samples·(n0 + N))."""

    sigma: float
    n0: int
    n: int
    alpha: float
    batch: int
    predicted: tuple[int, ...]
    radius: tuple[float, ...]
    seconds: float
    forward_passes: int
    seed: int | None = None

    @property
    def abstain_rate(self) -> float:
        return sum(p == ABSTAIN for p in self.predicted) / len(self.predicted) if self.predicted else float("nan")

    def curve(self, labels: Any, radius_grid: Any) -> tuple[np.ndarray, float]:
        """``certified_accuracy`` of these certificates against ``labels``."""
        return certified_accuracy(self.predicted, self.radius, labels, radius_grid)

    @classmethod
    def from_json(cls, data: Any) -> Certification:
        return from_fields(cls, data, predicted=tuple, radius=tuple)


def _device_of(model: torch.nn.Module) -> torch.device:
    import torch

    tensor = next(model.parameters(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _count_batches(model, inputs, *, sigma, num, batch_size, nb_classes, generator) -> torch.Tensor:
    import torch

    total = len(inputs) * num
    flat = torch.zeros(len(inputs) * nb_classes, dtype=torch.int64, device=inputs.device)
    for start in range(0, total, batch_size):
        rows = torch.arange(start, min(start + batch_size, total), device=inputs.device) // num
        batch = inputs[rows]
        noise = torch.randn(batch.shape, generator=generator, device=generator.device).to(inputs.device)
        logits = model(batch + noise * sigma)
        if logits.ndim != 2 or logits.shape[1] != nb_classes:
            raise ValueError(f"nb_classes is {nb_classes} but the model returns scores shaped {tuple(logits.shape)}")
        flat += torch.bincount(rows * nb_classes + logits.argmax(1), minlength=len(flat))
    return flat.view(len(inputs), nb_classes)


def sample_counts(model: torch.nn.Module, x: Any, *, sigma: float, num: int, batch_size: int, nb_classes: int,
                  generator: torch.Generator) -> np.ndarray:
    """Counts, shaped (n_samples, nb_classes), of the base classifier's argmax over ``num`` draws of x + δ per sample,
    δ ~ N(0, σ²I) (Cohen et al.'s ``_sample_noise``; no clipping), ``batch_size`` noisy inputs per forward pass in
    eval mode (the model's mode is restored). Deterministic given ``generator``'s state and ``batch_size``; the noise
    is drawn on the generator's device (use the model's for speed). Classifies n_samples·``num`` noisy inputs."""
    import torch

    _check_sigma(sigma)
    for name, value in {"num": num, "batch_size": batch_size, "nb_classes": nb_classes}.items():
        if not (isinstance(value, int | np.integer) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    inputs = torch.as_tensor(x, dtype=torch.float32).to(_device_of(model))
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"x must be a batch of at least one sample, got shape {tuple(inputs.shape)}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            counts = _count_batches(model, inputs, sigma=sigma, num=int(num), batch_size=int(batch_size),
                                    nb_classes=int(nb_classes), generator=generator)
    finally:
        model.train(was_training)
    return counts.cpu().numpy()


def _generators(seed: int, device: torch.device) -> list[torch.Generator]:
    """Two independent noise streams from one seed (numpy's SeedSequence spawns them): selection, then estimation."""
    import torch

    states = [child.generate_state(1, dtype=np.uint64)[0] for child in np.random.SeedSequence(seed).spawn(2)]
    return [torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1)) for state in states]


def certify(model: torch.nn.Module, x: Any, *, sigma: float, nb_classes: int, n0: int = DEFAULT_N0,
            n: int | None = None, alpha: float = DEFAULT_ALPHA, batch_size: int = DEFAULT_BATCH,
            seed: int = 0) -> Certification:
    """Cohen et al.'s CERTIFY for every sample of ``x`` (shaped (n_samples, *input_shape)): n0 selection draws pick
    ĉ_A, N fresh estimation draws (a separate noise stream) bound p_A (``certify_counts``). N defaults to
    ``default_n`` of the model's device. The noise streams are drawn on the model's device, seeded by ``seed``."""
    device = _device_of(model)
    n = default_n(device.type) if n is None else n
    check_parameters(sigma=sigma, n0=n0, n=n, alpha=alpha)
    selection, estimation = _generators(seed, device)
    started = time.perf_counter()
    common = {"sigma": sigma, "batch_size": batch_size, "nb_classes": nb_classes}
    counts0 = sample_counts(model, x, num=n0, generator=selection, **common)
    counts = sample_counts(model, x, num=n, generator=estimation, **common)
    predicted, radius = certify_counts(counts0, counts, sigma=sigma, alpha=alpha)
    seconds = time.perf_counter() - started
    logger.info("certified %d samples (sigma=%g, n0=%d, N=%d) in %.2f s, %.0f%% abstained", len(predicted), sigma,
                n0, n, seconds, 100 * np.mean(predicted == ABSTAIN))
    return Certification(sigma=float(sigma), n0=int(n0), n=int(n), alpha=float(alpha), batch=int(batch_size),
                         seed=seed, predicted=tuple(int(p) for p in predicted),
                         radius=tuple(float(r) for r in radius), seconds=seconds,
                         forward_passes=len(predicted) * (n0 + n))
