"""The one shared training loop (plain torch) and the input-space perturbation every training defense builds on.

A defense supplies ``batch_loss(model, x, y) -> loss`` and a ``Recipe`` (``benchmark.recipes``: optimiser, learning-rate
schedule, epochs, batch size, augmentation, early stopping, mixed precision); the loop owns shuffling, the optimiser,
the device and the gradient-evaluation count (``ctx.costs["train_grad_evals"]``: one per sample per forward+backward
pass, the weight update's, those of any inner maximisation and those of early stopping's validation attack alike).
The default recipe (Adam at a constant rate, nothing else) runs exactly the operations the loop ran before recipes,
so the models it trains are the same, bit for bit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import cache, partial

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.api import DataBundle, RunContext, unit_float
from benchmark.recipes import Recipe, learning_rate

logger = logging.getLogger(__name__)

BatchLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
#: Salts of the seed: the augmentation's draws and early stopping's held-out split are streams of their own, so
#: switching either on leaves the shuffling (and everything else drawn from the seed) as it was.
AUGMENT_SALT, HOLDOUT_SALT = 0xA6, 0x4E1D
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def cross_entropy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train(model: torch.nn.Module, data: DataBundle, ctx: RunContext, *, recipe: Recipe,
          batch_loss: BatchLoss = cross_entropy, eps: float = 0.0) -> torch.nn.Module:
    """Train ``model`` in place as ``recipe`` says for ``ctx.epochs(recipe.epochs)`` epochs; deterministic given
    ``ctx.seed``. With early stopping (``recipe.early_stop``), ``eps`` is the ε of the validation attack (0: clean
    accuracy) and the epoch whose weights are kept goes into ``ctx.outcome["early_stop_epoch"]``."""
    device = torch.device(ctx.device)
    autocast = mixed_precision(recipe.amp, device)
    model.to(device)
    fit, held_out = holdout(len(data.y_train), recipe, ctx.seed)
    x, y = tensors(data, fit, device)
    best = None if held_out is None else BestEpoch(*held_out_tensors(data, held_out, device), eps=eps,
                                                   steps=recipe.val_steps, batch_size=recipe.batch_size)
    generator = torch.Generator().manual_seed(ctx.seed)
    augment = augmenter(recipe, ctx.seed)
    optimiser = make_optimiser(model, recipe)
    scaler = torch.amp.GradScaler("cuda") if recipe.amp == "fp16" else None
    epochs, batches = ctx.epochs(recipe.epochs), math.ceil(len(x) / recipe.batch_size)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator).to(device)
        for batch, start in enumerate(range(0, len(x), recipe.batch_size)):
            idx = order[start : start + recipe.batch_size]
            set_lr(optimiser, learning_rate(recipe, epoch + (batch + 1) / batches, epochs))
            with autocast():
                loss = batch_loss(model, augment(unit_tensor(x[idx])), y[idx])
            update(optimiser, loss, scaler)
            ctx.count("train_grad_evals", len(idx))
        if best is not None:
            best.update(model, epoch + 1, ctx)
    if best is not None:
        best.restore(model, ctx)
    model.eval()
    return model


def make_optimiser(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimiser == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    return torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def set_lr(optimiser: torch.optim.Optimizer, lr: float) -> None:
    for group in optimiser.param_groups:
        group["lr"] = lr


def update(optimiser: torch.optim.Optimizer, loss: torch.Tensor, scaler: torch.amp.GradScaler | None) -> None:
    """One weight update from ``loss`` (through fp16's loss scaling when ``scaler`` is given)."""
    optimiser.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimiser.step()
        return
    scaler.scale(loss).backward()
    scaler.step(optimiser)
    scaler.update()


def mixed_precision(amp: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """The block each batch's loss runs in: autocast to bf16 or fp16 on CUDA, or nothing (``amp="off"``). The weights
    and the optimiser stay float32; fp16 adds loss scaling (``update``)."""
    if amp == "off":
        return nullcontext
    if device.type != "cuda":
        raise ValueError(f"amp={amp} is autocast on CUDA, but the device is {device}: use amp=off")
    return partial(torch.autocast, "cuda", dtype=AMP_DTYPES[amp])


def tensors(data: DataBundle, index: np.ndarray | None, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The training samples ``index`` selects (all when None) as tensors on ``device``, the inputs as stored (uint8
    stays uint8: ``unit_tensor`` converts each batch)."""
    x, y = (data.x_train, data.y_train) if index is None else (data.x_train[index], data.y_train[index])
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def held_out_tensors(data: DataBundle, index: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Early stopping's held-out samples as tensors on ``device``, the inputs as float32 (converted once: few)."""
    x, y = tensors(data, index, device)
    return unit_tensor(x), y


def unit_tensor(x: torch.Tensor) -> torch.Tensor:
    """A batch of inputs as float32 in [0, 1]: uint8 pixels looked up in ``pixel_table`` (so every device gets the
    very values ``DataBundle.batch`` gives), float32 as it is."""
    return pixel_table(x.device)[x.long()] if x.dtype == torch.uint8 else x


@cache
def pixel_table(device: torch.device) -> torch.Tensor:
    """The 256 float32 values k/255 of ``benchmark.api.unit_float``, on ``device``."""
    return torch.from_numpy(unit_float(np.arange(256, dtype=np.uint8))).to(device)


def holdout(n: int, recipe: Recipe, seed: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the samples that train, the held-out ones) of ``n``: with early stopping, a ``val_fraction`` drawn with the
    seed is held out; without, (None, None): all train."""
    if recipe.early_stop == "none":
        return None, None
    held = round(recipe.val_fraction * n)
    if not 0 < held < n:
        raise ValueError(f"val_fraction={recipe.val_fraction:g} of {n} training samples holds out {held}: early "
                         "stopping needs at least one sample on each side")
    order = np.random.default_rng([seed, HOLDOUT_SALT]).permutation(n)
    return np.sort(order[held:]), np.sort(order[:held])


def augmenter(recipe: Recipe, seed: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The recipe's augmentation of a batch: the identity, or ``crop_flip`` with its own generator seeded from
    ``seed`` (the same crops and flips for the same seed on every run and device)."""
    if recipe.augmentation == "none":
        return identity
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, AUGMENT_SALT]).generate_state(1)[0]))
    return partial(crop_flip, padding=recipe.crop_padding, generator=generator)


def identity(x: torch.Tensor) -> torch.Tensor:
    return x


def crop_flip(x: torch.Tensor, *, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of the batch ``(n, C, H, W)`` cropped back to H×W at a random offset after zero padding of
    ``padding`` pixels on every side, then mirrored left–right with probability ½: torchvision's
    ``RandomCrop(H, padding)`` and ``RandomHorizontalFlip()``, per sample, as one gather. The draws come from
    ``generator`` on the CPU."""
    if x.dim() != 4:
        raise ValueError(f"augmentation crop-flip needs images (n, C, H, W), got inputs of shape {tuple(x.shape)}")
    n, channels, height, width = x.shape
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator).to(x.device)
    flips = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    columns = torch.arange(width, device=x.device).expand(n, width)
    columns = torch.where(flips[:, None], width - 1 - columns, columns) + offsets[1, :, None]
    rows = torch.arange(height, device=x.device)[None, :] + offsets[0, :, None]
    padded = F.pad(x, (padding, padding, padding, padding))
    return padded[torch.arange(n, device=x.device)[:, None, None, None],
                  torch.arange(channels, device=x.device)[None, :, None, None],
                  rows[:, None, :, None], columns[:, None, None, :]]


@dataclass(eq=False)
class BestEpoch:
    """Early stopping on held-out robust accuracy (Rice et al. 2020, "Overfitting in adversarially robust deep
    learning", arXiv:2002.11569): after each epoch the held-out samples are attacked with L∞ PGD at ``eps``
    (``steps`` steps of 2.5·ε/steps from a uniform random start); the weights of the best epoch (the first of
    equals) are kept."""

    x: torch.Tensor
    y: torch.Tensor
    eps: float
    steps: int
    batch_size: int
    accuracy: float = -1.0
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None

    def update(self, model: torch.nn.Module, epoch: int, ctx: RunContext) -> None:
        """Measure ``model`` after ``epoch`` (from 1) and keep its weights if it is the best so far."""
        accuracy = robust_accuracy(model, self.x, self.y, ctx, eps=self.eps, steps=self.steps,
                                   batch_size=self.batch_size)
        logger.info("epoch %d: held-out accuracy %.4f under PGD-%d at ε=%g", epoch, accuracy, self.steps, self.eps)
        if accuracy > self.accuracy:
            self.accuracy, self.epoch = accuracy, epoch
            self.state = {key: value.detach().clone() for key, value in model.state_dict().items()}

    def restore(self, model: torch.nn.Module, ctx: RunContext) -> None:
        """Load the best epoch's weights into ``model`` and record that epoch in ``ctx.outcome``."""
        if self.state is not None:
            model.load_state_dict(self.state)
        ctx.outcome["early_stop_epoch"] = self.epoch
        logger.info("early stopping kept epoch %d (held-out accuracy %.4f)", self.epoch, self.accuracy)


def robust_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: RunContext, *, eps: float,
                    steps: int, batch_size: int) -> float:
    """The share of ``x`` that ``model`` (in eval mode meanwhile) classifies correctly under L∞ PGD at ``eps``
    (``steps`` steps of 2.5·ε/steps, Madry et al.'s step rule); clean accuracy at ε = 0."""
    model.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start : start + batch_size], y[start : start + batch_size]
        if eps > 0:
            xb = perturb(model, xb, partial(labelled_loss, model, yb), ctx, eps=eps, step=2.5 * eps / steps,
                         steps=steps)
        with torch.no_grad():
            correct += int((model(xb).argmax(dim=1) == yb).sum())
    model.train()
    return correct / len(x)


def labelled_loss(model: torch.nn.Module, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def perturb(
    model: torch.nn.Module,
    x: torch.Tensor,
    objective: Callable[[torch.Tensor], torch.Tensor],
    ctx: RunContext,
    *,
    eps: float,
    step: float,
    steps: int,
    start: str = "uniform",
) -> torch.Tensor:
    """L∞ projected sign-gradient ascent on ``objective(x_adv)`` inside the ε-ball of ``x`` and [0, 1].

    PGD (Madry et al. 2018) with ``steps`` > 1; FGSM from a random start (Wong et al. 2020) with ``steps`` = 1;
    TRADES' inner maximisation with ``start="normal"`` (x + 0.001·N(0, I), Zhang et al. 2019). ``start`` is
    ``"uniform"`` (uniform in the ε-ball), ``"normal"`` or ``"zero"``. Gradients are taken with respect to the input
    only, so no weight gradient is computed or disturbed.
    """
    if start == "uniform":
        delta = torch.empty_like(x).uniform_(-eps, eps)
    elif start == "normal":
        delta = (0.001 * torch.randn_like(x)).clamp(-eps, eps)
    elif start == "zero":
        delta = torch.zeros_like(x)
    else:
        raise ValueError(f"start must be 'uniform', 'normal' or 'zero', got {start!r}")
    delta = (x + delta).clamp(0.0, 1.0) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(objective(x + delta), delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0.0, 1.0) - x
    ctx.count("train_grad_evals", steps * len(x))
    return (x + delta).detach()
