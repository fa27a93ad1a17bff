"""Counting a Python process under ``valgrind --tool=callgrind``: instructions, cache misses.

Why: on a shared VM a timed A/B cannot see a 10% change (one engine timed twice moved by up
to 50%), but what a process executes does not move with the machine's load when the hash
seed is fixed. ``ab_engine --instructions`` and ``js_instructions`` both count this way;
this module builds the command and reads callgrind's summary once, for both.

Instructions are not time. With ``branches=True`` callgrind also simulates a branch
predictor and counts its mispredictions; with ``cache=True``, it simulates the caches and
counts misses: its first level as this CPU's L1 data cache, its last level as this CPU's
L2 (read from sysfs; callgrind models two levels, and the L2 is what a graph of thousands
of nodes overflows, while the shared L3 holds it). Still a model: no prefetcher, no TLB.
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._harness import REPO_ROOT

__all__ = ["CallgrindError", "Counted", "MISS_EVENTS", "cache_options", "count", "misses"]

#: Summed into "L1d misses" and "L2 misses" (reads and writes), and "mispredicted branches"
#: (conditional and indirect), from callgrind's events.
MISS_EVENTS = {"L1d misses": ("D1mr", "D1mw"), "L2 misses": ("DLmr", "DLmw"),
               "mispredicted branches": ("Bcm", "Bim")}
_SYSFS = Path("/sys/devices/system/cpu/cpu0/cache")


class CallgrindError(RuntimeError):
    """The counted process failed, or callgrind printed no summary."""


@dataclass(frozen=True)
class Counted:
    """What callgrind counted (``Ir``: instructions; ``D1mr`` ... with the cache model),
    and what the process printed."""

    events: dict[str, int]
    stdout: str


def _cache(level: int, kind: str) -> str | None:
    """``size,ways,line`` of cpu0's cache at ``level`` of ``kind`` (sysfs), or None."""
    for index in sorted(_SYSFS.glob("index*")):
        try:
            if ((index / "level").read_text().strip() == str(level)
                    and (index / "type").read_text().strip() == kind):
                size = (index / "size").read_text().strip()
                ways = (index / "ways_of_associativity").read_text().strip()
                line = (index / "coherency_line_size").read_text().strip()
                kib = int(size.rstrip("K")) if size.endswith("K") else int(size) // 1024
                return f"{kib * 1024},{ways},{line}"
        except (OSError, ValueError):
            return None
    return None


def cache_options() -> list[str]:
    """callgrind's cache simulation with this CPU's L1 data cache and L2 (as far as sysfs
    says; callgrind's own guess, L1 and the last level, otherwise)."""
    options = ["--cache-sim=yes"]
    l1, l2 = _cache(1, "Data"), _cache(2, "Unified")
    if l1:
        options.append(f"--D1={l1}")
    if l2:
        options.append(f"--LL={l2}")
    return options


def count(command: Sequence[str], *, toggle: str | None = None, cache: bool = False,
          branches: bool = False, timeout: float | None = None,
          env: Mapping[str, str] | None = None) -> Counted:
    """Run ``command`` (a Python process) under callgrind, with the hash seed fixed.

    ``toggle``: count only inside calls of this C function (e.g. ``functools_reduce``).
    ``cache`` / ``branches``: simulate the caches (``cache_options``) / the branch
    predictor too. ``env``: variables set for the process, over this one's.
    Raises ``CallgrindError`` with the process's last line of stderr when it fails, and
    lets ``subprocess.TimeoutExpired`` through.
    """
    options = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    if toggle:
        options.append(f"--toggle-collect={toggle}")
    if cache:
        options += cache_options()
    if branches:
        options.append("--branch-sim=yes")
    run = subprocess.run([*options, *command], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=timeout, env={**os.environ, **(env or {}), "PYTHONHASHSEED": "0"})
    events = re.search(r"^==\d+== Events\s*: (.+)$", run.stderr, re.MULTILINE)
    collected = re.search(r"^==\d+== Collected\s*: (.+)$", run.stderr, re.MULTILINE)
    if run.returncode or not events or not collected:
        last = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise CallgrindError(f"exit {run.returncode}: {last[:120]}")
    values = [int(v) for v in collected.group(1).split()]  # trailing zeros may be left off
    names = events.group(1).split()
    counts = dict(zip(names, values + [0] * (len(names) - len(values)), strict=True))
    return Counted(counts, run.stdout)


def misses(events: dict[str, int]) -> dict[str, int]:
    """The misses of a ``count`` with ``cache`` or ``branches``, summed as ``MISS_EVENTS``
    says (only those it simulated)."""
    return {name: sum(events[e] for e in parts) for name, parts in MISS_EVENTS.items()
            if all(e in events for e in parts)}
