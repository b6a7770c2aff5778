"""Hand-written torch loops the speed measurements compare the harness against (tests/benchmarks on the CPU,
tests/gpu/speed.py on a GPU): the floor a harness call cannot beat."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def hand_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float,
             steps: int) -> torch.Tensor:
    """Plain torch L∞ PGD from a uniform random start (sign steps, projection onto the ε-ball and [0, 1]), input
    gradients only."""
    delta = torch.empty_like(x).uniform_(-eps, eps)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
        delta = (delta.detach() + step * grad.sign()).clamp(-eps, eps)
        delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()
