"""A/B two versions of the reactive engine in one process, on the four shapes of table a.

Why: on a shared machine the load moves from one run to the next by more than a small
engine change buys, so "before" and "after" tables from two runs cannot measure it. Here
both engines (``graph.py`` + ``reactive.py`` + ``errors.py`` at a git revision, or the work
tree) are loaded side by side as separate packages and timed interleaved, with the rules of
``_harness.py``: whatever slows the machine slows both. From the repository root:

    .venv/bin/python -m benchmarks.ab_engine HEAD~1 wt            # all four shapes
    .venv/bin/python -m benchmarks.ab_engine HEAD wt chain effect  # some of them
    .venv/bin/python -m benchmarks.ab_engine HEAD wt mux diamond --compiled

``wt`` is the work tree. The shapes are table a's four and the kairo cases of
``js_cases`` (one ``iter()`` each). ``--compiled`` compiles both versions' ``graph.py``
with Cython first, as ``pip install`` does (Cython comes with the ``bench`` extra), to
measure a change to the compiled engine. The last column is old time / new time: above
1.00x the second engine is faster. Identical engines come out within a few percent of
1.00x here.
"""
from __future__ import annotations

import argparse
import importlib
import itertools
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from ._harness import REPO_ROOT, interleaved_best_of_us, recursion_limit
from .js_cases import KAIRO_CASES

FILES = {
    "graph.py": "signalpy_lab/kernel/graph.py",
    "reactive.py": "signalpy_lab/kernel/reactive.py",
    "errors.py": "signalpy_lab/errors.py",
    # Cython's pure-Python-mode names, for graph.py as Python (issue 21; older revisions
    # have none, and their graph.py does not ask for it).
    "_cython_shim.py": "signalpy_lab/kernel/_cython_shim.py",
}
SHAPES = ("chain", "fan", "diamond", "effect", *KAIRO_CASES)


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
    name = name or "engine_" + "".join(c if c.isalnum() else "_" for c in rev)
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
                if target == "_cython_shim.py":
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
    if shape == "diamond":

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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ab_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="git revision, or wt for the work tree")
    parser.add_argument("new", help="git revision, or wt for the work tree")
    parser.add_argument("shapes", nargs="*", help=f"some of {', '.join(SHAPES)} (default all)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved loops (default 7)")
    parser.add_argument("--compiled", action="store_true",
                        help="compile both graph.py with Cython first (the bench extra has it)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.shapes) - set(SHAPES))
    if unknown:
        parser.error(f"unknown shapes {unknown}; valid: {', '.join(SHAPES)}")
    if args.old == args.new:
        parser.error(f"old and new are both {args.old!r}; give two different versions")
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        engines = {rev: load_engine(rev, Path(tmp), compiled=args.compiled)
                   for rev in (args.old, args.new)}
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
