"""Interval bound propagation: certified L∞ robustness of small networks (Gowal et al. 2018, arXiv:1810.12715).

"On the effectiveness of interval bound propagation for training verifiably robust models". The box
[x − ε, x + ε] ∩ [0, 1] is pushed through the network layer by layer as a centre and a radius (an affine layer maps
the centre and multiplies the radius by |W|; a monotone layer maps both ends), which bounds every logit over the box.
A sample is *verified* at ε when its true class's lower bound exceeds every other class's upper bound: no input in
the box can change the prediction, whatever the attack.

Plain torch, not ART's ``PyTorchIBPClassifier``: ART converts only ``Conv2d``, ``Linear`` and ``ReLU`` children and
refuses ``Flatten`` and ``MaxPool2d`` ("Supported Operations are Conv2D, Linear, and RelU"), so it cannot take the
registry's ``mlp``, ``cnn-small`` or ``lenet-madry``; it also leaves forward hooks on the model it converts. Networks
here are ``nn.Sequential`` (nested ones are flattened) of the ``SUPPORTED`` layers; anything else is refused.
``ibp_loss`` is Gowal's training objective for the shared loop (``defenses/_train.py``).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import BenchError, ConfigError

logger = logging.getLogger(__name__)

AFFINE = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d)
MONOTONE = (nn.ReLU, nn.MaxPool2d, nn.Flatten)  # non-decreasing in every input: map the lower and upper ends
SUPPORTED = "Linear, Conv2d, ReLU, Flatten, MaxPool2d, BatchNorm1d/2d (running statistics)"
DOMAIN = (0.0, 1.0)  # the inputs' range: the box is clipped to it


class UnsupportedLayer(BenchError, ValueError):
    """A network IBP cannot bound: the message names the layer type."""


@dataclass(frozen=True, kw_only=True)
class IBPCost:
    """What verification cost: wall-clock seconds, and forward passes (two per sample: the centre's and the
    radius's, each as much arithmetic as one ordinary forward pass)."""

    seconds: float
    forward_passes: int


def ibp_layers(model: nn.Module) -> list[nn.Module]:
    """The layers of ``model`` in order (nested ``nn.Sequential`` flattened), each checked by ``check_layer``."""
    if isinstance(model, nn.Sequential):
        return [layer for child in model for layer in ibp_layers(child)]
    check_layer(model)
    return [model]


def check_layer(layer: nn.Module) -> None:
    """Refuse, naming it, a layer IBP does not bound here."""
    name = type(layer).__name__
    if not isinstance(layer, AFFINE + MONOTONE):
        raise UnsupportedLayer(f"IBP cannot bound a {name} layer: it takes nn.Sequential networks of {SUPPORTED}")
    if isinstance(layer, nn.Conv2d) and layer.padding_mode != "zeros":
        raise UnsupportedLayer(f"IBP cannot bound a {name} layer with padding_mode={layer.padding_mode!r}: only "
                               "'zeros'")
    if isinstance(layer, nn.BatchNorm1d | nn.BatchNorm2d) and layer.running_mean is None:
        raise UnsupportedLayer(f"IBP cannot bound a {name} layer without running statistics "
                               "(track_running_stats=False): it needs a fixed affine map")


def input_box(x: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The L∞ box [x − ε, x + ε] clipped to the input domain [0, 1], as (lower, upper)."""
    return (x - eps).clamp(*DOMAIN), (x + eps).clamp(*DOMAIN)


def interval_bounds(layers: list[nn.Module], lower: torch.Tensor,
                    upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bounds of the network's outputs over the box [lower, upper] (Gowal et al. 2018), layer by layer;
    differentiable, so it also trains (``ibp_loss``)."""
    for layer in layers:
        lower, upper = propagate(layer, lower, upper)
    return lower, upper


def propagate(layer: nn.Module, lower: torch.Tensor, upper: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's bounds: a monotone layer maps each end; an affine one maps the centre μ = (u + l)/2 and takes
    the radius r = (u − l)/2 through |W|, giving [μ' − r', μ' + r']."""
    if isinstance(layer, nn.ReLU):
        return F.relu(lower), F.relu(upper)  # F.relu: the layer may be inplace=True
    if isinstance(layer, MONOTONE):
        return layer(lower), layer(upper)
    centre, radius = (upper + lower) / 2, (upper - lower) / 2
    if isinstance(layer, nn.Linear):
        centre, radius = layer(centre), F.linear(radius, layer.weight.abs())
    elif isinstance(layer, nn.Conv2d):
        centre = layer(centre)
        radius = F.conv2d(radius, layer.weight.abs(), None, layer.stride, layer.padding, layer.dilation, layer.groups)
    else:
        scale, shift = batchnorm_affine(layer, centre.dim())
        centre, radius = centre * scale + shift, radius * scale.abs()
    return centre - radius, centre + radius


def batchnorm_affine(layer: nn.BatchNorm1d | nn.BatchNorm2d, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm with its running statistics as ``x · scale + shift``, both shaped to broadcast over channels (the
    evaluation-mode map, whatever the layer's mode: training-mode batch statistics are not a fixed map)."""
    scale = torch.rsqrt(layer.running_var + layer.eps)
    if layer.weight is not None:
        scale = scale * layer.weight
    shift = -layer.running_mean * scale
    if layer.bias is not None:
        shift = shift + layer.bias
    shape = (1, -1) + (1,) * (dim - 2)
    return scale.view(shape), shift.view(shape)


def worst_case_logits(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Gowal et al.'s worst-case logits ẑ: each sample's true-class lower bound, every other class's upper bound."""
    return upper.scatter(1, y[:, None], lower.gather(1, y[:, None]))


def is_verified(lower: torch.Tensor, upper: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per sample: the true class's lower bound exceeds every other class's upper bound (strictly)."""
    others = upper.scatter(1, y[:, None], -math.inf)
    return lower.gather(1, y[:, None]).squeeze(1) > others.max(dim=1).values


def check_eps(eps: float, name: str = "eps") -> float:
    """ε as a float; refuse a negative or non-finite one, naming ``name``."""
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) or eps < 0:
        raise ConfigError(f"{name} must be a finite number ≥ 0 (an L∞ radius on inputs in [0, 1]), got {eps!r}")
    return float(eps)


def verified_accuracy(model: nn.Module, x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, *,
                      eps: float, batch_size: int = 256) -> tuple[np.ndarray, IBPCost]:
    """Which samples IBP verifies at L∞ ``eps`` (Gowal et al. 2018, arXiv:1810.12715), and what it cost.

    ``x`` are float inputs in [0, 1] shaped as the model takes them, ``y`` integer labels. Returns a boolean array
    (one per sample; its mean is the verified accuracy, a lower bound on the robust accuracy at ``eps``) and an
    ``IBPCost``. At ε = 0 a sample is verified exactly where the model is correct (ties aside). The model's mode
    is left alone: the bounds use no dropout and BatchNorm's running statistics either way.
    """
    eps = check_eps(eps)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be an integer ≥ 1, got {batch_size!r}")
    layers = ibp_layers(model)
    device = next(model.parameters(), torch.empty(0)).device
    start, verified = time.perf_counter(), [np.zeros(0, dtype=bool)]
    with torch.no_grad():
        for first in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[first : first + batch_size], dtype=torch.float32, device=device)
            yb = torch.as_tensor(y[first : first + batch_size], dtype=torch.long, device=device)
            lower, upper = interval_bounds(layers, *input_box(xb, eps))
            verified.append(is_verified(lower, upper, yb).cpu().numpy())
    result = np.concatenate(verified)
    cost = IBPCost(seconds=time.perf_counter() - start, forward_passes=2 * len(result))
    logger.info("IBP at eps=%g: %d of %d verified in %.2f s", eps, result.sum(), len(result), cost.seconds)
    return result, cost


def ramp_fraction(step: int, warmup_steps: int, ramp_steps: int) -> float:
    """How far the schedule is at batch ``step``: 0 through the warm-up, then linear to 1 over ``ramp_steps``."""
    if ramp_steps == 0:
        return float(step >= warmup_steps)
    return min(max((step - warmup_steps) / ramp_steps, 0.0), 1.0)


def ibp_loss(*, eps: float, kappa: float = 0.5, warmup_steps: int = 0,
             ramp_steps: int = 0) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """IBP training's batch loss for the shared loop (Gowal et al. 2018): κ·CE(z, y) + (1 − κ)·CE(ẑ(ε), y).

    z are the logits, ẑ the worst-case logits over the box (``worst_case_logits``). After ``warmup_steps`` batches
    of plain cross-entropy, ε ramps linearly from 0 to ``eps`` and κ from 1 to ``kappa`` over ``ramp_steps``
    batches (the paper's schedule; κ = 0.5 at its end), then both stay. The returned ``loss(net, x, y)`` counts
    the batches it is called on, so make one per training run.
    """
    eps = check_eps(eps)
    if isinstance(kappa, bool) or not isinstance(kappa, int | float) or not 0 <= kappa <= 1:
        raise ConfigError(f"kappa must be a number in [0, 1], got {kappa!r}")
    for name, value in (("warmup_steps", warmup_steps), ("ramp_steps", ramp_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{name} must be an integer ≥ 0, got {value!r}")
    steps = itertools.count()

    def loss(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fraction = ramp_fraction(next(steps), warmup_steps, ramp_steps)
        weight = 1.0 - fraction * (1.0 - kappa)  # κ of this batch
        nominal = F.cross_entropy(net(x), y)
        if weight == 1.0:
            return nominal
        lower, upper = interval_bounds(ibp_layers(net), *input_box(x, fraction * eps))
        return weight * nominal + (1.0 - weight) * F.cross_entropy(worst_case_logits(lower, upper, y), y)

    return loss
