"""What the update-crafting client attacks share: the check of a round's updates, the updates an omniscient attacker
takes its statistics over, the coordinate-wise standard deviation, and the base of the attacks in which every
attacker sends the same vector (ALIE, IPM, min-max, min-sum).

Rows of ``honest``: the round's honest updates (m × d), the attackers' own honest updates first (``n_attackers``
rows), then those of the benign clients, which the server receives next to the malicious ones.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np


def checked_round(honest: np.ndarray, n_attackers: int) -> np.ndarray:
    """``honest`` as a float64 (m, d) array, after refusing a malformed round or an attacker count outside [0, m]."""
    updates = np.asarray(honest, dtype=np.float64)
    if updates.ndim != 2:
        raise ValueError(f"honest must be an (m, d) array of updates, got shape {updates.shape}")
    if isinstance(n_attackers, bool) or not isinstance(n_attackers, (int, np.integer)) \
            or not 0 <= n_attackers <= len(updates):
        raise ValueError(f"n_attackers must be an int between 0 and the {len(updates)} updates of the round, "
                         f"got {n_attackers!r}")
    return updates


def benign_updates(updates: np.ndarray, n_attackers: int) -> np.ndarray:
    """The updates an omniscient attacker takes its statistics over: the benign clients' (rows ``n_attackers:``), as
    the papers' code does (NDSS21-Model-Poisoning, Blades, FLPoison); when every client of the round is an attacker,
    their own honest updates (the only ones there are)."""
    benign = updates[n_attackers:]
    return benign if len(benign) else updates


def coordinate_std(updates: np.ndarray) -> np.ndarray:
    """Per-coordinate sample standard deviation (ddof = 1, ``torch.std`` as the papers' code computes it); 0 for a
    single update."""
    if len(updates) < 2:
        return np.zeros(updates.shape[1])
    return np.std(updates, axis=0, ddof=1)


class SharedVectorAttack:
    """Base of an omniscient update attack in which all attackers send one vector, ``malicious(benign, n_clients,
    n_attackers)``: ``benign`` the updates of ``benign_updates``, ``n_clients`` the round's m."""

    kind: ClassVar[str] = "update"
    omniscient: ClassVar[bool] = True

    def malicious(self, benign: np.ndarray, *, n_clients: int, n_attackers: int) -> np.ndarray:
        raise NotImplementedError

    def craft(self, honest: np.ndarray, *, n_attackers: int, rng: np.random.Generator) -> np.ndarray:
        """(n_attackers, d): the malicious vector once per attacker (deterministic: ``rng`` is not drawn from)."""
        updates = checked_round(honest, n_attackers)
        if n_attackers == 0:
            return np.empty((0, updates.shape[1]))
        vector = self.malicious(benign_updates(updates, n_attackers), n_clients=len(updates),
                                n_attackers=n_attackers)
        return np.tile(vector, (n_attackers, 1))
