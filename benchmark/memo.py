"""Memory of predictions for attacks that predict the same inputs again (ART's Square Attack predicts, at every
iteration, the whole batch and then the survivors twice, although every one of those inputs was predicted in the
previous iteration: two thirds of its model evaluations on digits). Shared by both ART wrappers
(``benchmark.estimator`` for torch modules, ``benchmark.array_estimator`` for ONNX and scikit-learn models)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np


def memo_limit(rows: np.ndarray) -> int:
    """Inputs remembered at most (their bytes are the keys): 64 MiB worth, at least 4,096."""
    return max(4096, (64 << 20) // max(1, rows[0].nbytes if len(rows) else 1))


def memo_predict(memo: dict[bytes, np.ndarray], x: np.ndarray, forward: Callable[[np.ndarray], np.ndarray]
                 ) -> np.ndarray:
    """``forward(x)`` with every input that ``memo`` holds answered from it and the others computed (once each)
    and remembered; ``memo`` is cleared when it would outgrow ``memo_limit``."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    keys = rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel().tolist()
    missing = [i for i, key in enumerate(keys) if key not in memo]
    if missing:
        if len(memo) + len(missing) > memo_limit(rows):
            memo.clear()
        for i, scores in zip(missing, forward(x[missing]), strict=True):
            memo[keys[i]] = scores
    return np.stack([memo[key] for key in keys]) if keys else forward(x)


class Memoizing:
    """Mixin of an ART wrapper: inside ``memoized()``, ``self._memo`` is a dict its ``predict`` answers repeats
    from (``memo_predict``); outside, None."""

    _memo: dict[bytes, np.ndarray] | None = None

    @contextmanager
    def memoized(self) -> Iterator[Memoizing]:
        """Within the block, ``predict`` computes each distinct input once and answers repeats from memory: the
        scores the model computed for that exact input; repeats do not count as queries. Nested blocks share the
        outer one's memory."""
        if self._memo is not None:
            yield self
            return
        self._memo = {}
        try:
            yield self
        finally:
            self._memo = None
