"""HopSkipJump (Chen et al. 2020, "HopSkipJumpAttack: A Query-Efficient Decision-Based Attack",
arXiv:1904.02144), run through ART's ``HopSkipJump``.

Threat model: black-box, decision-based (it sees only the predicted label), untargeted, minimal-norm, L2 or L∞. From
a misclassified starting point it alternates a binary search towards the input with a gradient-direction estimate
from label queries. Run once; the sweep reads each sample's distance. ART's default budget (50 iterations of up to
10,000 queries) is far too large for a CPU run; the budget here is explicit and recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import art_norm, keyed_uniform
from benchmark.constraints import Constrained, Interval

_SALT = 0x6873


@ATTACKS.register("hopskipjump", "hsj")
@dataclass(frozen=True)
class HopSkipJump(Constrained):
    """HopSkipJump (Chen et al. 2020), black-box decision-based, minimal-norm, ART ``HopSkipJump``.

    Args:
        steps: iterations (gradient estimate + step + binary search).
        max_eval: most label queries for one gradient estimate.
        init_eval: label queries of the first gradient estimate.
        init_size: random tries to find a misclassified starting point.
    """

    steps: int = 10
    max_eval: int = 200
    init_eval: int = 20
    init_size: int = 50

    parameter_constraints: ClassVar[dict] = {
        "steps": Interval(int, 1, 10_000),
        "max_eval": Interval(int, 1, 1_000_000),
        "init_eval": Interval(int, 1, 1_000_000),
        "init_size": Interval(int, 1, 10_000),
    }
    norms: ClassVar[tuple[str, ...]] = ("2", "inf")
    needs_grad: ClassVar[bool] = False
    black_box: ClassVar[bool] = True
    minimal_norm: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init_eval > self.max_eval:  # ART refuses it, but only inside the job
            raise ValueError(f"init_eval must be at most max_eval = {self.max_eval}, got {self.init_eval}")

    def find(self, estimator, x: np.ndarray, y: np.ndarray, *, norm: str, keys: np.ndarray,
             batch_size: int) -> np.ndarray:
        starts, found = self.starting_points(estimator, x, keys, batch_size)
        x_adv = x.copy()
        if found.any():
            attack = _keyed_hsj_class()(estimator, batch_size=batch_size, norm=art_norm(norm), max_iter=self.steps,
                                        max_eval=self.max_eval, init_eval=self.init_eval,
                                        init_size=self.init_size, verbose=False)
            attack.sample_keys = iter(keys[found].tolist())
            x_adv[found] = attack.generate(x=x[found], y=y[found], x_adv_init=starts[found])
        return x_adv

    def starting_points(self, estimator, x: np.ndarray, keys: np.ndarray, batch_size: int):
        """A misclassified random image per sample, drawn from its key (up to ``init_size`` tries).

        ART draws these from an unseeded generator; drawing them here makes the attack reproducible. Samples with no
        misclassified draw are not attacked (ART would only try more random images).
        """
        original = np.argmax(estimator.predict(x, batch_size=batch_size), axis=1)
        starts, found = x.copy(), np.zeros(len(x), dtype=bool)
        for attempt in range(self.init_size):
            todo = np.flatnonzero(~found)
            if todo.size == 0:
                break
            draws = keyed_uniform(keys[todo], x.shape[1:], _SALT, attempt).astype(x.dtype)
            adversarial = np.argmax(estimator.predict(draws, batch_size=batch_size), axis=1) != original[todo]
            starts[todo[adversarial]] = draws[adversarial]
            found[todo[adversarial]] = True
        return starts, found


@cache
def _keyed_hsj_class():
    """ART's HopSkipJump, with the random numbers of each sample's attack (its gradient-estimate directions) drawn
    from a generator seeded by that sample's key: ART attacks the samples one after another from numpy's global
    generator, so a sample's result would otherwise depend on which samples came before it in the batch."""
    from art.attacks.evasion import HopSkipJump as ARTHopSkipJump

    class KeyedHopSkipJump(ARTHopSkipJump):
        sample_keys: Iterator[int]  # one key per sample, consumed in the order ART attacks them

        def _perturb(self, *args, **kwargs) -> np.ndarray:
            state = np.random.get_state()
            np.random.seed(np.random.SeedSequence([_SALT, next(self.sample_keys) & (2**63 - 1)]).generate_state(1))
            try:
                return super()._perturb(*args, **kwargs)
            finally:
                np.random.set_state(state)

    return KeyedHopSkipJump
