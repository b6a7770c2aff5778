"""How a training set is split across simulated federated clients (pure functions over label arrays).

* ``iid_partition``: a random permutation cut into near-equal parts.
* ``dirichlet_partition``: for each class, the share going to each client is drawn from Dir(α) (Hsu et al. 2019,
  arXiv:1909.06335); small α gives clients few classes each, large α approaches IID.
* ``label_skew``: how far the clients' label distributions are from the global one.
"""

from __future__ import annotations

import numpy as np


def iid_partition(n_samples: int, n_clients: int, seed: int) -> list[np.ndarray]:
    """Indices ``0 … n_samples-1`` shuffled and cut into ``n_clients`` parts whose sizes differ by at most one."""
    if n_clients < 1 or n_clients > n_samples:
        raise ValueError(f"clients must be between 1 and the {n_samples} training samples, got {n_clients}")
    order = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(part) for part in np.array_split(order, n_clients)]


def dirichlet_partition(labels: np.ndarray, n_clients: int, alpha: float, seed: int,
                        min_size: int = 2, max_tries: int = 100) -> list[np.ndarray]:
    """Per class, split that class's indices across clients in proportions drawn from Dir(``alpha``).

    Draws again (up to ``max_tries`` times) until every client holds at least ``min_size`` samples; after that the
    smallest clients take samples from the largest, so no client is empty. Deterministic given ``seed``.
    """
    labels = np.asarray(labels)
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if n_clients < 1 or n_clients * min_size > len(labels):
        raise ValueError(f"cannot give {n_clients} clients {min_size} samples each from {len(labels)} samples")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[int]] = [[] for _ in range(n_clients)]
        for cls in classes:
            members = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(n_clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            break
    else:  # rebalance: move samples from the largest client to each one below min_size
        for part in parts:
            while len(part) < min_size:
                largest = max(parts, key=len)
                part.append(largest.pop())
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def label_skew(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each client's label distribution and the global one (0 = IID-like,
    1 = disjoint), weighted by client size."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    overall = np.array([np.mean(labels == c) for c in classes])
    total, sizes = 0.0, 0
    for part in parts:
        if len(part) == 0:
            continue
        local = np.array([np.mean(labels[part] == c) for c in classes])
        total += len(part) * 0.5 * np.abs(local - overall).sum()
        sizes += len(part)
    return total / sizes
