"""A model trained elsewhere, scored as it is: the row of a model given as a file (``--model torchscript:PATH``, …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmark import DEFENSES
from benchmark.constraints import Constrained


@DEFENSES.register("pretrained")
@dataclass(frozen=True)
class Pretrained(Constrained):
    """No training here: the model from --model (a file, or a class with --weights) is attacked as it is.

    The default defense for a trained model given as a file; ``--name LABEL`` labels its row. The row has no
    training time, and the model file's SHA-256 is in its provenance (the cache keys on it).
    """

    parameter_constraints: ClassVar[dict] = {}
    trains: ClassVar[bool] = False  # reference leaderboards (every defense that trains) leave it out

    def fit(self, model, data, ctx):
        """Returns ``model`` unchanged (nothing is trained)."""
        return model
