"""Timing primitives, isolated probes and markdown tables for ``benchmarks.run``.

Why a module of its own: ``run.py`` says *what* is measured; this says *how*,
once, so every table uses the same rules:

* clocks are ``time.perf_counter_ns``; the garbage collector is off inside
  every timing window (and a ``gc.collect()`` runs just before it), so a
  collection triggered by one system's garbage is never billed to another;
* synchronous micro-operations (a reactive update) are timed as loops of
  ``number`` calls, calibrated to last at least ``min_seconds``, and reported
  as the best of ``repeat`` loops (``timeit``'s rule: the minimum is the run
  least disturbed by the machine);
* async operations (a routed invoke) are timed one by one and reported as the
  median, so one slow outlier (a dict resize, a page fault) cannot move it;
* anything that may leave a library in a broken state (a ``RecursionError``
  deep inside its graph) runs in a fresh interpreter;
* a failure becomes the text of its table cell, never a crash of the run.
"""
from __future__ import annotations

import gc
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "REPO_ROOT",
    "Cell",
    "Table",
    "environment_lines",
    "error_text",
    "fmt",
    "interleaved_best_of_us",
    "load_average",
    "median_us",
    "no_gc",
    "package_version",
    "progress",
    "ratio",
    "recursion_limit",
    "report_main",
    "run_isolated",
    "time_async_ops",
]

REPO_ROOT = Path(__file__).resolve().parents[1]

#: A table cell: a number to format, or the text of a failure / a label.
Cell = float | int | str | None


@contextmanager
def no_gc() -> Iterator[None]:
    """Collect now, then keep the collector off for the block (restored after)."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def recursion_limit(limit: int) -> Iterator[None]:
    """Run the block at ``sys.setrecursionlimit(limit)``, restoring the old limit after."""
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(previous)


def _loop_ns(fn: Callable[[], object], number: int) -> int:
    start = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return time.perf_counter_ns() - start


def interleaved_best_of_us(fns: Mapping[str, Callable[[], object]], *, repeat: int = 5,
                           min_seconds: float = 0.2, warmup: int = 3) -> dict[str, Cell]:
    """Microseconds per call of each function: the best of ``repeat`` calibrated loops.

    Each function's loop runs ``number`` calls, ``number`` doubled until one loop takes
    at least ``min_seconds``; gc is off inside each loop. The repeats are interleaved
    (A B C, A B C, ...), so a slow spell of a shared machine hits every system alike and
    the best-of rule can skip it for each. A function that raises gets the error text.
    """
    min_ns = int(min_seconds * 1e9)
    numbers: dict[str, int] = {}
    results: dict[str, Cell] = {}
    for name, fn in fns.items():
        try:
            for _ in range(warmup):
                fn()
            number = 1
            with no_gc():
                while _loop_ns(fn, number) < min_ns:
                    number *= 2
            numbers[name] = number
        except Exception as exc:
            results[name] = error_text(exc)
    best: dict[str, int] = {}
    for _ in range(repeat):
        for name, number in numbers.items():
            if name in results:
                continue
            try:
                with no_gc():
                    elapsed = _loop_ns(fns[name], number)
            except Exception as exc:
                results[name] = error_text(exc)
                continue
            best[name] = min(best.get(name, elapsed), elapsed)
    for name, elapsed in best.items():
        results.setdefault(name, elapsed / numbers[name] / 1e3)
    return {name: results[name] for name in fns}


async def time_async_ops(op: Callable[[int], Awaitable[object]], count: int, *,
                         after: Callable[[int, object], None] | None = None) -> list[int]:
    """Nanoseconds of each of ``count`` awaited calls ``op(k)``, gc off throughout.

    ``after(k, result)`` runs outside the timed region of each call, for checks.
    """
    times = [0] * count
    clock = time.perf_counter_ns
    with no_gc():
        for k in range(count):
            start = clock()
            result = await op(k)
            times[k] = clock() - start
            if after is not None:
                after(k, result)
    return times


def median_us(times_ns: Sequence[int]) -> float:
    return statistics.median(times_ns) / 1e3


def run_isolated(code: str, timeout: float = 180.0) -> str:
    """Run ``code`` in a fresh interpreter from the repo root; its last stdout line.

    A crash or non-zero exit comes back as text describing it, never as an exception.
    """
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:g}s"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        return f"exit {out.returncode}: {last}"
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def error_text(exc: BaseException, limit: int = 70) -> str:
    text = f"error: {type(exc).__name__}: {exc}".replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt(value: Cell, unit: str = "") -> str:
    """A number with about three significant digits (and ``unit``), or the text as is."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}{unit}"
    magnitude = abs(value)
    if magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return text + unit


def ratio(numerator: Cell, denominator: Cell) -> Cell:
    """``numerator / denominator`` as ``'2.31x'``, or ``None`` if either is not a number."""
    if isinstance(numerator, (int, float)) and isinstance(denominator, (int, float)) \
            and not isinstance(numerator, bool) and denominator:
        return f"{numerator / denominator:.2f}x"
    return None


@dataclass
class Table:
    """A markdown table with a title and footnotes."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        self.rows.append([fmt(c).replace("|", "\\|") for c in cells])

    def render(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row)]

        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

        out = [f"### {self.title}", "", line(self.headers),
               "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out.extend(line(r) for r in self.rows)
        if self.notes:
            out.append("")
            out.extend(self.notes)
        return "\n".join(out) + "\n"


def package_version(dist: str) -> str:
    """The installed version of distribution ``dist``, or ``'not installed'``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for text in info:
                if text.startswith("model name"):
                    return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_state() -> str:
    """The commit measured, and whether the package had uncommitted changes."""
    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                                 timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip() if out.returncode == 0 else ""

    commit = git("log", "-1", "--format=%h %s")
    if not commit:
        return "unknown (no git)"
    dirty = git("status", "--porcelain", "--", "signalpy_lab", "pyproject.toml").splitlines()
    state = f"uncommitted changes in {len(dirty)} path(s) of signalpy_lab/" if dirty else "clean"
    return f"{commit} ({state})"


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every number."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def environment_lines(command: str) -> list[str]:
    """What produced the numbers: command, date, machine, interpreter, package versions."""
    packages = ", ".join(f"{d} {package_version(d)}" for d in (
        "signalpy-lab", "signalpy-kernel", "reaktiv", "observ", "nervio", "pydantic",
        "pydantic-core",
    ))
    return [
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- code: {_git_state()}",
        f"- machine: {platform.platform()}, {_cpu_model()}, {os.cpu_count()} CPUs "
        f"(load average at start: {load_average()})",
        f"- python: {platform.python_implementation()} {sys.version.split()[0]} "
        f"({sys.executable})",
        f"- packages: {packages}",
    ]


def progress(text: str) -> None:
    """A progress line, on stderr (the tables go to stdout)."""
    print(text, file=sys.stderr, flush=True)


def report_main(argv: list[str] | None, *, module: str, doc: str | None, title: str,
                quick_help: str, header: Callable[[], str],
                run: Callable[[bool], Awaitable[list[Table]]]) -> None:
    """The ``main`` of a report script: ``--quick``, the environment, then the tables.

    ``module`` is what ``python -m`` runs; ``header()`` adds the script's own line (the
    versions it depends on); ``run(quick)`` measures and returns the tables.
    """
    import argparse
    import asyncio

    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    lines = environment_lines(f"python -m {module}" + (" --quick" if args.quick else ""))
    lines.append(header())
    tables = asyncio.run(run(args.quick))
    print(f"## {title}\n")
    print("\n".join(lines))
    print(f"- load average at end: {load_average()}; wall time "
          f"{time.perf_counter() - started:.1f} s\n")
    for table in tables:
        print(table.render())
