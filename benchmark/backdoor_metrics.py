"""The backdoor attack success rate: of the test samples whose true label is not the target class, the share that a
model classifies as the target once the trigger is stamped on them (Bagdasaryan et al. 2020's "backdoor accuracy";
samples of the target class are left out, as the issue defines it). Pure NumPy."""

from __future__ import annotations

import numpy as np


def attack_success_rate(predicted: np.ndarray, labels: np.ndarray, target: int) -> tuple[float, int]:
    """``(rate, count)``: ``count`` the samples whose true label in ``labels`` is not ``target``, ``rate`` the share
    of them whose predicted class in ``predicted`` (the triggered inputs' predictions, class indices) is ``target``;
    ``nan`` when there is no such sample."""
    predicted, labels = np.asarray(predicted).reshape(-1), np.asarray(labels).reshape(-1)
    if predicted.shape != labels.shape:
        raise ValueError(f"predicted and labels must hold one class per sample, got {predicted.size} predictions "
                         f"for {labels.size} labels")
    eligible = labels != target
    count = int(eligible.sum())
    if count == 0:
        return float("nan"), 0
    return float(np.mean(predicted[eligible] == target)), count
