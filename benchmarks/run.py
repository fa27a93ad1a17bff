"""Side-by-side benchmarks of signalpy_lab and its Python peers, as markdown tables.

Peers: observ, nervio, reaktiv (signals libraries) and signalpy-kernel (a reactive component
microkernel); the reactive shapes are also timed as bare closures, the floor of table a.

Why: one command measures every system in one run, on one machine, with the same rules
(see ``_harness.py``), so the ratios mean something.  From the repository root:

    make bench                          # installs the bench extra, then runs this
    .venv/bin/python -m benchmarks.run  # full run, about two minutes
    .venv/bin/python -m benchmarks.run --quick   # smoke run: every table, small and short

Tables (``benchmarks/README.md`` explains each):

a. reactive shapes: microseconds per update, and the deepest chain that works at the
   default recursion limit;
b. tenants: boot time, and ``config.set`` of one tenant's key + routed invoke of that tenant,
   at N = 10 .. 5000 tenants;
c. routed invoke versus a direct method call;
d. our observability cost: the same set + invoke with one event listener subscribed;
and the goals, each with its measured value and verdict.

Tables go to stdout; progress goes to stderr, so ``> RESULTS.md`` captures only results.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import io
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from ._harness import (
    Cell,
    Table,
    environment_lines,
    error_text,
    fmt,
    interleaved_best_of_us,
    load_average,
    median_us,
    no_gc,
    ratio,
    recursion_limit,
    run_isolated,
    time_async_ops,
)

#: System name -> module with chain/fan_out/diamond/diamond_effect/max_chain_depth_ok.
SHAPE_MODULES = {
    "ours": "benchmarks.ours_shapes",
    "observ": "benchmarks.peers.observ_shapes",
    "nervio": "benchmarks.peers.nervio_shapes",
    "reaktiv": "benchmarks.peers.reaktiv_shapes",
    "signalpy-kernel": "benchmarks.peers.signalpy_kernel_shapes",
}
#: System name -> module with boot_tenants/set_and_invoke/routed_invoke/direct_call.
TENANT_MODULES = {
    "ours": "benchmarks.ours_tenants",
    "signalpy-kernel": "benchmarks.peers.signalpy_kernel_tenants",
}
PEERS = ("observ", "nervio", "reaktiv", "signalpy-kernel")
#: The same shapes as bare closures (no caching, no tracking): what the bodies alone cost.
FLOOR = "floor"
FLOOR_MODULE = "benchmarks.floor_shapes"
#: Goal (iii): on every shape, the best peer takes at least this many times our time.
PEER_MARGIN = 1.5
#: Stretch goal: chain(1000) within this many times the bare-closure floor.
FLOOR_MARGIN = 10.0
DEFAULT_LIMIT = 1000  # CPython's stock sys.getrecursionlimit()
RAISED_LIMIT = 20_000  # what the peers need to build and update chain(1000)
DEPTHS = (100, 300, 1000, 10_000)
#: The row where peers that cannot run chain(1000) at the default limit show their error.
CHAIN_AT_DEFAULT = "chain(1000), default limit"


@dataclass(frozen=True)
class Settings:
    """How long to measure: the full run, or a quick smoke run of every code path."""

    quick: bool
    shape_repeat: int
    shape_min_seconds: float
    tenant_counts: tuple[int, ...]
    ops: int  # timed operations per (system, N, measurement); at least N in a full run
    warm_ops: int
    rounds: int  # the ops are split in rounds that alternate between the systems

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(quick, 2, 0.02, (10, 100), 200, 20, 2)
        return cls(quick, 5, 0.2, (10, 100, 1000, 5000), 2000, 200, 5)

    def boots(self, n: int) -> int:
        """Boots to take the median of (the signalpy-kernel boot at 5000 takes seconds)."""
        if self.quick:
            return 1
        return 5 if n <= 100 else 3

    def op_count(self, n: int) -> int:
        """Enough operations that a full run touches every tenant at least once."""
        return self.ops if self.quick else max(self.ops, n)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def load(module: str) -> ModuleType | str:
    """The module, or the text of the error importing it (a peer may be missing)."""
    try:
        return importlib.import_module(module)
    except Exception as exc:
        return error_text(exc)


# -- a. reactive shapes ------------------------------------------------------------------


def _verify_shapes(mod: ModuleType) -> str | None:
    """Check the module's graphs give the right values before timing them (quietly)."""
    from .peers.smoke import check_shapes

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            check_shapes(mod.__name__, mod)
    except Exception as exc:  # AssertionError included: a wrong value is a failure
        return "check failed: " + error_text(exc).removeprefix("error: ")
    return None


def _probe(module: str, body: str) -> str:
    """Run ``body`` (an expression over ``m``) at the default recursion limit, isolated."""
    code = (
        "import importlib\n"
        "from benchmarks.peers._common import at_default_recursion_limit\n"
        f"m = importlib.import_module({module!r})\n"
        f"print(at_default_recursion_limit(lambda: {body}))\n"
    )
    return run_isolated(code)


def _probe_chain_update(module: str, depth: int) -> str:
    """Can ``chain(depth)``'s update run (twice) at the default recursion limit?"""
    return _probe(module, f"(lambda u: (u(), u(), True)[-1])(m.chain({depth}))")


Build = Callable[[ModuleType], Callable[[], None]]


def _time_row(modules: dict[str, ModuleType], build: Build, limit: int,
              s: Settings) -> dict[str, Cell]:
    """µs per update of one shape for each system, timed interleaved at ``limit``."""
    row: dict[str, Cell] = {}
    updates: dict[str, Callable[[], object]] = {}
    with recursion_limit(limit):
        for name, mod in modules.items():
            try:
                update = build(mod)
                update()  # the first update (building links) stays outside the timing
                updates[name] = update
            except Exception as exc:
                row[name] = error_text(exc)
        row.update(interleaved_best_of_us(updates, repeat=s.shape_repeat,
                                          min_seconds=s.shape_min_seconds))
    return row


@dataclass
class ShapeResults:
    tables: list[Table]
    timings: dict[tuple[str, str], Cell]  # (row label, system) -> µs or failure text
    depth_ok: dict[str, bool]  # system -> does chain(10,000) work at the default limit


def shapes_section(s: Settings) -> ShapeResults:
    systems = {**SHAPE_MODULES, FLOOR: FLOOR_MODULE}  # timed; the depth table has no floor
    modules = {name: load(path) for name, path in systems.items()}
    broken: dict[str, str] = {}
    for name, mod in modules.items():
        problem = mod if isinstance(mod, str) else _verify_shapes(mod)
        if problem is not None:
            broken[name] = problem

    progress("a. chain(1000) update at the default recursion limit, one process each")
    chain_default = {name: _probe_chain_update(path, 1000)
                     for name, path in systems.items() if name not in broken}

    cases: list[tuple[str, Build, int]] = [
        (CHAIN_AT_DEFAULT, lambda m: m.chain(1000), DEFAULT_LIMIT),
        (f"chain(1000), limit raised to {RAISED_LIMIT:,} †", lambda m: m.chain(1000),
         RAISED_LIMIT),
        ("fan_out(1000)", lambda m: m.fan_out(1000), DEFAULT_LIMIT),
        ("diamond", lambda m: m.diamond(), DEFAULT_LIMIT),
        ("diamond_effect", lambda m: m.diamond_effect(), DEFAULT_LIMIT),
    ]
    table = Table(
        "a. Reactive shapes: µs per update (best of "
        f"{s.shape_repeat} interleaved loops of ≥ {s.shape_min_seconds:g} s; lower is better)",
        ["shape", *SHAPE_MODULES, "bare closures (floor)", *(f"{p} / ours" for p in PEERS),
         "best peer / ours", "ours / floor"],
    )
    timings: dict[tuple[str, str], Cell] = {}
    for label, build, limit in cases:
        progress(f"a. {label}")
        row: dict[str, Cell] = {}
        timed: dict[str, ModuleType] = {}
        for name in systems:  # systems side by side, shape by shape
            mod = modules[name]
            if name in broken:
                row[name] = broken[name]
            elif label == CHAIN_AT_DEFAULT and chain_default[name] != "True":
                row[name] = f"{chain_default[name]} (see † row)"
            else:
                assert not isinstance(mod, str)
                timed[name] = mod
        row.update(_time_row(timed, build, limit, s))
        for name in systems:
            timings[(label, name)] = row[name]
        peer_times = [t for t in (_num(row[p]) for p in PEERS) if t is not None]
        table.add(label, *(fmt(row[n]) for n in systems),
                  *(ratio(row[p], row["ours"]) for p in PEERS),
                  ratio(min(peer_times), row["ours"]) if peer_times else "-",
                  ratio(row["ours"], row[FLOOR]))
    table.notes += [
        "An update sets the source signal to a new value and reads the outputs (chain: the "
        "last computed; fan_out: all 1000; diamond: d); for diamond_effect the effect reading "
        "d runs inside set(). Every module's graphs are first checked for correct values "
        "(`benchmarks.peers.smoke.check_shapes`).",
        "Default limit = `sys.getrecursionlimit()` of 1,000. A peer cell naming an exception "
        "is what chain(1000)'s update raised at that limit, in a fresh interpreter.",
        f"† All measured with `sys.setrecursionlimit({RAISED_LIMIT})`, which the peers "
        "(and the floor's 1000 nested calls) need for this shape; ours does not use the extra "
        "limit (its walks are iterative).",
        "Ratio columns: peer time / our time; above 1.00x means ours is faster. 'best peer / "
        "ours' uses the fastest peer of the row.",
        "Bare closures (floor), `benchmarks/floor_shapes.py`: the same bodies (`src + k`) as "
        "plain nested functions, recomputing everything on every update with no caching, "
        "tracking or locking. 'ours / floor' is what our engine's bookkeeping multiplies the "
        "bodies' cost by.",
    ]

    progress("a. chain depth at the default recursion limit, one process per probe")
    depth = Table(
        "a. Deepest chain that works at the default recursion limit (1,000)",
        ["system", *(f"chain({d:,})" for d in DEPTHS), "largest working depth"],
    )
    depth_ok: dict[str, bool] = {}
    for name, path in SHAPE_MODULES.items():
        if name in broken:
            depth.add(name, *([broken[name]] * len(DEPTHS)), "-")
            continue
        results = {d: _probe(path, f"m.max_chain_depth_ok({d})") for d in DEPTHS}
        depth_ok[name] = results[DEPTHS[-1]] == "True"
        depth.add(name, *("ok" if results[d] == "True" else results[d] for d in DEPTHS),
                  _largest_depth(path, results, bisect=not s.quick))
    depth.notes += [
        "Each probe builds a fresh chain, reads its end, sets the source, reads again "
        "(`max_chain_depth_ok`), in its own interpreter: a RecursionError can leave a "
        "library's global batch state broken, which must not leak into other measurements.",
    ]
    return ShapeResults([table, depth], timings, depth_ok)


def _largest_depth(module: str, results: dict[int, str], *, bisect: bool) -> str:
    """The largest working depth: exact by bisection between the probed depths if asked."""
    working = [d for d, r in results.items() if r == "True"]
    failing = [d for d, r in results.items() if r != "True"]
    lo = max(working, default=0)
    if not failing or max(failing) < lo:
        return f"≥ {lo:,}"
    hi = min(d for d in failing if d > lo)
    if not bisect:
        return f"≥ {lo:,}, < {hi:,}"
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _probe(module, f"m.max_chain_depth_ok({mid})") == "True":
            lo = mid
        else:
            hi = mid
    return f"{lo:,} (bisected)"


# -- b, c, d. tenants --------------------------------------------------------------------


@dataclass
class SetInvokeStats:
    """Samples of set + routed invoke, with the db_url body-run bookkeeping."""

    times: list[int] = field(default_factory=list)
    ops: int = 0
    not_one: int = 0  # ops after which the targeted tenant's db_url had not run exactly once
    wrong: int = 0  # results that did not carry the value just set
    runs: int = 0  # db_url body runs, all tenants together

    @property
    def exact(self) -> bool:
        return self.ops > 0 and self.not_one == 0 and self.wrong == 0 and self.runs == self.ops

    def runs_cell(self) -> Cell:
        if self.wrong:
            return f"WRONG db_url in {self.wrong} of {self.ops} results"
        if self.exact:
            return "1 (every op)"
        return f"{self.runs / max(self.ops, 1):.2f} ({self.not_one} ops ≠ 1)"


@dataclass
class TenantResult:
    """Everything measured for one system at one N (a failure is the text of a cell)."""

    boot_ms: Cell = None
    discover_ms: Cell = None
    rest_ms: Cell = None  # instantiate + boot
    set_invoke_us: Cell = None
    runs_per_op: Cell = None
    runs_exact: bool = False
    routed_us: Cell = None
    direct_us: Cell = None
    listener_us: Cell = None
    listener_runs_exact: bool = False
    before_subscribe_us: Cell = None
    after_unsubscribe_us: Cell = None

    def fail(self, text: str) -> None:
        for name, value in vars(self).items():
            if value is None:
                setattr(self, name, text)


async def _set_invoke(mod: ModuleType, ctx: Any, n: int, start: int, count: int, tag: str,
                      stats: SetInvokeStats) -> None:
    """``count`` timed ops of set + routed invoke on tenants ``start, start+1, ...`` (mod n)."""
    values = [f"postgres://{tag}/{k}" for k in range(count)]  # a new object every time
    instances = ctx.instances
    last = [inst.db_url_runs for inst in instances]
    total_before = sum(last)

    def check(k: int, result: object) -> None:
        i = (start + k) % n
        runs = instances[i].db_url_runs
        if runs != last[i] + 1:
            stats.not_one += 1
        last[i] = runs
        if not isinstance(result, dict) or result.get("db_url") != values[k]:
            stats.wrong += 1

    stats.times += await time_async_ops(
        lambda k: mod.set_and_invoke(ctx, (start + k) % n, values[k]), count, after=check)
    stats.ops += count
    stats.runs += ctx.db_url_runs() - total_before


@dataclass
class _Run:
    """One system's booted kernel at one N and the samples gathered from it."""

    mod: ModuleType
    result: TenantResult = field(default_factory=TenantResult)
    ctx: Any = None
    set_invoke: SetInvokeStats = field(default_factory=SetInvokeStats)
    listener: SetInvokeStats = field(default_factory=SetInvokeStats)
    first_round: int = 0  # samples of set_invoke taken before any listener was subscribed
    routed: list[int] = field(default_factory=list)
    direct: list[int] = field(default_factory=list)
    failed: bool = False

    def fail(self, exc: BaseException) -> None:
        self.failed = True
        self.result.fail(error_text(exc))


async def _boot(name: str, run: _Run, n: int, boots: list[float],
                phases: list[dict[str, float]]) -> None:
    if run.ctx is not None:
        await run.ctx.shutdown()
        run.ctx = None
    with no_gc():
        start = time.perf_counter_ns()
        run.ctx = await run.mod.boot_tenants(n)
        boots.append((time.perf_counter_ns() - start) / 1e6)
    phases.append(run.ctx.phase_seconds)


async def _round(name: str, run: _Run, n: int, index: int, chunk: int) -> None:
    """One round of every measurement for one system; rounds alternate between systems."""
    mod, ctx = run.mod, run.ctx
    start = index * chunk
    await _set_invoke(mod, ctx, n, start, chunk, f"{name}-{n}-{index}", run.set_invoke)
    if index == 0:
        run.first_round = len(run.set_invoke.times)
    run.routed += await time_async_ops(lambda k: mod.routed_invoke(ctx, (start + k) % n), chunk)
    run.direct += await time_async_ops(lambda k: mod.direct_call(ctx, (start + k) % n), chunk)
    if name == "ours":
        unsubscribe = ctx.kernel.events.subscribe(lambda event: None)
        try:
            await _set_invoke(mod, ctx, n, start, chunk, f"listener-{n}-{index}", run.listener)
        finally:
            unsubscribe()


async def _measure_n(modules: dict[str, ModuleType], n: int,
                     s: Settings) -> dict[str, TenantResult]:
    """Boot every system at N tenants, then measure them in alternating rounds."""
    runs = {name: _Run(mod) for name, mod in modules.items()}
    boots: dict[str, list[float]] = {name: [] for name in runs}
    phases: dict[str, list[dict[str, float]]] = {name: [] for name in runs}

    async def each(step: Callable[[str, _Run], Awaitable[None]]) -> None:
        for name, run in runs.items():
            if not run.failed:
                try:
                    await step(name, run)
                except Exception as exc:
                    run.fail(exc)

    for _ in range(s.boots(n)):
        await each(lambda name, run: _boot(name, run, n, boots[name], phases[name]))
    for name, run in runs.items():  # kept even if a later measurement fails
        if not run.failed:
            r = run.result
            r.boot_ms = statistics.median(boots[name])
            r.discover_ms = statistics.median(p["discover"] * 1e3 for p in phases[name])
            r.rest_ms = statistics.median((p["instantiate"] + p["boot"]) * 1e3
                                          for p in phases[name])

    async def warm(name: str, run: _Run) -> None:
        # Steady state: every tenant queried once (its db_url computed, its key watched).
        for i in range(n):
            await run.mod.routed_invoke(run.ctx, i)
        await _set_invoke(run.mod, run.ctx, n, 0, s.warm_ops, f"warm-{name}-{n}",
                          SetInvokeStats())

    await each(warm)
    chunk = -(-s.op_count(n) // s.rounds)
    for index in range(s.rounds):
        await each(lambda name, run, index=index: _round(name, run, n, index, chunk))

    for name, run in runs.items():
        if run.ctx is not None:
            try:
                await run.ctx.shutdown()
            except Exception as exc:
                progress(f"{name} N={n}: shutdown failed: {error_text(exc)}")
        if run.failed:
            continue
        r = run.result
        r.set_invoke_us = median_us(run.set_invoke.times)
        r.runs_per_op, r.runs_exact = run.set_invoke.runs_cell(), run.set_invoke.exact
        r.routed_us, r.direct_us = median_us(run.routed), median_us(run.direct)
        if run.listener.ops:
            r.listener_us = median_us(run.listener.times)
            r.listener_runs_exact = run.listener.exact
            r.before_subscribe_us = median_us(run.set_invoke.times[: run.first_round])
            r.after_unsubscribe_us = median_us(run.set_invoke.times[run.first_round:])
    return {name: run.result for name, run in runs.items()}


def tenants_section(s: Settings) -> tuple[list[Table], dict[tuple[str, int], TenantResult]]:
    modules = {name: load(path) for name, path in TENANT_MODULES.items()}
    loaded = {name: mod for name, mod in modules.items() if not isinstance(mod, str)}
    results: dict[tuple[str, int], TenantResult] = {}
    for n in s.tenant_counts:
        progress(f"b. tenants: N={n} ({', '.join(loaded)} side by side)")
        measured = asyncio.run(_measure_n(loaded, n, s))
        for name, mod in modules.items():
            if isinstance(mod, str):
                measured[name] = TenantResult()
                measured[name].fail(mod)
            results[(name, n)] = measured[name]
    return _tenant_tables(s, results), results


def _per_tenant_us(ms: Cell, n: int) -> Cell:
    return ms * 1e3 / n if isinstance(ms, (int, float)) else None


def _tenant_tables(s: Settings, r: dict[tuple[str, int], TenantResult]) -> list[Table]:
    first = s.tenant_counts[0]
    boot = Table(
        "b. Tenants: boot time (median of 5 boots at N ≤ 100, 3 above, alternating between "
        "the systems; gc off while booting)",
        ["N", "ours total ms", "ours µs / tenant", "signalpy-kernel total ms",
         "signalpy-kernel discover ms", "signalpy-kernel rest ms",
         "signalpy-kernel rest µs / tenant", "signalpy-kernel / ours"],
    )
    for n in s.tenant_counts:
        ours, peer = r[("ours", n)], r[("signalpy-kernel", n)]
        boot.add(n, ours.boot_ms, _per_tenant_us(ours.boot_ms, n), peer.boot_ms,
                 peer.discover_ms, peer.rest_ms, _per_tenant_us(peer.rest_ms, n),
                 ratio(peer.boot_ms, ours.boot_ms))
    boot.notes += [
        "Boot = `Kernel()`, discover the four classes, instantiate config (with N tenants' "
        "db_url defaults) and N tenant-db instances, `await boot()`. signalpy-kernel's "
        "discover reads the source of every method (`inspect.getsource`), a cost "
        "independent of N, so it is shown apart; 'rest' is instantiate + boot. "
        "Linear boot shows as a flat 'µs / tenant' column.",
    ]

    set_invoke = Table(
        "b. Tenants: config.set of one tenant's key + routed invoke of that tenant "
        "(median µs per op)",
        ["N", "ops", "ours µs", f"ours vs N={first}", "ours db_url runs / op",
         "signalpy-kernel µs", f"signalpy-kernel vs N={first}",
         "signalpy-kernel db_url runs / op", "signalpy-kernel / ours"],
    )
    for n in s.tenant_counts:
        ours, peer = r[("ours", n)], r[("signalpy-kernel", n)]
        set_invoke.add(
            n, s.op_count(n), ours.set_invoke_us,
            ratio(ours.set_invoke_us, r[("ours", first)].set_invoke_us), ours.runs_per_op,
            peer.set_invoke_us,
            ratio(peer.set_invoke_us, r[("signalpy-kernel", first)].set_invoke_us),
            peer.runs_per_op, ratio(peer.set_invoke_us, ours.set_invoke_us),
        )
    set_invoke.notes += [
        "One op: `config.set('tenants.t<i>.db_url', <new string>)`, then the routed "
        "`tenant-db.query` with `target='t<i>'` (ours: `kernel.bus.invoke`; signalpy-kernel: "
        "`kernel.invoke`), i rotating over all N tenants. Before timing every tenant is "
        f"queried once (steady state) and {s.warm_ops} ops warm up. Each op is timed alone "
        f"(gc off); the ops run in {s.rounds} rounds alternating between the systems (and "
        "with table c's and d's measurements), so a slow spell of the machine cannot land "
        "on one system only. The median is over all ops.",
        "'db_url runs / op' counts executions of the tenant's `@computed db_url` body: "
        "'1 (every op)' means the targeted tenant's body ran exactly once in every op, no "
        "other tenant's ran, and every result carried the value just set.",
    ]

    overhead = Table(
        "c. Routed invoke (no config change) vs direct call of the handler method "
        "(median µs per call)",
        ["N", "ours routed", "ours direct", "ours routed / direct", "signalpy-kernel routed",
         "signalpy-kernel direct", "signalpy-kernel routed / direct"],
    )
    for n in s.tenant_counts:
        ours, peer = r[("ours", n)], r[("signalpy-kernel", n)]
        overhead.add(n, ours.routed_us, ours.direct_us, ratio(ours.routed_us, ours.direct_us),
                     peer.routed_us, peer.direct_us, ratio(peer.routed_us, peer.direct_us))
    overhead.notes += [
        "Routed: `tenant-db.query` + `{'table': 'users', 'target': 't<i>'}` through the bus "
        "(resolve the route, validate params with pydantic, record handler stats, await). "
        "Direct: `await instance.query(params)` with an already-validated `QueryParams`. "
        "Both read the cached db_url (nothing changed).",
    ]

    observe = Table(
        "d. Observability cost (ours): config.set + routed invoke, median µs per op",
        ["N", "no listener", "one listener", "listener / none",
         "db_url runs exact with listener", "no listener, before any subscribe",
         "no listener, after unsubscribes"],
    )
    for n in s.tenant_counts:
        ours = r[("ours", n)]
        observe.add(n, ours.set_invoke_us, ours.listener_us,
                    ratio(ours.listener_us, ours.set_invoke_us),
                    "yes" if ours.listener_runs_exact else "NO",
                    ours.before_subscribe_us, ours.after_unsubscribe_us)
    observe.notes += [
        "One listener: `kernel.events.subscribe(lambda e: None)`; it installs the engine "
        "hooks, so every signal set, stale mark, recompute and handler call builds its "
        "frozen event. Each round subscribes, measures and unsubscribes; the last two columns "
        "split the no-listener ops into the first round (before any subscribe) and the later "
        "ones (after an unsubscribe): the kernel should pay nothing for hooks nobody "
        "subscribed to.",
    ]
    return [boot, set_invoke, overhead, observe]


# -- goals -------------------------------------------------------------------------------


def _num(value: Cell) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def goals_table(s: Settings, timings: dict[tuple[str, str], Cell], depth_ok: dict[str, bool],
                r: dict[tuple[str, int], TenantResult]) -> Table:
    first, last = s.tenant_counts[0], s.tenant_counts[-1]
    table = Table("Goals", ["goal", "measured", "verdict"])

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    small = _num(r[("ours", first)].set_invoke_us)
    big = _num(r[("ours", last)].set_invoke_us)
    growth = big / small if small and big else None
    exact = all(r[("ours", n)].runs_exact for n in s.tenant_counts)
    table.add(
        f"(i) set + routed invoke at N={last:,} within 1.5x of N={first}, exactly one "
        "db_url run",
        f"{fmt(growth)}x, runs exact at every N: {'yes' if exact else 'NO'}"
        if growth else "not measured",
        verdict(growth is not None and growth <= 1.5 and exact if growth else None),
    )

    per_tenant = {n: _num(_per_tenant_us(r[("ours", n)].boot_ms, n)) for n in s.tenant_counts}
    mid = s.tenant_counts[-2] if len(s.tenant_counts) > 1 else first
    a, b = per_tenant.get(mid), per_tenant.get(last)
    table.add(
        f"(ii) boot linear in N: µs / tenant at N={last:,} within 1.5x of N={mid:,}",
        f"{fmt(a)} → {fmt(b)} µs / tenant ({fmt(b / a)}x)" if a and b else "not measured",
        verdict(b / a <= 1.5 if a and b else None),
    )

    short: list[str] = []  # shapes where the best peer is within PEER_MARGIN of ours
    uncompared: list[str] = []
    closest: tuple[float, str] | None = None
    for (label, name), value in timings.items():
        if name != "ours" or label == CHAIN_AT_DEFAULT:
            continue  # chain(1000) is compared in the † row, where the peers can run it
        ours = _num(value)
        for peer in PEERS:
            theirs = _num(timings.get((label, peer)))
            if ours is None or theirs is None:
                uncompared.append(f"{label} vs {peer}")
                continue
            margin = theirs / ours
            if margin < PEER_MARGIN:
                short.append(f"{label} vs {peer}: {margin:.2f}x")
            if closest is None or margin < closest[0]:
                closest = (margin, f"{label} vs {peer}")
    if short:
        measured = "short: " + "; ".join(short)
    elif closest is not None:
        measured = f"closest: {closest[1]}, peer takes {closest[0]:.2f}x our time"
    else:
        measured = "nothing compared"
    if uncompared:
        measured += f"; not compared: {', '.join(uncompared)}"
    shape_ok = None if closest is None else not short
    table.add(f"(iii) every reactive shape at least {PEER_MARGIN:g}x faster than the best of "
              f"the peers ({', '.join(PEERS)})", measured,
              verdict(shape_ok) + (" (incomplete)" if uncompared and shape_ok else ""))

    chain_row = next((label for label, _ in timings if label.startswith("chain(1000), limit")),
                     None)
    ours_chain = _num(timings.get((chain_row, "ours"))) if chain_row else None
    floor_chain = _num(timings.get((chain_row, FLOOR))) if chain_row else None
    over = ours_chain / floor_chain if ours_chain and floor_chain else None
    table.add(f"(iii b) stretch: chain(1000) within {FLOOR_MARGIN:g}x of the bare-closure floor",
              f"{over:.1f}x the floor" if over is not None else "not measured",
              verdict(over <= FLOOR_MARGIN if over is not None else None))

    deep = depth_ok.get("ours")
    table.add("(iv) a 10,000-deep chain works at the default recursion limit",
              "yes" if deep else "no", verdict(deep))

    routed = [ratio(r[("ours", n)].routed_us, r[("ours", n)].direct_us)
              for n in s.tenant_counts]
    table.add("(v) routed invoke overhead small (routed / direct, ours, per N)",
              ", ".join(str(x) for x in routed), "see table c (no threshold set)")
    return table


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: every table, tiny sizes and short timings")
    args = parser.parse_args(argv)
    s = Settings.make(args.quick)
    started = time.perf_counter()
    command = "python -m benchmarks.run" + (" --quick" if s.quick else "")

    print("# signalpy_lab benchmarks" + (" (QUICK smoke run: not for comparison)"
                                         if s.quick else ""))
    print()
    print("\n".join(environment_lines(command)))
    print(flush=True)

    shapes = shapes_section(s)
    for table in shapes.tables:
        print(table.render(), flush=True)
    tenant_tables, results = tenants_section(s)
    for table in tenant_tables:
        print(table.render(), flush=True)
    print(goals_table(s, shapes.timings, shapes.depth_ok, results).render())
    print(f"Total wall time: {time.perf_counter() - started:.0f} s. Load average at the end: "
          f"{load_average()} on {os.cpu_count()} CPUs; this run itself accounts for about 1.0 "
          "of the 1-minute figure, anything above that was other work competing with it.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
