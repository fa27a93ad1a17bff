"""Pieces shared by the per-peer shape modules.

Why: both peers are measured on identical shapes, with the same effect
bookkeeping and the same recursion-depth probe, so the helpers live here once
instead of drifting apart in two copies.  Nothing here imports a peer library.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

#: CPython's stock ``sys.getrecursionlimit()``; the depth probe runs under it.
DEFAULT_RECURSION_LIMIT = 1000


@dataclass
class EffectLog:
    """What the diamond effect saw: how often it ran and the last ``d`` it read."""

    runs: int = 0
    last: int | None = None

    def record(self, value: int) -> None:
        self.runs += 1
        self.last = value


def at_default_recursion_limit(probe: Callable[[], bool | str]) -> bool | str:
    """Run ``probe`` with the recursion limit set to CPython's default.

    Returns what the probe returns, or the name of the exception it raised
    (``"RecursionError"`` for a too-deep chain).  The previous limit is
    restored afterwards, so a caller that raised it is not affected.
    """
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_RECURSION_LIMIT)
    try:
        return probe()
    except Exception as exc:
        return type(exc).__name__
    finally:
        sys.setrecursionlimit(previous)
