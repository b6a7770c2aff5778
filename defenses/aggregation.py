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
* ``norm_bounded_mean``: the mean of the updates clipped to L2 norm M, plus optional weak-DP noise N(0, σ²)
  (Sun et al. 2019, "Can you really backdoor federated learning?", arXiv:1911.07963).
* ``centered_clipping``: L iterations of v ← v + mean_i clip_τ(x_i − v) from the previous aggregate
  (Karimireddy et al. 2021, "Learning from history for Byzantine robust optimization", arXiv:2012.10333).
* ``fltrust``: updates rescaled to the server's root-set update g₀ and weighted by ReLU(cos(g_i, g₀))
  (Cao et al. 2021, "FLTrust: Byzantine-robust federated learning via trust bootstrapping", NDSS, arXiv:2012.13995).
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


def norm_bounded_mean(updates: np.ndarray, weights: np.ndarray | None = None, *, bound: float,
                      noise_std: float = 0.0, rng: np.random.Generator | None = None) -> np.ndarray:
    """Norm bounding (Sun et al. 2019, arXiv:1911.07963): every update scaled to L2 norm at most M = ``bound``, then
    the weighted average, then optionally "weak DP" Gaussian noise on the aggregate::

        Σ_i w_i · u_i / max(1, ‖u_i‖₂ / M) / Σ_i w_i  +  N(0, σ² I),   σ = ``noise_std``

    The paper's EMNIST runs bound at M = 3 (FLPoison's default too) with weak-DP σ = 0.025 (FLPoison: 0.002);
    M is in units of the update's norm, so it must be set from the honest updates' norms of the model at hand.
    ``rng`` is needed (and used) only when ``noise_std`` > 0."""
    updates = _check(updates)
    if not bound > 0:
        raise ValueError(f"bound must be positive, got {bound}")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be non-negative, got {noise_std}")
    aggregate = mean(clip_l2(updates, bound), weights)
    if noise_std == 0:
        return aggregate
    if rng is None:
        raise ValueError("rng is required when noise_std > 0")
    return aggregate + rng.normal(0.0, noise_std, size=aggregate.shape)


def centered_clipping(updates: np.ndarray, *, center: np.ndarray | None = None, tau: float,
                      iterations: int = 1) -> np.ndarray:
    """Centered clipping (Karimireddy et al. 2021, arXiv:2012.10333, Algorithm "CClip"): starting from v = ``center``
    (the previous round's aggregate; zeros when None), ``iterations`` = L times::

        v ← v + (1/n) Σ_i (x_i − v) · min(1, τ / ‖x_i − v‖₂)

    Unweighted, as in the paper. Each Byzantine update moves v by at most τ/n per iteration; τ = ∞ gives the mean.
    The authors' CIFAR-10 runs use τ = 100 and L = 1 (epfml/byzantine-robust-optimizer; they found one iteration
    enough), FLPoison defaults to τ = 100, L = 1 and Blades to τ = 5, L = 5. Like M above, τ is in units of the
    update's norm."""
    updates = _check(updates)
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    v = np.zeros(updates.shape[1]) if center is None else np.array(center, dtype=np.float64)
    if v.shape != (updates.shape[1],):
        raise ValueError(f"center must have shape ({updates.shape[1]},) like one update, got {v.shape}")
    for _ in range(iterations):
        deltas = updates - v
        v = v + (deltas if np.isinf(tau) else clip_l2(deltas, tau)).mean(axis=0)
    return v


def fltrust(updates: np.ndarray, server_update: np.ndarray) -> np.ndarray:
    """FLTrust (Cao et al. 2021, NDSS, arXiv:2012.13995): the server's own update g₀, trained on a small clean root
    set this round, scores every client update g_i and fixes its magnitude::

        TS_i = ReLU(cos(g_i, g₀)),   ĝ_i = g_i · ‖g₀‖ / ‖g_i‖,   aggregate = Σ_i TS_i · ĝ_i / Σ_i TS_i

    A zero update (client or server) has cosine 0. When every score is 0 the aggregate is zero (the global model
    stays), where FLPoison falls back to equal weights. Unweighted by sample counts, as in the paper."""
    updates = _check(updates)
    g0 = np.asarray(server_update, dtype=np.float64)
    if g0.shape != (updates.shape[1],):
        raise ValueError(f"server_update must have shape ({updates.shape[1]},) like one client update, "
                         f"got {g0.shape}")
    norms, g0_norm = np.linalg.norm(updates, axis=1), np.linalg.norm(g0)
    safe = np.where(norms > 0, norms, 1.0)
    scores = np.maximum(updates @ g0 / (safe * (g0_norm if g0_norm > 0 else 1.0)), 0.0)
    if scores.sum() <= 0:
        return np.zeros(updates.shape[1])
    rescaled = updates * (g0_norm / safe)[:, None]
    return scores @ rescaled / scores.sum()
