"""JSON: the whole leaderboard (schema documented in ``leaderboards/README.md``)."""

from __future__ import annotations

import json

from benchmark.leaderboard import Leaderboard


def render(board: Leaderboard) -> str:
    return json.dumps(board.to_json(), indent=2) + "\n"
