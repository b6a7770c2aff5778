"""Server-side aggregation rules for federated training: pure functions over the clients' updates.

Each takes ``updates`` of shape ``(n_clients, n_parameters)`` (flattened parameter vectors or deltas) and, where the
rule is weighted, ``weights`` (client sample counts), and returns one vector of ``n_parameters``.

* ``mean``: the weighted average (FedAvg, McMahan et al. 2017, arXiv:1602.05629).
* ``median``: coordinate-wise median (Yin et al. 2018, arXiv:1803.01498).
* ``trimmed_mean``: coordinate-wise mean after dropping the ⌊β·n⌋ largest and smallest values (Yin et al. 2018).
* ``krum`` / ``multi_krum``: the update(s) closest to their n − f − 2 nearest neighbours (Blanchard et al. 2017).
* ``bulyan``: Krum-select n − 2f updates, then average the β = n − 4f values closest to the coordinate-wise median
  (El Mhamdi et al. 2018, arXiv:1802.07927); needs n ≥ 4f + 3.
* ``clip_l2`` / ``noised_sum`` / ``private_mean``: DP-FedAvg's server step (McMahan et al. 2018, arXiv:1710.06963):
  each update clipped to L2 norm S, their sum plus N(0, σ²S²) per coordinate, divided by the expected client count.
"""

from __future__ import annotations

import numpy as np


def _check(updates: np.ndarray) -> np.ndarray:
    updates = np.asarray(updates, dtype=np.float64)
    if updates.ndim != 2 or len(updates) == 0:
        raise ValueError(f"updates must be a non-empty (n_clients, n_parameters) array, got shape {updates.shape}")
    return updates


def mean(updates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted average; ``weights`` default to equal."""
    updates = _check(updates)
    weights = np.ones(len(updates)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(updates),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("weights must be one non-negative number per client, not all zero")
    return weights @ updates / weights.sum()


def median(updates: np.ndarray) -> np.ndarray:
    """Coordinate-wise median (unweighted)."""
    return np.median(_check(updates), axis=0)


def trimmed_mean(updates: np.ndarray, beta: float) -> np.ndarray:
    """Coordinate-wise mean of what is left after dropping the ⌊β·n⌋ largest and ⌊β·n⌋ smallest values."""
    updates = _check(updates)
    if not 0.0 <= beta < 0.5:
        raise ValueError(f"trim ratio β must be in [0, 0.5), got {beta}")
    cut = int(beta * len(updates))
    ordered = np.sort(updates, axis=0)
    return ordered[cut : len(updates) - cut].mean(axis=0)


def krum_scores(updates: np.ndarray, f: int) -> np.ndarray:
    """Krum score of each update: the sum of squared distances to its n − f − 2 nearest other updates."""
    updates = _check(updates)
    n = len(updates)
    if f < 0 or n < 2 * f + 3:
        raise ValueError(f"krum needs n ≥ 2f + 3 clients: n = {n}, f = {f} needs n ≥ {2 * f + 3}")
    return _neighbour_scores(updates, n - f - 2)


def _neighbour_scores(updates: np.ndarray, neighbours: int) -> np.ndarray:
    """Sum of squared distances from each update to its ``neighbours`` nearest other updates."""
    squared = (updates**2).sum(axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * updates @ updates.T, 0.0)
    np.fill_diagonal(distances, np.inf)
    return np.sort(distances, axis=1)[:, :neighbours].sum(axis=1)


def krum(updates: np.ndarray, f: int) -> np.ndarray:
    """The single update with the lowest Krum score."""
    updates = _check(updates)
    return updates[int(np.argmin(krum_scores(updates, f)))].copy()


def multi_krum(updates: np.ndarray, f: int, m: int | None = None, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted average of the ``m`` updates (default n − f) with the lowest Krum scores."""
    updates = _check(updates)
    m = len(updates) - f if m is None else m
    if not 1 <= m <= len(updates):
        raise ValueError(f"multi-krum keeps m in [1, {len(updates)}] updates, got {m}")
    chosen = np.argsort(krum_scores(updates, f), kind="stable")[:m]
    return mean(updates[chosen], None if weights is None else np.asarray(weights)[chosen])


def bulyan(updates: np.ndarray, f: int) -> np.ndarray:
    """Bulyan: iteratively Krum-select θ = n − 2f updates, then per coordinate average the β = θ − 2f selected values
    closest to the selected updates' median."""
    updates = _check(updates)
    n = len(updates)
    if n < 4 * f + 3:
        raise ValueError(f"bulyan needs n ≥ 4f + 3 clients: n = {n}, f = {f} needs n ≥ {4 * f + 3}")
    remaining = list(range(n))
    selected = []
    for _ in range(n - 2 * f):
        pool = updates[remaining]  # shrinks below 2f + 3 at the end: Krum then scores with fewer neighbours
        best = remaining[int(np.argmin(_neighbour_scores(pool, max(1, len(pool) - f - 2))))]
        selected.append(best)
        remaining.remove(best)
    chosen = updates[selected]
    beta = len(chosen) - 2 * f
    centre = np.median(chosen, axis=0)
    closest = np.argsort(np.abs(chosen - centre), axis=0, kind="stable")[:beta]
    return np.take_along_axis(chosen, closest, axis=0).mean(axis=0)


def clip_l2(updates: np.ndarray, clip: float) -> np.ndarray:
    """Each update scaled by min(1, clip / ‖u‖₂): its L2 norm at most ``clip``, its direction kept."""
    updates = np.asarray(updates, dtype=np.float64)
    if updates.ndim != 2:
        raise ValueError(f"updates must be an (n_clients, n_parameters) array, got shape {updates.shape}")
    if not clip > 0:
        raise ValueError(f"clip must be positive, got {clip}")
    return updates * (clip / np.maximum(np.linalg.norm(updates, axis=1, keepdims=True), clip))


def noised_sum(updates: np.ndarray, *, clip: float, noise_multiplier: float, rng: np.random.Generator) -> np.ndarray:
    """The Gaussian mechanism on the clipped updates' sum: Σ clip_l2(u) + N(0, (σ·clip)²) per coordinate. Its L2
    sensitivity to one client's update is ``clip``; ``updates`` may hold no client (shape (0, n_parameters)): the
    noise alone."""
    clipped = clip_l2(updates, clip)
    return clipped.sum(axis=0) + rng.normal(0.0, noise_multiplier * clip, size=clipped.shape[1])


def private_mean(updates: np.ndarray, *, clip: float, noise_multiplier: float, expected_clients: float,
                 rng: np.random.Generator) -> np.ndarray:
    """DP-FedAvg's aggregate: ``noised_sum`` divided by the expected number of clients per round q·N (a fixed
    denominator, so the division leaks nothing about how many clients took part)."""
    if not expected_clients > 0:
        raise ValueError(f"expected_clients must be positive, got {expected_clients}")
    return noised_sum(updates, clip=clip, noise_multiplier=noise_multiplier, rng=rng) / expected_clients
