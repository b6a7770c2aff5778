"""``Preprocessed``: a network behind an ART input preprocessor, with the backward pass an evaluation chooses
(``defenses/preprocessing.py`` says which, and why). Imports torch: loaded only when a model is wrapped."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

MODES = ("naive", "bpda")


def as_tensor(array: Any, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(like.device)


def median_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """A differentiable ``size × size`` median filter of (N, C, H, W) images, as scipy's ``median_filter`` (which ART's
    SpatialSmoothing runs) places its window (``size // 2`` before each pixel) and ranks it (the element of rank
    size² // 2), with edges replicated: its gradient routes each output's to the input pixel that was the median."""
    before, after = size // 2, size - 1 - size // 2
    padded = torch.nn.functional.pad(x, (before, after, before, after), mode="replicate")
    n, c, h, w = x.shape
    windows = torch.nn.functional.unfold(padded, kernel_size=size).reshape(n, c, size * size, h * w)
    ranked, _ = torch.sort(windows, dim=2)
    return ranked[:, :, (size * size) // 2, :].reshape(n, c, h, w)


class ThroughArt(torch.autograd.Function):
    """The ART preprocessor of ``owner`` (numpy, on the CPU) as a torch op: its output forward; backward, BPDA's
    estimate (ART's ``estimate_gradient``) or the naive gradient (zero for a piecewise-constant map, the incoming
    gradient for additive noise)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, owner: Preprocessed) -> torch.Tensor:
        ctx.owner = owner
        ctx.save_for_backward(x)
        processed, _ = owner.art(x.detach().cpu().numpy())
        return as_tensor(processed, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        owner, (x,) = ctx.owner, ctx.saved_tensors
        if owner.mode == "bpda":
            estimate = owner.art.estimate_gradient(x.detach().cpu().numpy(), grad.detach().cpu().numpy())
            return as_tensor(estimate, grad), None
        return (grad if owner.step.naive == "identity" else torch.zeros_like(grad)), None


class Preprocessed(torch.nn.Module):
    """``net`` behind ``step``'s ART preprocessor; ``mode`` (``naive`` or ``bpda``) sets the backward pass.
    ``with_mode`` gives the same network and preprocessor under another backward pass."""

    def __init__(self, net: torch.nn.Module, step: Any, mode: str = "naive", *, art: Any = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.net, self.step, self.mode = net, step, mode
        self.art = art if art is not None else step.build()
        self.outputs = getattr(net, "outputs", "logits")

    @property
    def randomized(self) -> bool:
        """Whether each forward pass draws afresh (an EoT evaluation averages gradients over draws)."""
        return bool(self.step.randomized)

    def with_mode(self, mode: str) -> Preprocessed:
        return Preprocessed(self.net, self.step, mode, art=self.art)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        processed = ThroughArt.apply(x, self)
        if self.mode == "naive" and self.step.naive == "median":  # ART's value, the torch median's gradient
            smooth = median_filter(x, self.step.size)
            processed = processed + (smooth - smooth.detach())
        return self.net(processed)
