"""The one shared training loop (plain torch) and the input-space perturbation every training defense builds on.

A defense supplies ``batch_loss(model, x, y) -> loss``; the loop owns shuffling, the optimiser, the device and the
gradient-evaluation count (``ctx.costs["train_grad_evals"]``: one per sample per forward+backward pass, the weight
update's and those of any inner maximisation alike).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from benchmark.api import DataBundle, RunContext

BatchLoss = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train(
    model: torch.nn.Module,
    data: DataBundle,
    ctx: RunContext,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    batch_loss: BatchLoss = cross_entropy,
) -> torch.nn.Module:
    """Train ``model`` in place with Adam for ``ctx.epochs(epochs)`` epochs; deterministic given ``ctx.seed``."""
    device = torch.device(ctx.device)
    model.to(device)
    x = torch.from_numpy(data.x_train).to(device)
    y = torch.from_numpy(data.y_train).to(device)
    generator = torch.Generator().manual_seed(ctx.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(ctx.epochs(epochs)):
        order = torch.randperm(len(x), generator=generator).to(device)
        for start in range(0, len(x), batch_size):
            idx = order[start : start + batch_size]
            loss = batch_loss(model, x[idx], y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            ctx.count("train_grad_evals", len(idx))
    model.eval()
    return model


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
