"""js_suite's cases counted, not timed: CPU instructions of one run, ours against a peer.

Why: on a shared 2-core VM one engine timed twice moves by up to 50% (issue 21's round), so
js_suite cannot tell 0.9x from 1.1x on a case, and the compiled goal (at least signified's
speed on every case) sits in that band on a few of them. The instructions a run executes
do not move with the machine's load (the hash seed is fixed), so this says which engine
does less work on each case. It is not time: a cache miss costs no extra instructions, so
an engine with larger nodes can execute fewer and still take longer. ``--cache-sim`` and
``--branch-sim`` add callgrind's models of this CPU's caches and of a branch predictor,
and count their misses (``_callgrind``). Read it beside js_suite's times. From the
repository root (valgrind from apt):

    .venv/bin/python -m benchmarks.js_instructions             # ours vs signified (3.12+)
    .venv/bin/python -m benchmarks.js_instructions --frameworks ours "ours (pure)" observ \\
        --cases mux diamond
    .venv/bin/python -m benchmarks.js_instructions --cases cellx --cache-sim --branch-sim

Each (case, framework) runs in its own process under ``valgrind --tool=callgrind``, which
counts only inside ``functools.reduce``: the process builds the case and warms it up as
js_suite does (not counted), then makes one of js_suite's timed runs through ``reduce``
(counted, checks included). The processes run side by side, one per CPU: counts do not care.
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from signalpy_lab.kernel import ENGINE
from signalpy_lab.kernel._engine import VARIABLE as ENGINE_VARIABLE

from . import _callgrind
from ._harness import (
    Cell,
    Table,
    environment_lines,
    load_average,
    package_version,
    progress,
    ratio,
    recursion_limit,
)
from .js_frameworks import FRAMEWORKS, load_framework
from .js_suite import RAISED_LIMIT, all_cases

#: The share of js_suite's repetitions in one counted run (kairo: 10 calls of ``iter()``).
SCALE = 0.02
#: Seconds one (case, framework) may take under valgrind (about 50x slower than native).
TIMEOUT = 900.0
DEFAULT_FRAMEWORKS = ("ours", "signified")


def count(case: str, framework: str, scale: float, timeout: float,
          cache: bool = False, branches: bool = False) -> dict[str, int] | str:
    """The events of one timed run of ``case`` by ``framework`` (``Ir``: instructions; with
    ``cache`` / ``branches``, the simulated misses too), or why there are none.

    The process must load the engine this one did (the table's header names it): an edit
    of ``graph.py`` during a run made the rest of the run count the pure engine, silently,
    as the compiled one was stale; now those cells say why the compiled one cannot load.
    """
    command = [sys.executable, "-m", "benchmarks.js_instructions", "--run-one", case,
               framework, str(scale)]
    try:
        counted = _callgrind.count(command, toggle="functools_reduce", cache=cache,
                                   branches=branches, timeout=timeout,
                                   env={ENGINE_VARIABLE: ENGINE})
    except subprocess.TimeoutExpired:
        return f"over {timeout:.0f} s under valgrind: stopped"
    except _callgrind.CallgrindError as exc:
        return f"error: {str(exc)[:80]}"
    why = re.search(r"^RESULT: (.*)$", counted.stdout, re.MULTILINE)
    if not why:
        return "error: the counted process printed no result"
    if why.group(1) != "ok":
        return why.group(1)
    return counted.events


def _event(result: dict[str, int] | str, event: str) -> Cell:
    """One event of ``count``'s result, a cache miss total, or its text."""
    if isinstance(result, str):
        return result
    return _callgrind.misses(result)[event] if event in _callgrind.MISS_EVENTS else result[event]


def _run_one(case_name: str, framework: str, scale: float) -> None:
    """The process ``count`` measures. Prints ``RESULT: ok`` or why the run has no count."""
    outcome: list[str] = []

    def body() -> None:
        try:
            fw = load_framework(framework)
            if isinstance(fw, str):
                outcome.append(fw)
                return
            case = next(c for c in all_cases(scale) if c.name == case_name)
            run = case.prepare(fw)
            reset = getattr(run, "reset", None)
            if reset is not None:
                reset()
            functools.reduce(lambda _, __: run(), range(1), None)  # the counted part
        except Exception as exc:  # a failed check or the library's error: the cell says it
            outcome.append(f"error: {type(exc).__name__}: {str(exc)[:60]}")
            return
        outcome.append("ok")

    previous = threading.stack_size(1 << 30)  # as js_suite: the peers recurse on cellx2500
    try:
        with recursion_limit(RAISED_LIMIT):
            worker = threading.Thread(target=body)
            worker.start()
            worker.join()
    finally:
        threading.stack_size(previous)
    print("RESULT:", outcome[0] if outcome else "error: no result", flush=True)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-one"]:
        _run_one(argv[1], argv[2], float(argv[3]))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.js_instructions",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frameworks", nargs="+", choices=list(FRAMEWORKS), metavar="NAME",
                        default=list(DEFAULT_FRAMEWORKS),
                        help="the first is the reference (default: "
                             f"{' '.join(DEFAULT_FRAMEWORKS)}); some of: {', '.join(FRAMEWORKS)}")
    parser.add_argument("--cases", nargs="+", metavar="WORD",
                        help="only cases whose name contains one of these (default: the kairo "
                             "cases and cellx)")
    parser.add_argument("--scale", type=float, default=SCALE,
                        help=f"share of the original repetitions in the counted run "
                             f"(default {SCALE})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT,
                        help=f"seconds per case and framework (default {TIMEOUT:.0f})")
    parser.add_argument("--cache-sim", action="store_true",
                        help="also simulate this CPU's L1 data cache and L2, and count their "
                             "misses (slower)")
    parser.add_argument("--branch-sim", action="store_true",
                        help="also simulate a branch predictor and count its mispredictions")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not on PATH (Debian: apt-get install valgrind)")
    names = [c.name for c in all_cases(args.scale)]
    if args.cases:
        chosen = [n for n in names if any(word in n for word in args.cases)]
        if not chosen:
            parser.error(f"no case matches {args.cases}; the cases: {', '.join(names)}")
    else:
        chosen = [n for n in names if " " not in n]  # kairo and cellx, not the dynamic graphs
    started = time.perf_counter()
    lines = environment_lines("python -m benchmarks.js_instructions " + " ".join(argv))
    lines.append(f"- engine: signalpy_lab.kernel.ENGINE = {ENGINE!r}; also signified "
                 f"{package_version('signified')}, signals {package_version('signals')}")
    print("## js-reactivity-benchmark, counted\n")
    print("\n".join(lines) + "\n", flush=True)
    jobs = [(case, fw) for case in chosen for fw in args.frameworks]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {job: pool.submit(count, *job, args.scale, args.timeout, args.cache_sim,
                                    args.branch_sim)
                   for job in jobs}
        results: dict[tuple[str, str], dict[str, int] | str] = {}
        for job, future in futures.items():
            results[job] = future.result()
            progress(f"[count] {job[0]} {job[1]}: {_event(results[job], 'Ir')}")
    reference, *others = args.frameworks
    what = {"CPU instructions per run (lower is fewer)": "Ir"}
    simulated = [*_callgrind.MISS_EVENTS][:2] if args.cache_sim else []
    simulated += ["mispredicted branches"] if args.branch_sim else []
    what.update({f"Simulated {name} per run (lower is fewer)": name for name in simulated})
    for title, event in what.items():
        table = Table(title, ["case", *args.frameworks, *(f"{o} / {reference}" for o in others)])
        for case in chosen:
            row: list[Any] = [_event(results[(case, fw)], event) for fw in args.frameworks]
            table.add(case, *row, *(ratio(_event(results[(case, o)], event), row[0])
                                    for o in others))
        if event == "Ir":
            table.notes.append(
                f"One run = js_suite's timed run at scale {args.scale} (kairo: "
                f"{max(1, round(500 * args.scale))} calls of iter()), counted by callgrind "
                "inside functools.reduce only; building and warm-up are not counted. Ratio "
                f"columns: their count over the first column's ({reference}), above 1.00x "
                f"{reference} has fewer. Instructions are not time (see the module docstring).")
        elif event == "mispredicted branches":
            table.notes.append("callgrind's branch model (--branch-sim=yes): conditional and "
                               "indirect branches it predicted wrong.")
        else:
            table.notes.append(
                f"callgrind's cache model: {' '.join(_callgrind.cache_options()[1:])} (this "
                "CPU's L1 data cache and L2, size,ways,line), reads and writes; no prefetcher.")
        print(table.render())
    print(f"- load average at end: {load_average()}; wall time "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
