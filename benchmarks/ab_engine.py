"""A/B two versions of the reactive engine in one process: table a's shapes, kairo's cases.

Why: on a shared machine the load moves from one run to the next by more than a small
engine change buys, so "before" and "after" tables from two runs cannot measure it. Here
both engines (``graph.py`` + ``reactive.py`` + ``errors.py`` at a git revision, or the work
tree) are loaded side by side as separate packages and timed interleaved, with the rules of
``_harness.py``: whatever slows the machine slows both. From the repository root:

    .venv/bin/python -m benchmarks.ab_engine HEAD~1 wt            # all four shapes
    .venv/bin/python -m benchmarks.ab_engine HEAD wt chain effect  # some of them
    .venv/bin/python -m benchmarks.ab_engine HEAD wt mux diamond --compiled
    .venv/bin/python -m benchmarks.ab_engine HEAD wt mux diamond --compiled --instructions

``wt`` is the work tree. Each version runs as it ships: as Python, through its own
``_fold.py`` where it has one (``cython.compiled`` and the states folded at import).
The shapes are table a's four (its diamond is ``diamond_a``) and
the kairo cases of ``js_cases`` (one ``iter()`` each). ``--compiled`` compiles both
versions' ``graph.py`` with Cython first, as ``pip install`` does (Cython comes with the
``bench`` extra), to measure a change to the compiled engine. The last column is old time
/ new time: above 1.00x the second engine is faster. Identical engines come out within a
few percent of 1.00x here.

``--instructions`` counts instead of timing, for when the machine is too noisy even for
that (on a shared VM, one engine timed twice in a row moved by up to 50%): each engine runs
each shape alone under ``valgrind --tool=callgrind`` (valgrind from apt; about 50x slower,
so ``--iterations`` is small), N and 3N times, and the table gives CPU instructions per
update, the difference of the two runs over 2N (start-up and building cancel out; the hash
seed is fixed). Two revisions with the same engine come out at 1.00x. Instructions are not time (a
cache miss costs no more instructions than a hit), so a change that moves memory rather
than work should be timed as well.
"""
from __future__ import annotations

import argparse
import gc
import importlib
import importlib.machinery
import itertools
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from . import _callgrind
from ._harness import REPO_ROOT, interleaved_best_of_us, recursion_limit
from .js_cases import KAIRO_CASES

FILES = {
    "graph.py": "signalpy_lab/kernel/graph.py",
    "reactive.py": "signalpy_lab/kernel/reactive.py",
    "errors.py": "signalpy_lab/errors.py",
    # Cython's pure-Python-mode names, for graph.py as Python (issue 21; older revisions
    # have none, and their graph.py does not ask for it).
    "_cython_shim.py": "signalpy_lab/kernel/_cython_shim.py",
    # How the pure engine is loaded (``cython.compiled`` and the states folded at import),
    # where a revision has it: each revision runs as it ships.
    "_fold.py": "signalpy_lab/kernel/_fold.py",
}
OPTIONAL = ("_cython_shim.py", "_fold.py")
TABLE_A = ("chain", "fan", "diamond_a", "effect")
SHAPES = (*TABLE_A, *KAIRO_CASES)
SMALL = ("diamond_a", "effect")


def compile_graph(package: Path) -> None:
    """Build ``package/graph.py`` into an extension beside it, as ``hatch_build`` does
    (Cython's pure-Python mode, ``language_level`` 3), so the package imports it compiled."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(f"{package.name}.graph", [str(package / "graph.py")])
    # include_path: graph.py cimports signalpy_lab/kernel/_pythread.pxd (the work tree's).
    modules = cythonize([extension], build_dir=str(package / "_c"), quiet=True,
                        include_path=[str(REPO_ROOT)],
                        compiler_directives={"language_level": 3})
    command = build_ext(Distribution({"ext_modules": modules, "script_name": "setup.py"}))
    command.build_lib = str(package.parent)
    command.build_temp = str(package / "_c")
    command.ensure_finalized()
    command.run()


def load_engine(rev: str, where: Path, *, compiled: bool = False,
                name: str | None = None) -> ModuleType:
    """``reactive`` of the engine at ``rev`` (``wt``: the work tree), as its own package
    (``name``, default from ``rev``); ``compiled``: its ``graph.py`` built with Cython first."""
    name = name or _package(rev)
    package = where / name
    package.mkdir()
    for target, source in FILES.items():
        if rev == "wt":
            if not (REPO_ROOT / source).exists():
                continue
            text = (REPO_ROOT / source).read_text()
        else:
            shown = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:{source}"],
                                   capture_output=True, text=True)
            if shown.returncode:
                if target in OPTIONAL:
                    continue
                raise RuntimeError(f"git show {rev}:{source}: {shown.stderr.strip()}")
            text = shown.stdout
        (package / target).write_text(text.replace("from ..errors import", "from .errors import"))
    (package / "__init__.py").write_text("")
    # A package written after the finders looked at ``where`` (a directory put on sys.path
    # before it existed, or listed while empty) is found only once their caches are reset.
    importlib.invalidate_caches()
    if compiled:
        compile_graph(package)
        reactive = importlib.import_module(f"{name}.reactive")
        if not importlib.import_module(f"{name}.graph").COMPILED:
            raise RuntimeError(f"{rev}'s graph.py was built but does not run compiled")
        return reactive
    return _import_reactive(package)


def _import_reactive(package: Path) -> ModuleType:
    """``reactive`` of the engine copied to ``package``; run as Python, its ``graph.py`` is
    loaded as that revision ships it (through its ``_fold.py``, where it has one)."""
    name = package.name
    compiled = any((package / f"graph{suffix}").exists()
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES)
    if not compiled and (package / "_fold.py").exists() and f"{name}.graph" not in sys.modules:
        importlib.import_module(f"{name}._fold").load(f"{name}.graph", package / "graph.py")
    return importlib.import_module(f"{name}.reactive")


def _plus(src: Any, k: int) -> Callable[[], int]:
    def fn() -> int:
        return src.get() + k  # type: ignore[no-any-return]

    return fn


def build(r: ModuleType, shape: str) -> Callable[[], None]:
    """One update of ``shape`` with engine ``r``, as in ``ours_shapes`` (sizes 1000), or one
    ``iter()`` of the kairo case ``shape``."""
    if shape in KAIRO_CASES:
        from .js_frameworks import Ours

        framework = Ours(r, r.__name__)
        return framework.with_build(lambda: KAIRO_CASES[shape](framework))  # type: ignore[no-any-return]
    counter = itertools.count(1)
    s = r.Signal(0)
    if shape == "chain":
        node = s
        for _ in range(1000):
            node = r.Computed(_plus(node, 1))

        def update() -> None:
            s.set(next(counter))
            node.get()

        return update
    if shape == "fan":
        nodes = [r.Computed(_plus(s, i)) for i in range(1000)]

        def update_all() -> None:
            s.set(next(counter))
            for n in nodes:
                n.get()

        return update_all
    b, c = r.Computed(_plus(s, 1)), r.Computed(_plus(s, 2))
    d = r.Computed(lambda: b.get() + c.get())
    if shape == "diamond_a":

        def update_d() -> None:
            s.set(next(counter))
            d.get()

        return update_d
    seen: list[int] = []
    effect = r.Effect(lambda: seen.append(d.get()))

    def update_effect() -> None:
        s.set(next(counter))  # the effect runs inside set()
        seen.clear()

    update_effect.keep_alive = effect  # type: ignore[attr-defined]
    return update_effect


def count_instructions(where: Path, rev: str, shape: str, iterations: int) -> int:
    """CPU instructions of one update of ``shape`` with the engine built at ``where`` for
    ``rev``: two runs under callgrind (N and 3N updates), their difference over 2N."""
    collected = []
    if shape in SMALL:  # a few µs each: enough of them to stand out of the start-up's noise
        iterations *= 200
    for n in (iterations, 3 * iterations):
        command = [sys.executable, "-m", "benchmarks.ab_engine", "--run-alone", str(where),
                   _package(rev), shape, str(n)]
        try:
            collected.append(_callgrind.count(command).events["Ir"])
        except _callgrind.CallgrindError as exc:
            raise RuntimeError(f"callgrind run of {rev} {shape} failed: {exc}") from None
    return (collected[1] - collected[0]) // (2 * iterations)


def _package(rev: str) -> str:
    return "engine_" + "".join(c if c.isalnum() else "_" for c in rev)


def _run_alone(where: str, package: str, shape: str, n: int) -> None:
    """The process ``count_instructions`` measures: build, warm up, ``n`` updates."""
    sys.path.insert(0, where)
    update = build(_import_reactive(Path(where) / package), shape)
    for _ in range(3):
        update()
    gc.disable()
    with recursion_limit(20_000):
        for _ in range(n):
            update()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--run-alone"]:
        _run_alone(argv[1], argv[2], argv[3], int(argv[4]))
        return
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="git revision, or wt for the work tree")
    parser.add_argument("new", help="git revision, or wt for the work tree")
    parser.add_argument("shapes", nargs="*", help=f"some of {', '.join(SHAPES)} (default all)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved loops (default 7)")
    parser.add_argument("--compiled", action="store_true",
                        help="compile both graph.py with Cython first (the bench extra has it)")
    parser.add_argument("--instructions", action="store_true",
                        help="count CPU instructions under valgrind instead of timing")
    parser.add_argument("--iterations", type=int, default=10,
                        help="updates per callgrind run with --instructions (default 10)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.shapes) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shapes {unknown}; valid: {', '.join(SHAPES)}")
    if args.old == args.new:
        parser.error(f"old and new are both {args.old!r}; give two different versions")
    if args.instructions and shutil.which("valgrind") is None:
        parser.error("--instructions needs valgrind on PATH (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        engines = {rev: load_engine(rev, Path(tmp), compiled=args.compiled)
                   for rev in (args.old, args.new)}
        if args.instructions:
            print(f"{'shape':20} {args.old + ' instr.':>16} {args.new + ' instr.':>16}"
                  f"   old / new   ({'compiled' if args.compiled else 'pure'}, per update)")
            for shape in args.shapes or SHAPES:
                old_n, new_n = (count_instructions(Path(tmp), rev, shape, args.iterations)
                                for rev in (args.old, args.new))
                print(f"{shape:20} {old_n:16,} {new_n:16,}   {old_n / new_n:.3f}x", flush=True)
            return
        print(f"{'shape':20} {args.old + ' µs':>14} {args.new + ' µs':>14}   old / new"
              f"   ({'compiled' if args.compiled else 'pure'})")
        with recursion_limit(20_000):  # the engines need none of it; their first runs might
            for shape in args.shapes or SHAPES:
                updates = {rev: build(r, shape) for rev, r in engines.items()}
                for update in updates.values():
                    update()
                timed = interleaved_best_of_us(updates, repeat=args.repeat, min_seconds=0.1)
                old, new = timed[args.old], timed[args.new]
                if isinstance(old, (int, float)) and isinstance(new, (int, float)):
                    print(f"{shape:20} {old:14.2f} {new:14.2f}   {old / new:.2f}x")
                else:
                    print(f"{shape:20} {old!s:>14} {new!s:>14}")


if __name__ == "__main__":
    main()
