"""PGD: projected gradient descent from a random start (Madry et al. 2018, "Towards Deep Learning Models Resistant
to Adversarial Attacks", arXiv:1706.06083), run through ART's ``ProjectedGradientDescentPyTorch`` (on a scikit-learn
model with gradients, the same iteration in NumPy: ``numpy_pgd``).

Threat model: white-box, untargeted, L∞ or L2. ``steps`` gradient steps of size ``step_fraction · ε`` inside the
ε-ball, from one random start. ART's defaults (no random start, batch 32) are overridden. The random start of each
sample is drawn from that sample's key, so a sample gets the same start whatever batch it is in: the sweep's
survivor shortcut then gives exactly the numbers of attacking every sample. Cost: ``steps`` input gradients per
sample.

Example::

    bench evaluate --attack pgd:steps=40 --eps 0,0.1,0.3
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import art_norm, keyed_direction, keyed_uniform
from benchmark.constraints import Boolean, Constrained, Interval

_SALT = 0x7067


def random_start(keys: np.ndarray, shape: tuple[int, ...], norm: str, salt: int = _SALT) -> np.ndarray:
    """One point of the unit ball per sample key: uniform per pixel (L∞) or uniform in the L2 ball (``salt``: an
    independent stream for another attack)."""
    if norm == "inf":
        return 2.0 * keyed_uniform(keys, shape, salt) - 1.0
    radius = keyed_uniform(keys, (), salt + 1) ** (1.0 / np.prod(shape))
    return radius.reshape(-1, *([1] * len(shape))) * keyed_direction(keys, shape, norm, salt)


@ATTACKS.register("pgd")
@dataclass(frozen=True)
class PGD(Constrained):
    """Projected Gradient Descent (Madry et al. 2018), L∞ or L2, random start, ART ``ProjectedGradientDescentPyTorch``.

    Args:
        steps: gradient steps.
        step_fraction: step size as a fraction of ε.
        random_start: start from a random point of the ε-ball (drawn per sample).
    """

    steps: int = 10
    step_fraction: float = 0.25
    random_start: bool = True

    parameter_constraints: ClassVar[dict] = {
        "steps": Interval(int, 1, 10_000),
        "step_fraction": Interval(float, 0, 1, closed="right"),
        "random_start": Boolean(),
    }
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        if not hasattr(estimator, "device"):  # not a PyTorch model: a scikit-learn one with gradients
            return numpy_pgd(estimator, x, y, eps=eps, norm=norm, keys=keys if self.random_start else None,
                             steps=self.steps, step=self.step_fraction * eps)
        attack = _keyed_pgd_class()(
            estimator,
            norm=art_norm(norm),
            eps=eps,
            eps_step=self.step_fraction * eps,
            max_iter=self.steps,
            num_random_init=1 if self.random_start else 0,
            batch_size=batch_size,
            verbose=False,
        )
        attack.sample_keys = keys
        attack.run_norm = norm
        return attack.generate(x=x, y=y)


def numpy_pgd(estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray | None,
              steps: int, step: float) -> np.ndarray:
    """PGD on a model that ART has no PyTorch implementation for (a scikit-learn logistic regression or SVM through
    ``benchmark.array_estimator``): from the same keyed random start (``keys`` None: none), ``steps`` times the
    sign (L∞) or unit-L2 direction of the loss gradient, a step clipped to the input range, the projection onto the
    ε-ball, as ART's NumPy PGD does. Every row depends on its own sample only."""
    x = x.astype(np.float32)
    labels = np.eye(estimator.nb_classes, dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    adversarial = x.copy()
    if keys is not None:
        adversarial = np.clip(x + eps * random_start(keys, x.shape[1:], norm).astype(np.float32), 0.0, 1.0)
    for _ in range(steps):
        grad = np.nan_to_num(estimator.loss_gradient(adversarial, labels).reshape(len(x), -1))
        if norm == "inf":
            direction = np.sign(grad)
        else:
            direction = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-12)
        moved = np.clip(adversarial + step * direction.reshape(x.shape), 0.0, 1.0)
        adversarial = (x + projected(moved - x, eps, norm)).astype(np.float32)  # stays in [0, 1]: a convex mix
    return adversarial


def projected(delta: np.ndarray, eps: float, norm: str) -> np.ndarray:
    """``delta`` projected onto the ε-ball of ``norm`` (per sample)."""
    if norm == "inf":
        return np.clip(delta, -eps, eps)
    flat = delta.reshape(len(delta), -1)
    lengths = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat * np.minimum(1.0, eps / np.maximum(lengths, 1e-12))).reshape(delta.shape)


@cache
def _keyed_pgd_class():
    """ART's PyTorch PGD with the changes of ``_KeyedPGD`` (ART is imported only when an attack runs)."""
    from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_pytorch import (
        ProjectedGradientDescentPyTorch,
    )

    return type("KeyedPGD", (_KeyedPGD, ProjectedGradientDescentPyTorch), {})


class _KeyedPGD:
    """Overrides of ART's PyTorch PGD, with its iteration (``_generate_batch``, ``_compute_pytorch``) kept: the
    random start is drawn per sample from its key; ``generate`` drives ART's per-batch code directly (measured on
    digits: the DataLoader and the log line's predictions are a large share of the cost for small models); and for
    L∞ the step direction, the step and the projection take fewer tensor operations, with ART's exact numbers
    (``tests/test_estimator.py`` compares the iterates with ART's own PGD)."""

    sample_keys: np.ndarray
    run_norm: str

    def generate(self, x: np.ndarray, y: np.ndarray | None = None, **kwargs) -> np.ndarray:
        """ART's batch loop without its DataLoader and without the two full prediction passes it spends on a
        log line even when logging is off; each batch runs ART's own ``_generate_batch``. One random start at
        most (``num_random_init`` ≤ 1), no mask."""
        import torch

        if self.num_random_init > 1 or kwargs.get("mask") is not None:
            return super().generate(x, y, **kwargs)
        self._check_compatibility_input_and_eps(x=x)
        targets = torch.from_numpy(self._set_targets(x, y).astype(np.float32)).to(self.estimator.device)
        inputs = torch.from_numpy(x.astype(np.float32)).to(self.estimator.device)
        adversarial = np.empty(x.shape, dtype=np.float32)
        for batch_id, first in enumerate(range(0, len(x), self.batch_size)):
            self._batch_id = batch_id  # read by _compute_pytorch for the batch's sample keys
            rows = slice(first, first + self.batch_size)
            adversarial[rows] = self._generate_batch(x=inputs[rows], targets=targets[rows], mask=None,
                                                     eps=self.eps, eps_step=self.eps_step)
        return adversarial

    def _projection(self, values, eps, norm_p, *, suboptimal: bool = True):
        """ART's projection; for L∞ with one ε, the same numbers by a clamp (ART broadcasts ε to the shape of the
        batch and copies it to a tensor at every step)."""
        if norm_p in ("inf", np.inf) and np.ndim(eps) == 0:
            return values.clamp(-float(eps), float(eps))
        return super()._projection(values, eps, norm_p, suboptimal=suboptimal)

    def _compute_perturbation_pytorch(self, x, y, mask, momentum):
        """ART's step direction; for L∞ without mask, momentum or summary writer, the same numbers in two tensor
        operations instead of eight (the sign of the loss gradient, NaN entries 0)."""
        import torch

        if self.norm not in ("inf", np.inf) or mask is not None or self.decay is not None \
                or self.summary_writer is not None:
            return super()._compute_perturbation_pytorch(x, y, mask, momentum)
        direction = torch.nan_to_num(self.estimator.loss_gradient(x=x, y=y).sign(), nan=0.0)
        return -direction if self.targeted else direction

    def _apply_perturbation_pytorch(self, x, perturbation, eps_step):
        """ART's step (NaN steps set to 0, then clipped to the input range) without its three tensor constructions
        per call; same numbers."""
        import torch

        if np.ndim(eps_step) or self.estimator.clip_values is None:
            return super()._apply_perturbation_pytorch(x, perturbation, eps_step)
        step = torch.nan_to_num(perturbation * float(np.float32(eps_step)), nan=0.0, posinf=np.inf, neginf=-np.inf)
        low, high = self.estimator.clip_values
        return (x + step).clamp(float(low), float(high))

    def _compute_pytorch(self, x, x_init, y, mask, eps, eps_step, random_init, momentum):
        import torch

        if random_init:
            first = self._batch_id * self.batch_size
            keys = self.sample_keys[first : first + len(x)]
            start = random_start(keys, tuple(x.shape[1:]), self.run_norm)
            x = (x + torch.from_numpy(eps * start).to(x)).clamp(0.0, 1.0)
        return super()._compute_pytorch(x, x_init, y, mask, eps, eps_step, False, momentum)
