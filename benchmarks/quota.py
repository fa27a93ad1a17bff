"""What the quota component costs: a routed tenant query with ``TenantQuota`` in front, vs without.

    .venv/bin/python -m benchmarks.quota [--quick]

Why: issue 10 ships a rate limiter as a component (``signalpy_lab.components.quota``): one
``quota`` instance per tenant checks that tenant's limit (the ``limits`` library's moving
window over its ``MemoryStorage``) and then calls ``tenant-db.query`` for its own tenant. This
measures, on a booted kernel of the production example (``examples.sqlite_tenants``:
``build_kernel`` + ``onboard``, each tenant with its real SQLite file in a temporary directory
and a few rows), for N tenants:

(a) ``kernel.invoke("tenant-db.query", {"target": t, "limit": 5})``: the plain routed call;
(b) ``kernel.invoke("quota.query", {...same})``: through the quota, whose limit (the shared
    default ``quota.rate``) is high enough never to throttle;
(c) ``quota.query`` for one extra tenant already at its limit: the cost of refusing
    (``QuotaExceededError``);
(The quota shares one ``limits`` storage across instances: one storage per tenant used to
start an expiry thread on nearly every call at 1,000 tenants, +589 µs; see quota.py.)

Each call is timed alone (gc off); median and p95 over all rounds. The systems run
interleaved in rounds (order rotated each round) and the target rotates over all N tenants.
Every result is checked outside the timed region (the right tenant, its own rows, 5 of them;
for (c) the error names the capped tenant). A diagnostic pass, untimed, counts the threads
started per call. Tables go to stdout, progress to stderr.
"""
from __future__ import annotations

import sqlite3
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Cell,
    Table,
    error_text,
    package_version,
    progress,
    report_main,
    time_async_ops,
)
from signalpy_lab.errors import QuotaExceededError
from signalpy_lab.examples.sqlite_tenants import build_kernel, db_file, onboard

__all__ = ["main", "run"]

#: The shared default for every benchmark tenant: far above what a run can call.
NEVER = "1000000/minute"
#: The extra tenant of (c): one call allowed, taken before timing.
CAPPED, CAPPED_RATE = "capped", "1/hour"
ROWS, LIMIT = 6, 5  # rows seeded per tenant; rows each query asks for


@dataclass(frozen=True)
class Sizes:
    ns: tuple[int, ...]
    rounds: int
    calls: int  # timed calls per system per round


FULL = Sizes(ns=(10, 1000), rounds=10, calls=400)
QUICK = Sizes(ns=(10, 100), rounds=3, calls=150)


@dataclass
class System:
    key: str
    label: str
    call: Callable[[int], Awaitable[Any]]
    check: Callable[[int, Any], None]
    before: Callable[[], None] = lambda: None  # outside the timed region, before each batch
    latencies: list[int] = field(default_factory=list)
    done: int = 0  # calls made so far: the target keeps rotating across rounds
    error: str | None = None


def seed(kernel: Any, tenant: str) -> None:
    """``ROWS`` users in ``tenant``'s own file (one transaction, no fsync: setup only)."""
    conn = sqlite3.connect(db_file(kernel, tenant))
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.executemany("INSERT INTO users (name, email) VALUES (?, ?)",
                         [(f"{tenant} user {i}", f"u{i}@{tenant}.test") for i in range(ROWS)])
        conn.commit()
    finally:
        conn.close()


def routed(kernel: Any, handler: str, tenants: list[str]
           ) -> tuple[Callable[[int], Awaitable[Any]], Callable[[int, Any], None]]:
    """``handler`` with ``target`` rotating over ``tenants``, and its result check."""
    invoke = kernel.invoke
    params = [{"target": t, "limit": LIMIT} for t in tenants]
    n = len(tenants)

    def call(k: int) -> Awaitable[Any]:
        return invoke(handler, params[k % n])  # type: ignore[no-any-return]

    def check(k: int, result: Any) -> None:
        tenant = tenants[k % n]
        rows = result.get("rows") if isinstance(result, dict) else None
        if result.get("tenant") != tenant or not isinstance(rows, list) or len(rows) != LIMIT \
                or any(not r["email"].endswith(f"@{tenant}.test") for r in rows):
            raise AssertionError(f"{handler} call {k} for {tenant!r} returned {result!r}")

    return call, check


def refused(kernel: Any) -> tuple[Callable[[int], Awaitable[Any]], Callable[[int, Any], None]]:
    """``quota.query`` for the capped tenant: returns the error it raises (or the result)."""
    invoke = kernel.invoke
    params = {"target": CAPPED, "limit": LIMIT}

    async def call(k: int) -> Any:
        try:
            return await invoke("quota.query", params)
        except QuotaExceededError as exc:
            return exc

    def check(k: int, result: Any) -> None:
        if not isinstance(result, QuotaExceededError) or result.tenant != CAPPED:
            raise AssertionError(f"capped call {k} was not refused for {CAPPED!r}: {result!r}")

    return call, check


async def measure(systems: list[System], sizes: Sizes) -> None:
    """Interleaved rounds, each system's batch of sequential calls; order rotated."""
    for system in systems:  # warm-up: every tenant once, every code path loaded
        try:
            system.before()
            for k in range(200):
                system.check(k, await system.call(k))
        except Exception as exc:
            system.error = error_text(exc)
    live = [s for s in systems if s.error is None]
    for r in range(sizes.rounds):
        shift = r % len(live)
        for system in live[shift:] + live[:shift]:
            if system.error is not None:
                continue
            start = system.done

            def op(k: int, system: System = system, start: int = start) -> Awaitable[Any]:
                return system.call(start + k)

            def after(k: int, result: Any, system: System = system, start: int = start) -> None:
                system.check(start + k, result)

            try:
                system.before()
                system.latencies += await time_async_ops(op, sizes.calls, after=after)
                system.done += sizes.calls
            except Exception as exc:
                system.error = error_text(exc)


@contextmanager
def counting_thread_starts() -> Iterator[list[int]]:
    """Count ``threading.Thread.start`` calls in the block (diagnostic pass, never timed)."""
    counter = [0]
    original = threading.Thread.start

    def start(self: threading.Thread) -> None:
        counter[0] += 1
        original(self)

    threading.Thread.start = start  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]


async def threads_per_call(system: System, calls: int) -> Cell:
    if system.error is not None:
        return system.error
    system.before()
    with counting_thread_starts() as counter:
        for k in range(calls):
            await system.call(system.done + k)
    system.done += calls
    return counter[0] / calls


def _quantile_us(times_ns: list[int], q: float) -> float:
    ordered = sorted(times_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3


async def one_n(n: int, sizes: Sizes, root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    kernel = build_kernel(root / f"n{n}", default_rate=NEVER)
    await kernel.boot()
    tenants = [f"t{i}" for i in range(n)]
    try:
        for tenant in tenants:
            await onboard(kernel, tenant)
            seed(kernel, tenant)
        await onboard(kernel, CAPPED, rate=CAPPED_RATE)
        seed(kernel, CAPPED)
        await kernel.invoke("quota.query", {"target": CAPPED})  # its one call: now at limit
        setup = time.perf_counter() - started
        progress(f"N={n}: {n} tenants onboarded and seeded in {setup:.1f} s; measuring ...")

        systems = [
            System("plain", "(a) tenant-db.query", *routed(kernel, "tenant-db.query", tenants)),
            System("quota", "(b) quota.query (under its limit)",
                   *routed(kernel, "quota.query", tenants)),
            System("refused", "(c) quota.query, tenant at its limit (refused)",
                   *refused(kernel)),
        ]
        await measure(systems, sizes)
        threads = {s.key: await threads_per_call(s, 200) for s in systems}
        stats = [await kernel.invoke("quota.stats", {"target": t}) for t in tenants[:3]]
        capped = await kernel.invoke("quota.stats", {"target": CAPPED})
        if any(s["throttled"] for s in stats) or capped["allowed"] != 1:
            raise AssertionError(f"unexpected quota stats: {stats} / {capped}")
        return {"n": n, "systems": systems, "threads": threads, "setup": setup,
                "quota_instances": len(tenants) + 1}
    finally:
        await kernel.shutdown()


def tables(results: list[dict[str, Any]], sizes: Sizes) -> list[Table]:
    main = Table(
        "Q1. Routed tenant query with the quota component in front, vs without (µs per call)",
        ["N", "call", "median µs", "p95 µs", "median / (a)", "median - (a) µs",
         "threads started / call"])
    for res in results:
        by_key = {s.key: s for s in res["systems"]}
        plain = by_key["plain"]
        base = _quantile_us(plain.latencies, 0.5) if plain.error is None and plain.latencies \
            else None
        for system in res["systems"]:
            if system.error is not None or not system.latencies:
                main.add(res["n"], system.label, system.error or "no data", None, None, None,
                         None)
                continue
            median = _quantile_us(system.latencies, 0.5)
            p95 = _quantile_us(system.latencies, 0.95)
            over = ratio = None
            if base is not None and system.key != "plain":
                ratio, over = f"{median / base:.2f}x", median - base
            main.add(res["n"], system.label, median, p95, ratio, over,
                     res["threads"][system.key])
    main.notes = [
        f"{sizes.rounds} rounds x {sizes.calls} calls per system, each call timed alone "
        f"(gc off); median and p95 over all {sizes.rounds * sizes.calls}. Rounds interleave "
        "the systems (order rotated each round); the target rotates over all N tenants.",
        f"Kernel: `examples.sqlite_tenants.build_kernel` + `onboard` for N tenants, each with "
        f"its SQLite file in a temp dir and {ROWS} users; every call asks for `limit: {LIMIT}`."
        f" Shared default `quota.rate` = `{NEVER}` (never throttles); (c) is one extra "
        f"tenant at `{CAPPED_RATE}`, its one call taken before timing.",
        "Checked outside the timed region: each result names the tenant called and holds "
        f"{LIMIT} rows from that tenant's own file; every (c) call raised "
        "`QuotaExceededError` for the capped tenant; no (b) tenant was ever throttled.",
        "'threads started / call': `threading.Thread.start` calls per call, in an untimed "
        "pass of 200 calls. `limits`' `MemoryStorage` starts a `threading.Timer(0.01)` for "
        "expiry on a hit when its last one has fired; all quota instances share one storage, "
        "so it rarely idles long enough to stop.",
    ]
    return [main]


async def run(sizes: Sizes) -> list[Table]:
    results = []
    with tempfile.TemporaryDirectory(prefix="spl-bench-quota-") as tmp:
        for n in sizes.ns:
            results.append(await one_n(n, sizes, Path(tmp)))
    return tables(results, sizes)


def _header() -> str:
    return (f"- quota: limits {package_version('limits')} (moving window, MemoryStorage), "
            f"sqlite {sqlite3.sqlite_version}")


def main(argv: list[str] | None = None) -> None:
    report_main(argv, module="benchmarks.quota", doc=__doc__,
                title="Quotas: routed query with the quota component in front",
                quick_help="a smoke run (~8 s)", header=_header,
                run=lambda quick: run(QUICK if quick else FULL))


if __name__ == "__main__":
    main()
