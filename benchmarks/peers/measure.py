"""Quick timings of the peer libraries, printed as plain text.

Why: gives the numbers signalpy_lab is compared against (per-update cost of
the four shapes, chain depth that survives the default recursion limit, and
signalpy-kernel's multi-tenant costs) from one reproducible command, run in
the project venv once the ``bench`` extra is installed (see ``smoke.py``):

    .venv/bin/python -m benchmarks.peers.measure

The side-by-side tables with signalpy_lab come from ``python -m benchmarks.run``;
this script stays as the peers-only view.

Timings are the best of several repeats (``timeit`` style), in microseconds
per operation, on whatever machine runs it.  Depth probes run each in a fresh
interpreter so a ``RecursionError`` in one cannot disturb the others.
"""
from __future__ import annotations

import asyncio
import itertools
import statistics
import subprocess
import sys
import time
import timeit
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType

from . import reaktiv_shapes, signalpy_kernel_shapes
from . import signalpy_kernel_tenants as tenants

PEERS: dict[str, ModuleType] = {
    "reaktiv": reaktiv_shapes,
    "signalpy-kernel": signalpy_kernel_shapes,
}
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Recursion limit used to *time* chain(1000); neither peer builds it at 1000.
TIMING_RECURSION_LIMIT = 20_000


def per_call_us(fn: Callable[[], None], repeat: int = 5, min_time: float = 0.2) -> float:
    """Best-of-``repeat`` microseconds per call, each repeat lasting >= min_time."""
    timer = timeit.Timer(fn)
    number = 1
    while timer.timeit(number) < min_time:
        number *= 2
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def shape_timings() -> None:
    print("== per-update cost, microseconds (best of 5) ==")
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(TIMING_RECURSION_LIMIT)
    try:
        cases: list[tuple[str, Callable[[ModuleType], Callable[[], None]]]] = [
            ("chain(200)", lambda m: m.chain(200)),
            ("chain(1000)*", lambda m: m.chain(1000)),
            ("fan_out(1000)", lambda m: m.fan_out(1000)),
            ("diamond()", lambda m: m.diamond()),
            ("diamond_effect()", lambda m: m.diamond_effect()),
        ]
        for label, build in cases:
            row = [f"{label:<18}"]
            for name, mod in PEERS.items():
                update = build(mod)
                update()  # first update outside the timing
                row.append(f"{name}={per_call_us(update):10.2f}")
            print("  ".join(row))
    finally:
        sys.setrecursionlimit(previous)
    print(f"  * timed with sys.setrecursionlimit({TIMING_RECURSION_LIMIT}); see depth probe")


def _depth_ok_in_subprocess(peer_module: str, depth: int) -> str:
    code = (
        f"from benchmarks.peers import {peer_module} as m\n"
        f"print(m.max_chain_depth_ok({depth}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return f"process exit {out.returncode}: {out.stderr.strip().splitlines()[-1:]}"
    return out.stdout.strip()


def depth_probe() -> None:
    print("== chain depth at the default recursion limit (1000) ==")
    for name, mod in PEERS.items():
        module = mod.__name__.rsplit(".", 1)[-1]
        results = {d: _depth_ok_in_subprocess(module, d) for d in (100, 300, 1000, 10000)}
        lo, hi = 1, 10000  # largest depth that works, by bisection
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if _depth_ok_in_subprocess(module, mid) == "True":
                lo = mid
            else:
                hi = mid - 1
        shown = ", ".join(f"{d}: {r}" for d, r in results.items())
        print(f"{name:<16} {shown}; largest working depth = {lo}")


def _async_per_call_us(
    make: Callable[[int], Awaitable[object]], iterations: int, repeat: int = 5
) -> float:
    async def run() -> float:
        best = float("inf")
        for _ in range(repeat):
            t0 = time.perf_counter()
            for k in range(iterations):
                await make(k)
            best = min(best, time.perf_counter() - t0)
        return best / iterations * 1e6

    return asyncio.run(run())


def tenant_timings() -> None:
    print("== signalpy-kernel multi-tenant ==")
    for n in (10, 100, 1000):
        _tenant_timings_at(n)


def _tenant_timings_at(n: int) -> None:
    """One line of timings at n tenants (a function, so the lambdas bind its locals)."""
    boots: list[float] = []
    kernel_boots: list[float] = []
    discovers: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        ctx = asyncio.run(tenants.boot_tenants(n))
        boots.append(time.perf_counter() - t0)
        kernel_boots.append(ctx.phase_seconds["boot"])
        discovers.append(ctx.phase_seconds["discover"])
        asyncio.run(ctx.shutdown())

    ctx = asyncio.run(tenants.boot_tenants(n))
    iterations = 2000
    # Fresh string objects: signalpy signals compare by identity.
    values = [f"postgres://db/{k}" for k in range(iterations * 5 + 1)]
    counter = iter(values)
    runs_before = ctx.db_url_runs()

    set_invoke = _async_per_call_us(
        lambda k: tenants.set_and_invoke(ctx, k % n, next(counter)), iterations
    )
    runs = ctx.db_url_runs() - runs_before
    routed = _async_per_call_us(
        lambda k: ctx.kernel.invoke(
            "tenant-db.query", {"table": "users", "target": f"t{k % n}"}
        ),
        iterations,
    )
    direct = _async_per_call_us(lambda k: tenants.direct_call(ctx, k % n), iterations)

    set_only_values = iter([f"postgres://x/{k}" for k in range(5 * iterations + 1)])
    set_only_index = itertools.count()

    def set_only() -> None:
        k = next(set_only_index)
        ctx.config.set(f"tenants.t{k % n}.db_url", next(set_only_values))

    set_us = min(timeit.repeat(set_only, repeat=5, number=iterations)) / iterations * 1e6
    asyncio.run(ctx.shutdown())

    print(
        f"N={n:<5} boot_tenants median {statistics.median(boots) * 1e3:6.1f} ms "
        f"(discover {statistics.median(discovers) * 1e3:5.1f}, "
        f"kernel.boot {statistics.median(kernel_boots) * 1e3:6.1f})\n        "
        f"config.set+routed invoke {set_invoke:7.2f} us  "
        f"config.set alone {set_us:7.2f} us  "
        f"routed invoke {routed:6.2f} us  direct call {direct:5.2f} us  "
        f"routed/direct {routed / direct:5.1f}x  "
        f"db_url runs per set+invoke {runs / (5 * iterations):.2f}"
    )


def main() -> None:
    print(f"python {sys.version.split()[0]}")
    shape_timings()
    depth_probe()
    tenant_timings()


if __name__ == "__main__":
    main()
