"""js-reactivity-benchmark in Python: our engine (compiled and pure) and every peer, one run.

Why: the suite the JavaScript signal libraries are measured on (``js_cases.py`` ports it),
here with every Python engine interleaved in one process, so the ratios between them come
from the same minutes of the same machine. From the repository root:

    make bench                                   # sets up the venvs, then runs this and more
    .venv/bin/python -m benchmarks.js_suite      # the full run, a few minutes
    .venv/bin/python -m benchmarks.js_suite --quick          # smoke run (~1 min)
    .venv/bin/python -m benchmarks.js_suite --full-dynamic   # the dynamic graphs at their
                                                 # published iterations, ours only (checks)

Rules: each case is built once per framework (in its ``with_build``), warmed up, then timed
as the best of ``--repeat`` runs, the frameworks interleaved run by run (A B C, A B C, ...),
gc off in each run. A short case gets more runs: a framework goes on (still interleaved with
the others that do) until it has spent ``--min-seconds`` in timed runs of the case, up to
``MAX_ROUNDS`` (not cellx, rebuilt for every run): on a shared VM the same 50 ms run moved
by up to 50% from one minute to the next, and best of 3 could not tell 0.9x from 1.1x. Every
run's results are checked (the original's asserts; the dynamic graphs' sum and count against
the published oracles); a framework that fails a check or raises gets the error in its cell,
not a time. Everything runs in a thread with a 1 GiB stack at a recursion limit of
``RAISED_LIMIT``, which the peers need for cellx's 2,500 layers and the 500-layer graph
(ours does not: a last table probes each case at the default limit).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import js_cases as cases
from ._harness import (
    Cell,
    Table,
    environment_lines,
    error_text,
    load_average,
    progress,
    ratio,
    recursion_limit,
)
from .js_frameworks import FRAMEWORKS, load_framework

#: Peers written in pure Python (goal: ours (pure) at least 1.5x the best of them).
PURE_PEERS = ("signals", "observ", "nervio", "reaktiv", "signalpy-kernel")
COMPILED_PEER = "signified"
PURE_MARGIN = 1.5
COMPILED_STRETCH = 1.5
RAISED_LIMIT = 100_000
DEFAULT_LIMIT = 1000
#: Repetitions per timed run, as a share of the original's (kairo: 500 calls of iter();
#: cellx: 10 builds; dynamic: the published iterations). Shapes are never scaled.
SCALE = 0.1
QUICK_SCALE = 0.01
#: Seconds one framework may take to build a case and warm it up, per unit of scale (at
#: least 20): 60 s at the default scale. Past it the cell says so (``Watchdog``).
BUDGET_PER_SCALE = 600.0
#: Timed runs per case and framework, at most, when ``--min-seconds`` asks for more.
MAX_ROUNDS = 30
MIN_SECONDS = 1.0


@dataclass
class Case:
    """One row: ``prepare(fw)`` builds (untimed) and returns ``run()``, one timed run."""

    name: str
    prepare: Callable[[Any], Callable[[], None]]
    rebuild: bool = False  # cellx: the timed part is an update of a fresh build


def kairo_case(name: str, scale: float) -> Case:
    builder = cases.KAIRO_CASES[name]
    calls = max(1, round(cases.KAIRO_CALLS * scale))

    def prepare(fw: Any) -> Callable[[], None]:
        iterate = fw.with_build(lambda: builder(fw))
        for _ in range(3):  # the original's warm-up
            iterate()

        def run() -> None:
            for _ in range(calls):
                iterate()

        return run

    return Case(name, prepare)


class TooSlow(Exception):
    """A framework's time on a case grows so fast with its size that it would not finish."""


#: Layers of the two small cellx builds timed first (``cellx_growth``).
GROWTH_LAYERS = (8, 16)
_growth: dict[int, str | None] = {}


def cellx_growth(fw: Any) -> str | None:
    """Why ``fw`` cannot run cellx at full size, or None: its update timed at 8 and 16 layers.

    Why: a library whose update time multiplies with every layer (reaktiv 0.24 here: 10
    layers 0.14 s, 20 layers 7.5 s) would never finish 1,000, and a thread cannot be
    stopped. Linear libraries take about twice as long at 16 as at 8 layers; past 8x the
    growth is exponential and the case gets this text instead of a time.
    """
    if id(fw) not in _growth:
        times = []
        for layers in GROWTH_LAYERS:
            update = fw.with_build(lambda layers=layers: cases.cellx(fw, layers))
            start = time.perf_counter()
            update()
            times.append(max(time.perf_counter() - start, 1e-6))
            fw.cleanup()
        growth = times[1] / times[0]
        _growth[id(fw)] = None if growth < 8 else (
            f"skipped: update {growth:.0f}x slower at {GROWTH_LAYERS[1]} layers than at "
            f"{GROWTH_LAYERS[0]} ({times[1] * 1e3:.0f} ms): exponential")
    return _growth[id(fw)]


def cellx_case(layers: int, scale: float) -> Case:
    builds = max(1, round(cases.CELLX_BUILDS * scale))
    before, after = cases.CELLX_EXPECTED[layers]

    def prepare(fw: Any) -> Callable[[], None]:
        why = cellx_growth(fw)
        if why is not None:
            raise TooSlow(why)
        fw.cleanup()
        updates = [fw.with_build(lambda: cases.cellx(fw, layers)) for _ in range(builds)]

        def run() -> None:
            for update in updates:
                got = update()
                cases.check(got == (before, after), f"cellx{layers}: {got} != {(before, after)}")

        return run

    return Case(f"cellx{layers}", prepare, rebuild=True)


def dynamic_case(config: cases.DynamicConfig, scale: float, full: bool = False) -> Case:
    iterations = config.iterations if full else config.slice_iterations(scale)
    expected_count = config.expected_count(iterations)

    def prepare(fw: Any) -> Callable[[], None]:
        graph = fw.with_build(lambda: cases.make_graph(fw, config))
        first = cases.prepare_slice(graph, fw, config, iterations)
        stop = config.iterations

        def reset() -> None:  # untimed, before every timed run (see prepare_slice)
            cases.prepare_slice(graph, fw, config, iterations)

        def run() -> None:
            graph.counter.count = 0
            total = cases.run_graph(graph, fw, first, stop)
            cases.check(config.sum_matches(total), f"sum {total:.6g} != {config.sum:.6g}")
            if config.checks_count:
                cases.check(graph.counter.count == expected_count,
                            f"count {graph.counter.count} != {expected_count}")

        run()  # the warm-up, checked too
        run.reset = reset  # type: ignore[attr-defined]
        return run

    title = config.title + ("" if full else f" ({iterations:,} it.)")
    return Case(title, prepare)


def all_cases(scale: float) -> list[Case]:
    return [
        *(kairo_case(name, scale) for name in cases.KAIRO_CASES),
        cellx_case(1000, scale),
        cellx_case(2500, scale),
        *(dynamic_case(config, scale) for config in cases.DYNAMIC_CONFIGS),
    ]


def _time_once(run: Callable[[], None]) -> float:
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        run()
        return (time.perf_counter_ns() - start) / 1e6
    finally:
        gc.enable()


class OverBudget(BaseException):
    """Raised into the suite's thread by ``Watchdog``; a BaseException, so a library's
    ``except Exception`` does not swallow it."""


class Watchdog:
    """Stops the block in this thread after ``seconds`` by raising ``OverBudget`` in it.

    Why: a library whose time on a case explodes (reaktiv 0.24 on the deeper dynamic graphs)
    would hold the whole run forever, and a thread cannot be killed; CPython can raise an
    exception in it (``PyThreadState_SetAsyncExc``), delivered at its next bytecode. The
    library's own state after that is its business: the cell reports the budget, not a time.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.thread = threading.get_ident()
        self.lock = threading.Lock()
        self.active = False
        self.fired = False

    def _fire(self) -> None:
        with self.lock:
            if self.active:
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread),
                                                           ctypes.py_object(OverBudget))

    def __enter__(self) -> Watchdog:
        self.active = True
        self.timer = threading.Timer(self.seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        with self.lock:
            self.active = False
            if self.fired:  # fired after the block's last bytecode: not delivered, clear it
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread), None)


def measure(case: Case, frameworks: dict[str, Any], repeat: int,
            budget: float, min_seconds: float = 0.0) -> dict[str, Cell]:
    """Milliseconds of one run per framework: best of ``repeat`` or more, interleaved.

    ``min_seconds``: past ``repeat`` runs, a framework is run again (interleaved with the
    others still running) until its timed runs of this case add up to that long, or
    ``MAX_ROUNDS`` runs; never for a case rebuilt for every run.

    Building and the warm-up (one run, or the original's three calls) must finish within
    ``budget`` seconds, or the framework gets the budget in its cell instead of a time.
    """
    cells: dict[str, Cell] = {}
    runs: dict[str, Callable[[], None]] = {}
    for name, fw in frameworks.items():
        if isinstance(fw, str):
            cells[name] = fw
            continue
        try:
            with Watchdog(budget):
                runs[name] = case.prepare(fw)
        except OverBudget:
            cells[name] = f"over {budget:.0f} s to build and warm up: stopped"
            fw.cleanup()
        except Exception as exc:
            cells[name] = _failure(exc)
            fw.cleanup()
    best: dict[str, float] = {}
    done: dict[str, int] = {}
    spent: dict[str, float] = {}
    more = 0.0 if case.rebuild else min_seconds * 1000  # in ms, as the runs are timed

    def wanted(name: str) -> bool:
        count = done.get(name, 0)
        return count < repeat or (spent.get(name, 0.0) < more and count < MAX_ROUNDS)

    while any(wanted(name) for name in runs):
        for name, run in list(runs.items()):
            if not wanted(name):
                continue
            if case.rebuild and name in best:
                try:
                    run = runs[name] = case.prepare(frameworks[name])
                except Exception as exc:
                    cells[name] = _failure(exc)
                    del runs[name]
                    continue
            try:
                reset = getattr(run, "reset", None)
                if reset is not None:
                    reset()
                elapsed = _time_once(run)
            except Exception as exc:
                cells[name] = _failure(exc)
                del runs[name]
                continue
            best[name] = min(best.get(name, math.inf), elapsed)
            done[name] = done.get(name, 0) + 1
            spent[name] = spent.get(name, 0.0) + elapsed
    for fw in frameworks.values():
        if not isinstance(fw, str):
            fw.cleanup()
    for name, elapsed in best.items():
        cells.setdefault(name, elapsed)
    return {name: cells.get(name) for name in frameworks}


def _failure(exc: BaseException) -> str:
    if isinstance(exc, cases.CheckFailed):
        return "check failed: " + str(exc)[:60]
    if isinstance(exc, TooSlow):
        return str(exc)
    return error_text(exc, 60)


def _num(cell: Cell) -> float | None:
    if isinstance(cell, (int, float)) and not isinstance(cell, bool):
        return float(cell)
    return None


def _installed(cell: Cell) -> bool:
    """Whether a framework's cell is its result (a time or an error), not why it is absent."""
    return not (isinstance(cell, str) and cell.startswith(("needs Python", "not installed")))


def _alone(count: int, who: str) -> str:
    """The goal's note on the cases only ours ran, counted as met (``who``: the others)."""
    if not count:
        return ""
    cases = "1 case" if count == 1 else f"{count} cases"
    return f"; met on {cases} where {who} (ours ran)"


def geomean(values: list[float]) -> float | None:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def probe_default_limit(case: Case, fw: Any, budget: float) -> str:
    """Whether one run of ``case`` works at the default recursion limit (fresh build)."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(DEFAULT_LIMIT)
    try:
        with Watchdog(budget):
            run = case.prepare(fw)  # the build and warm-up: one checked run already
            reset = getattr(run, "reset", None)
            if reset is not None:
                reset()
            run()
        return "ok"
    except RecursionError:
        return "RecursionError"
    except OverBudget:
        return f"over {budget:.0f} s: stopped"
    except Exception as exc:
        return _failure(exc)
    finally:
        sys.setrecursionlimit(previous)
        fw.cleanup()


def suite(args: argparse.Namespace) -> list[Table]:
    scale = QUICK_SCALE if args.quick else args.scale
    repeat = 1 if args.quick else args.repeat
    budget = max(20.0, BUDGET_PER_SCALE * scale)
    names = args.frameworks or list(FRAMEWORKS)
    frameworks = {name: load_framework(name) for name in names}
    ours = frameworks.get("ours")
    ours_name = ours.name if not isinstance(ours, str) and ours is not None else "ours"
    if ours_name == "ours (pure)":
        frameworks.pop("ours (pure)", None)  # the installed engine is the pure one already
    pure_name = "ours (pure)" if "ours (pure)" in frameworks else "ours"
    compiled_name = "ours" if ours_name == "ours (compiled)" else None
    labels = {name: (fw.name if not isinstance(fw, str) else name)
              for name, fw in frameworks.items()}

    selected = all_cases(scale)
    if args.full_dynamic:
        selected = [dynamic_case(c, 1, full=True) for c in cases.DYNAMIC_CONFIGS]
    if args.cases:
        selected = [c for c in selected if any(w.lower() in c.name.lower() for w in args.cases)]

    peers_pure = [n for n in PURE_PEERS if n in frameworks]
    headers = ["case", *(labels[n] for n in frameworks)]
    if peers_pure:
        headers.append(f"best pure peer / {labels[pure_name]}")
    if compiled_name and COMPILED_PEER in frameworks:
        headers.append(f"signified / {labels[compiled_name]}")
    filled = args.min_seconds and repeat > 1 and any(not c.rebuild for c in selected)
    more = f", more to fill {args.min_seconds:g} s (not cellx)" if filled else ""
    table = Table(f"js-reactivity-benchmark: ms per run (best of {repeat}{more}, interleaved; "
                  "lower is better)", headers)
    pure_ratios: list[float] = []
    compiled_ratios: list[float] = []
    # Cases ours ran and no peer did (every one raised or ran over its budget: signified's
    # RecursionError on the 500-layer graph): met, and counted apart in the goals.
    pure_alone = compiled_alone = 0
    rows: dict[str, dict[str, Cell]] = {}
    for case in selected:
        progress(f"[js] {case.name}")
        row = measure(case, frameworks, repeat, budget,
                      min_seconds=args.min_seconds if repeat > 1 else 0.0)
        rows[case.name] = row
        cells: list[Cell] = [case.name, *(row[n] for n in frameworks)]
        if peers_pure:
            times = [t for t in (_num(row[n]) for n in peers_pure) if t is not None]
            ours_t = _num(row[pure_name])
            if times and ours_t:
                pure_ratios.append(min(times) / ours_t)
            elif ours_t:
                pure_alone += 1
            cells.append(ratio(min(times), ours_t) if times else "-")
        if compiled_name and COMPILED_PEER in frameworks:
            theirs, ours_t = _num(row[COMPILED_PEER]), _num(row[compiled_name])
            if theirs and ours_t:
                compiled_ratios.append(theirs / ours_t)
            elif ours_t and _installed(row[COMPILED_PEER]):
                compiled_alone += 1
            cells.append(ratio(theirs, ours_t) or "-")
        table.add(*cells)
    summary: list[Cell] = ["geomean / worst", *([""] * len(frameworks))]
    for values in ([pure_ratios] if peers_pure else []) + (
            [compiled_ratios] if compiled_name and COMPILED_PEER in frameworks else []):
        summary.append(f"{geomean(values):.2f}x / {min(values):.2f}x" if values else "-")
    table.add(*summary)
    calls = max(1, round(cases.KAIRO_CALLS * scale))
    builds = max(1, round(cases.CELLX_BUILDS * scale))
    share = "all" if args.full_dynamic else f"{scale:g}"
    unit = (f"kairo: one run = {calls} calls of iter() (500 in the original); cellx: "
            f"{builds} fresh build(s), only the update timed (10); dynamic: the last "
            f"{share} of the published iterations")
    table.notes += [
        f"Scale factor {scale:g} on repetitions only ({unit}); every graph has its original "
        "size. Ratio columns: their time / ours, above 1.00x ours is faster"
        + (f"; 'best pure peer' is the fastest of {', '.join(peers_pure)} on that row."
           if peers_pure else "."),
        "Checked in every run: the original's asserts (values, effect runs), cellx's end "
        "layer, and each dynamic graph's published sum (count too where every leaf is "
        "read, as the original does). A cell with an error got no time.",
        f"Budget: {budget:.0f} s per framework to build a case and warm it up; past it "
        "the cell says so. cellx is first timed at 8 and 16 layers; a framework more than "
        "8x slower at 16 (exponential) is skipped there.",
        f"Recursion limit {RAISED_LIMIT:,} (1 GiB thread stack) for every framework.",
    ]
    tables = [table]
    goals = Table("Goals (issue 21), from this run", ["goal", "measured", "verdict"])
    if peers_pure and pure_ratios:
        worst = min(pure_ratios)
        goals.add(f"{labels[pure_name]} >= {PURE_MARGIN}x the best pure-Python peer on "
                  "every case", f"worst {worst:.2f}x, geomean {geomean(pure_ratios):.2f}x"
                  + _alone(pure_alone, "no pure peer ran"),
                  "PASS" if worst >= PURE_MARGIN
                  and len(pure_ratios) + pure_alone == len(selected) else "FAIL")
    if compiled_name and COMPILED_PEER in frameworks and compiled_ratios:
        worst = min(compiled_ratios)
        complete = len(compiled_ratios) + compiled_alone == len(selected)
        goals.add(f"{labels[compiled_name]} at least as fast as signified on every case",
                  f"worst {worst:.2f}x, geomean {geomean(compiled_ratios):.2f}x"
                  + _alone(compiled_alone, f"{COMPILED_PEER} did not run"),
                  "PASS" if worst >= 1 and complete else "FAIL")
        goals.add(f"stretch: {labels[compiled_name]} >= {COMPILED_STRETCH}x signified",
                  f"{sum(r >= COMPILED_STRETCH for r in compiled_ratios)} of "
                  f"{len(compiled_ratios)} cases"
                  + _alone(compiled_alone, f"{COMPILED_PEER} did not run"),
                  "PASS" if worst >= COMPILED_STRETCH and complete else "FAIL")
    if goals.rows:
        goals.notes.append("Verdicts are ratios within this one run; on a shared 2-core "
                           "machine re-run before calling a FAIL a regression.")
        tables.append(goals)
    for done in tables:  # printed now: the probe below can take minutes
        print(done.render(), flush=True)
    if args.probe_default_limit:
        probe = Table(f"Each case once at the default recursion limit ({DEFAULT_LIMIT:,})",
                      ["case", *(labels[n] for n in frameworks)])
        for case in selected:
            progress(f"[js] default limit: {case.name}")
            probe.add(case.name, *(fw if isinstance(fw, str)
                                   else probe_default_limit(case, fw, budget)
                                   for fw in frameworks.values()))
        probe.notes.append("Run last: a RecursionError may leave a library's global state "
                           "broken.")
        print(probe.render(), flush=True)
        tables.append(probe)
    return tables


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.js_suite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: scale 0.01, 1 run")
    parser.add_argument("--scale", type=float, default=SCALE,
                        help=f"share of the original repetitions (default {SCALE})")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--min-seconds", type=float, default=MIN_SECONDS,
                        help="past --repeat, run a framework again until its timed runs of "
                             f"a case add up to this (at most {MAX_ROUNDS} runs; 0: never; "
                             f"default {MIN_SECONDS:g})")
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS), metavar="NAME",
                        help=f"some of: {', '.join(FRAMEWORKS)}")
    parser.add_argument("--cases", nargs="+", metavar="WORD",
                        help="only cases whose name contains one of these")
    parser.add_argument("--full-dynamic", action="store_true",
                        help="the dynamic graphs at their published iteration counts")
    parser.add_argument("--no-probe", dest="probe_default_limit", action="store_false",
                        help="skip the default-recursion-limit table")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    from signalpy_lab.kernel import ENGINE
    from signalpy_lab.kernel._engine import REASON

    lines = environment_lines("python -m benchmarks.js_suite " + " ".join(
        sys.argv[1:] if argv is None else argv))
    extra = ", ".join(f"{n} {load_version(n)}" for n in ("signified", "signals"))
    lines.append(f"- engine: signalpy_lab.kernel.ENGINE = {ENGINE!r} ({REASON}); "
                 f"also {extra}")
    print("## js-reactivity-benchmark, ported\n")
    print("\n".join(lines) + "\n", flush=True)
    result: list[list[Table]] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            with recursion_limit(RAISED_LIMIT):
                result.append(suite(args))
        except BaseException as exc:
            failure.append(exc)

    previous = threading.stack_size(1 << 30)  # both restored: main() is called by tests too
    try:
        worker = threading.Thread(target=body, name="js-suite")
        worker.start()
        worker.join()
    finally:
        threading.stack_size(previous)
    if failure:
        raise failure[0]
    print(f"- load average at end: {load_average()}; wall time "
          f"{time.perf_counter() - started:.1f} s")


def load_version(dist: str) -> str:
    from ._harness import package_version

    return package_version(dist)


if __name__ == "__main__":
    main()
