"""A job's progress events (``phase``): training, each attack run, the validity probes, the privacy stage, so that a
person can follow a long run on a terminal or in a CI log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Event = Callable[..., None]  # on_event(kind, **fields)


class Progress:
    """The job's ``phase`` events: training, each attack run (their number is known once the sweep starts), the
    validity probes."""

    def __init__(self, job: Any, on_event: Event | None) -> None:
        self.emit = on_event or (lambda *args, **kwargs: None)
        self.label = f"{job.defense.label} (seed {job.seed})"
        self.steps = 2

    def training(self, *, loading: bool = False) -> None:
        what = "loading the model" if loading else "training"
        self.emit("phase", text=f"{self.label}: {what}", step=0, steps=self.steps)

    def attack(self, name: str, eps: float, done: int, total: int) -> None:
        self.steps = total + 2
        at = "" if eps != eps else f" at ε={eps:g}"  # NaN: a minimal-norm attack, run once
        self.emit("phase", text=f"{self.label}: {name}{at}", step=1 + done, steps=self.steps)

    def probes(self) -> None:
        self.emit("phase", text=f"{self.label}: validity probes", step=self.steps - 1, steps=self.steps)

    def privacy(self, name: str) -> None:
        self.emit("phase", text=f"{self.label}: privacy attack {name}", step=self.steps - 1, steps=self.steps)
