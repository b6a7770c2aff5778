"""Backdoor by model replacement (Bagdasaryan et al. 2020, "How to backdoor federated learning", AISTATS,
arXiv:1807.00459) with a pixel-pattern trigger (Gu et al. 2017, BadNets, arXiv:1708.06733).

Each attacker stamps a trigger on a ``poison_fraction`` of its training samples and relabels them ``target``
(ART's ``PoisoningAttackBackdoor`` with ART's image perturbations), trains on them, and sends its update boosted by
γ, so that averaging with the other clients' updates leaves the backdoored model in place of the global one.

Triggers (bottom-right corner, ``trigger_size`` pixels a side, set to the brightest value):

* ``pattern``: ART's ``add_pattern_bd``, a 3 × 3 checkerboard-like pattern, scaled up by k = ``trigger_size / 3`` (each
  of its cells k pixels a side);
* ``pixel``: ART's ``add_single_bd``, the corner pixel, scaled up to a ``trigger_size`` square (FLPoison's model
  replacement stamps such a 5 × 5 white square).

Threat model: not omniscient; the attacker knows the clients per round (for γ) and its own data.

Defaults: ``poison_fraction`` 0.3125, Bagdasaryan et al.'s 20 backdoor images in each batch of 64 (FLPoison: 0.32);
``boost`` 0, the paper's γ = n / η, n clients per round and η the server learning rate, 1 here (the harness adds
the aggregate as it is), so γ = n, shared by the round's attackers (n / attackers each); ``target`` 0; ``trigger``
pattern of side 3 (ART's own size); the attacker trains as the honest clients do (``local_epochs``, ``lr``: 0).

Why ``quiet_rounds``: replacement assumes the honest updates cancel out near convergence, so that the global becomes
the attacker's model X. Here each honest update is a fresh local epoch of Adam, which does not cancel out: the round
of a replacement lands past X (measured on digits, 2 of 10 clients attacking every round: the attackers' X at 94 %
clean accuracy, the global after the round at 86 %). One honest round after the last replacement brings clean
accuracy back to the honest model's (96.9 vs 96.1 %) while the backdoor stays (99.4 % success); so the reference
matrix runs ``quiet_rounds=1`` and says so in its column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.federated.label_flip import CLASS, check_class
from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, Interval, Options

TRIGGERS = ("pattern", "pixel")
#: The side, in pixels, of what ART's perturbation draws at ``distance=1``: add_pattern_bd's 3 × 3, add_single_bd's 1.
BASE_SIDE = {"pattern": 3, "pixel": 1}


def art_perturbation(trigger: str) -> Callable[..., np.ndarray]:
    """ART's image perturbation for ``trigger``: ``f(x, distance, pixel_value)`` on channels-last (n, H, W, C) images,
    setting pixels at ``distance`` from the bottom-right corner (imported here: ART is heavy)."""
    from art.attacks.poisoning.perturbations.image_perturbations import add_pattern_bd, add_single_bd

    return add_pattern_bd if trigger == "pattern" else add_single_bd


def brightest(dtype: np.dtype) -> float:
    """The trigger's pixel value: 1 for float images in [0, 1], 255 for uint8 pixels."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def stamp(x: np.ndarray, trigger: str, size: int) -> np.ndarray:
    """``x`` ((n, C, H, W) images) with ART's ``trigger`` drawn on the bottom-right ``size × size`` corner, scaled up
    by ``k = size / BASE_SIDE[trigger]``: ART's function runs on each of the k² strided (n, side, side, C) sub-grids
    of the corner, one pixel of every k × k cell each. A new array of ``x``'s dtype; other pixels untouched."""
    images = np.asarray(x)
    if images.ndim != 4:
        raise ValueError(f"the trigger needs (n, C, H, W) images, got shape {images.shape}")
    perturb, scale = art_perturbation(trigger), size // BASE_SIDE[trigger]
    value = brightest(images.dtype)
    channels_last = np.transpose(images, (0, 2, 3, 1)).copy()  # ART reads 4-d images as (n, H, W, C)
    height, width = channels_last.shape[1:3]
    corner = channels_last[:, height - size:, width - size:, :]  # a view: writing it writes the images
    for row in range(scale):
        for col in range(scale):
            corner[:, row::scale, col::scale, :] = perturb(corner[:, row::scale, col::scale, :], distance=1,
                                                            pixel_value=value)
    return np.ascontiguousarray(np.transpose(channels_last, (0, 3, 1, 2)))


def boost_factor(boost: float, clients_per_round: int, attackers: int = 1) -> float:
    """γ of model replacement: ``boost``, or for ``boost = 0`` the paper's n / η with η = 1 shared by the round's
    ``attackers`` (each sends γ·(X − G) with γ = n / attackers, so that the mean of their updates with the others'
    lands on X, not on the global moved ``attackers`` times as far)."""
    for name, value in (("clients_per_round", clients_per_round), ("attackers", attackers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an int ≥ 1, got {value!r}")
    return float(boost) if boost > 0 else clients_per_round / attackers


@CLIENT_ATTACKS.register("backdoor")
@dataclass(frozen=True)
class Backdoor(Constrained):
    """Model-replacement backdoor (Bagdasaryan et al. 2020) with a pixel-pattern trigger: poisoned data through ART's
    ``PoisoningAttackBackdoor``, the update boosted by γ. Not omniscient; ``poison`` draws its samples from ``rng``.

    Args:
        target: the class triggered inputs are sent to (default 0).
        trigger: ``pattern`` (ART's add_pattern_bd) or ``pixel`` (ART's add_single_bd), on the bottom-right corner.
        trigger_size: the trigger's side in pixels (default 3); a multiple of 3 for ``pattern``.
        poison_fraction: the share of the attacker's samples stamped and relabelled (default 0.3125 = 20/64).
        boost: γ, the update's multiplier; 0 (default) is the paper's γ = clients per round, shared by the round's
            attackers (n / attackers); 1 is no scaling.
        local_epochs: the attacker's local epochs (0, default: the defense's ``local_epochs``).
        lr: the attacker's local Adam learning rate (0, default: the defense's ``lr``).
        quiet_rounds: the last rounds of training, in which the attackers train honestly (default 0: they attack
            to the end); the success rate is then the backdoor's after that many honest rounds (its durability, which
            Bagdasaryan et al. measure in the rounds after the replacement).
    """

    target: int = 0
    trigger: str = "pattern"
    trigger_size: int = 3
    poison_fraction: float = 0.3125
    boost: float = 0.0
    local_epochs: int = 0
    lr: float = 0.0
    quiet_rounds: int = 0

    kind: ClassVar[str] = "data"
    omniscient: ClassVar[bool] = False
    parameter_constraints: ClassVar[dict] = {
        "target": CLASS,
        "trigger": Options(*TRIGGERS),
        "trigger_size": Interval(int, 1, 1_000),
        "poison_fraction": Interval(float, 0, 1),
        "boost": Interval(float, 0, None),
        "local_epochs": Interval(int, 0, 10_000),
        "lr": Interval(float, 0, None),
        "quiet_rounds": Interval(int, 0, 10_000),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        side = BASE_SIDE[self.trigger]
        if self.trigger_size % side:
            raise ValueError(f"{type(self).__name__}: trigger_size must be a multiple of {side} for the {self.trigger} "
                             f"trigger (ART draws it {side} × {side}, scaled up), got {self.trigger_size}")

    def check(self, input_shape: tuple[int, ...], nb_classes: int) -> None:
        """Refuse, before any work, a ``target`` outside the labels, inputs that are not (C, H, W) images, or a
        trigger larger than the image; each error names the parameter."""
        check_class(self, "target", self.target, nb_classes)
        shape = tuple(input_shape)
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__}: trigger needs (C, H, W) image inputs, got input shape {shape}")
        if self.trigger_size > min(shape[1:]):
            raise ValueError(f"{type(self).__name__}: trigger_size {self.trigger_size} is larger than the "
                             f"{shape[1]} × {shape[2]} image")

    def triggered(self, x: np.ndarray) -> np.ndarray:
        """Every input of ``x`` stamped with the trigger (for the attack success rate); a new array."""
        return stamp(x, self.trigger, self.trigger_size)

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
               nb_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """New ``(x, y)``: ``round(poison_fraction · n)`` samples, drawn from ``rng`` without replacement, stamped and
        relabelled ``target`` by ART's ``PoisoningAttackBackdoor``; the others as they were."""
        from art.attacks.poisoning import PoisoningAttackBackdoor

        self.check(tuple(np.shape(x)[1:]), nb_classes)
        x_out, y_out = np.array(x, copy=True), np.array(y, copy=True)
        chosen = np.sort(rng.choice(len(x_out), size=round(self.poison_fraction * len(x_out)), replace=False))
        if len(chosen):  # ART refuses an empty batch
            art_attack = PoisoningAttackBackdoor(self.triggered)
            x_out[chosen], y_out[chosen] = art_attack.poison(x_out[chosen], y=np.full(len(chosen), self.target))
        return x_out, y_out

    def boost_update(self, update: np.ndarray, *, clients_per_round: int, attackers: int = 1) -> np.ndarray:
        """``γ · update`` (float64), γ from ``boost_factor``: model replacement's scaling of ``X − G``."""
        return boost_factor(self.boost, clients_per_round, attackers) * np.asarray(update, dtype=np.float64)
