"""Adaptive attacks (Athalye et al. 2018, "Obfuscated gradients give a false sense of security", arXiv:1802.00420;
Tramèr et al. 2020, "On adaptive attacks to adversarial example defenses", arXiv:2002.08347): the job's attacks run
again against other *views* of the same model, and the row's robust accuracy is the per-sample worst case over every
run, naive and adaptive alike.

* ``bpda``: for a model behind an input preprocessor (``defenses/preprocessed.py``), the same network and preprocessor
  with Athalye et al.'s backward pass differentiable approximation (the label ``pgd+bpda``).
* ``eot``: for a randomized model (a randomized preprocessor, or predictions that differ across repeated passes, which
  is what the ``randomized`` flag detects), Expectation over Transformation: each gradient the attack asks for is the
  mean of ``draws`` gradients, each on a fresh draw (Athalye, Engstrom et al. 2018, arXiv:1707.07397; AutoAttack's
  "rand" version averages 20). Run on the BPDA view where there is one (``pgd+eot``).

Every view shares the model's call counter, so an adaptive run's gradients and queries are counted as its own. The
naive runs keep the attacks' own labels, so the naive worst case is still on the record beside the adaptive one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Gradients averaged per EoT step (AutoAttack's "rand" version: 20).
EOT_DRAWS = 20
RANDOMNESS_SAMPLES = 32
SEPARATOR = "+"


@dataclass(frozen=True)
class Adapted:
    """``attack`` run against ``view`` (another estimator over the same model) whatever estimator the sweep gives it;
    ``adaptation`` names the view (``bpda``, ``eot``), ``draws`` the EoT draws (0: none)."""

    attack: Any
    view: Any
    adaptation: str
    draws: int = 0

    def __getattr__(self, name: str) -> Any:  # the attack's tags (norms, needs_grad, …) and parameters
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.attack, name)

    @property
    def record_tags(self) -> dict[str, Any]:
        """What the record keeps of the adaptation beside the attack's tags."""
        return {"adaptation": self.adaptation, "eot_draws": self.draws}

    def generate(self, estimator: Any, x: np.ndarray, y: np.ndarray, **options: Any) -> np.ndarray:
        return self.attack.generate(self.view, x, y, **options)

    def find(self, estimator: Any, x: np.ndarray, y: np.ndarray, **options: Any) -> np.ndarray:
        return self.attack.find(self.view, x, y, **options)


def is_randomized(estimator: Any, x: np.ndarray, batch_size: int) -> bool:
    """Whether two passes over the first ``RANDOMNESS_SAMPLES`` inputs give different scores (the check behind the
    ``randomized`` flag, run before the sweep so that EoT switches itself on)."""
    first = x[:RANDOMNESS_SAMPLES]
    return not np.array_equal(estimator.predict(first, batch_size=batch_size),
                              estimator.predict(first, batch_size=batch_size))


def adapted_attacks(attacks: dict[str, Any], model: Any, estimator: Any, x: np.ndarray, *,
                    wrap_view: Any, batch_size: int, draws: int = EOT_DRAWS) -> dict[str, Any]:
    """``attacks`` (label → attack), followed by their adaptive runs: ``label+bpda`` for a preprocessed model,
    ``label+eot`` for a randomized one (only for attacks that use gradients). ``wrap_view(module, eot_draws)``
    wraps another view of the model for ART, sharing ``estimator``'s counter."""
    runs = dict(attacks)
    gradient_attacks = {label: attack for label, attack in attacks.items() if getattr(attack, "needs_grad", False)}
    bpda = model.with_mode("bpda") if hasattr(model, "with_mode") else None
    if bpda is not None:
        view = wrap_view(bpda, 0)
        runs.update({f"{label}{SEPARATOR}bpda": Adapted(attack, view, "bpda") for label, attack
                     in gradient_attacks.items()})
    randomized = getattr(model, "randomized", None)
    if randomized or (randomized is None and is_randomized(estimator, x, batch_size)):
        view = wrap_view(bpda if bpda is not None else model, draws)
        runs.update({f"{label}{SEPARATOR}eot": Adapted(attack, view, "eot", draws) for label, attack
                     in gradient_attacks.items()})
    return runs


ADAPTATIONS = ("bpda", "eot")


def naive_label(label: str) -> bool:
    """Whether an attack run's label is a naive run (not ``…+bpda`` or ``…+eot``)."""
    return not label.endswith(tuple(SEPARATOR + name for name in ADAPTATIONS))


#: The flags a row gets when its attacks also ran adaptively (rank-neutral), and the flag each answers: BPDA gives the
#: attacks the gradient the naive runs lacked (``gradient_masking`` is measured on the naive model, to say why its
#: number is wrong), EoT attacks the expectation rather than one draw. The probes' PGD flags (large ε not reaching
#: chance, more steps still lowering accuracy, non-monotone breaks) are measured through the strongest adaptive view
#: (``strongest_view``), so they still unrank a row whose adaptive attack fails the same way.
ANSWERS: dict[str, tuple[str, ...]] = {"bpda": ("gradient_masking",), "eot": ("randomized",)}
FLAG_TEXT = {
    "bpda": "the attacks also ran through the input preprocessing with BPDA (labels …+bpda), and the ε columns include "
            "them; gradient_masking describes the naive runs, the number a careless evaluation reports (the naive ε "
            "column), and no longer unranks the row",
    "eot": "the attacks also ran with Expectation over Transformation (labels …+eot; each gradient the mean of "
           "--eot-draws draws, 20 by default, recorded with each run), and the ε columns include them; randomized "
           "describes the naive runs and no longer unranks the row",
}


def adaptive_flags(attacks: dict[str, Any]) -> tuple[str, ...]:
    """The adaptations among a job's attack runs (``bpda``, ``eot``), as flags."""
    return tuple(sorted({attack.adaptation for attack in attacks.values() if isinstance(attack, Adapted)}))


def unanswered(flags: list[str] | tuple[str, ...]) -> list[str]:
    """``flags`` less those its adaptive runs answer (``ANSWERS``)."""
    answered = {flag for adaptation in flags for flag in ANSWERS.get(adaptation, ())}
    return [flag for flag in flags if flag not in answered]


def naive_broken_at(runs: dict[str, Any]) -> list[Any]:
    """The per-sample break levels of the naive runs of a record's ``runs`` (label → AttackRun); empty when the
    record has no adaptive run (then there is no separate naive number)."""
    if all(naive_label(label) for label in runs):
        return []
    return [run.broken_at for label, run in runs.items() if naive_label(label) and run.broken_at]


def strongest_view(attacks: dict[str, Any]) -> Any:
    """The view the validity probes attack through: EoT's where a run has it, else BPDA's, else None (the model)."""
    views = {attack.adaptation: attack.view for attack in attacks.values() if isinstance(attack, Adapted)}
    return views.get("eot", views.get("bpda"))
