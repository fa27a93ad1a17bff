"""mypyc against Cython on the same ``graph.py``: the prototype that chose the compiler.

Why (issue 21): the engine is compiled from one source, and two compilers could do it: Cython
in its pure-Python mode (what ``pip install`` builds, ``hatch_build.py``) or mypyc, which
compiles type-checked Python. This builds both from the work tree's ``graph.py`` and times
them interleaved with the pure module on kairo cases. From the repository root:

    .venv/bin/python -m benchmarks.mypyc_engine                       # deep, broad, diamond, mux
    .venv/bin/python -m benchmarks.mypyc_engine triangle unstable

mypyc gets ``graph.py`` as Python sees it, made mypyc-ready by ``mypyc_source``: the Cython
declarations become annotations (``x = cython.declare(cython.long)`` -> ``x: int``), the
node classes native classes that Python may subclass (``reactive.Signal`` does), the
``cython.compiled`` branches the pure ones, ``__weakref__`` dropped (a mypyc native class
has no such slot). mypy type-checks the result before mypyc compiles it. In the table,
"X over Y" is Y's time / X's time: above 1.00x, X is faster.
"""
from __future__ import annotations

import argparse
import importlib
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from ._harness import REPO_ROOT, interleaved_best_of_us, recursion_limit
from .ab_engine import build, load_engine
from .js_cases import KAIRO_CASES

__all__ = ["DEFAULT_CASES", "load_mypyc_engine", "mypyc_source"]

DEFAULT_CASES = ("deepPropagation", "broadPropagation", "diamond", "mux")
#: Cython's C types as the annotations mypyc understands.
_TYPES = {"cython.long": "int", "cython.longlong": "int", "cython.int": "int",
          "cython.ulong": "int", "cython.bint": "bool", "object": "Any"}
_IMPORT = re.compile(r"try:  # compiled, .*?\nexcept ImportError:\n.*?\n\n", re.S)
_COMPILED_ONLY = re.compile(r"if cython\.compiled:\n    # The calling.*?\nelse:\n    (.*?)\n", re.S)
_FIELD = re.compile(r"^(\s+)(\w+) = cython\.declare\(([\w.]+)(?:, visibility=\"public\")?\)$",
                    re.M)
_GLOBAL = re.compile(r"^(\w+) = cython\.declare\(([\w.]+), (.+)\)$", re.M)


def mypyc_source(text: str) -> str:
    """``graph.py`` (Cython's pure-Python mode) rewritten for mypyc; see the module doc."""
    text = _IMPORT.sub("from typing import Final\n\nfrom mypy_extensions import mypyc_attr\n\n",
                       text, count=1)
    text = _COMPILED_ONLY.sub(r"\1\n", text, count=1)
    text = re.sub(r"^@cython\.cclass$", "@mypyc_attr(allow_interpreted_subclasses=True)",
                  text, flags=re.M)
    text = re.sub(r"^@cython\.(cfunc|inline)\n", "", text, flags=re.M)

    def field(match: re.Match[str]) -> str:
        indent, name, kind = match.groups()
        if name == "__weakref__":
            return f"{indent}pass"
        if name == "new_deps":  # None between runs
            return f"{indent}{name}: dict[Any, Any] | None"
        return f"{indent}{name}: {_TYPES.get(kind, kind)}"

    text = _FIELD.sub(field, text)
    text = _GLOBAL.sub(lambda m: f"{m[1]}: Final = {m[3]}" if m[2].startswith("cython.")
                       else f"{m[1]}: {m[2]} = {m[3]}", text)
    for kind, python in _TYPES.items():
        if kind.startswith("cython."):
            text = re.sub(r"(:\s*|-> )" + re.escape(kind) + r"\b",
                          lambda m, python=python: m[1] + python, text)
    text = text.replace("stack: list[tuple[DerivedNode, Any, int]] = []", "stack: list[Any] = []")
    text = text.replace("\n    new: dict\n", "\n    new: dict[Any, Any]\n")
    text = text.replace("cython.compiled", "False")
    if "cython." in text.replace("``cython.", ""):
        leftover = sorted(set(re.findall(r"(?<!`)cython\.\w+", text)))
        raise ValueError(f"graph.py uses Cython names this rewrite does not know: {leftover}")
    return text


def load_mypyc_engine(where: Path) -> ModuleType:
    """``reactive`` over the work tree's ``graph.py`` compiled by mypyc, as package
    ``engine_mypyc`` in ``where`` (on ``sys.path``)."""
    package = where / "engine_mypyc"
    package.mkdir()
    kernel = REPO_ROOT / "signalpy_lab" / "kernel"
    for name in ("reactive.py", "_cython_shim.py"):
        shutil.copy(kernel / name, package / name)
    shutil.copy(REPO_ROOT / "signalpy_lab" / "errors.py", package / "errors.py")
    (package / "reactive.py").write_text(
        (package / "reactive.py").read_text().replace("from ..errors", "from .errors"))
    (package / "graph.py").write_text(
        mypyc_source((kernel / "graph.py").read_text()).replace("from ..errors", "from .errors"))
    (package / "__init__.py").write_text("")
    built = subprocess.run([sys.executable, "-m", "mypyc", "engine_mypyc/graph.py"],
                           cwd=where, capture_output=True, text=True)
    if built.returncode:
        raise RuntimeError("mypyc refused graph.py: "
                           + (built.stdout + built.stderr).strip().splitlines()[-1])
    importlib.invalidate_caches()  # mypyc put the extensions beside graph.py
    reactive = importlib.import_module("engine_mypyc.reactive")
    graph = importlib.import_module("engine_mypyc.graph")
    if not str(graph.__file__).endswith(".so"):
        raise RuntimeError(f"mypyc built graph.py but {graph.__file__} was imported")
    return reactive


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.mypyc_engine", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases", nargs="*", help="kairo cases (default: "
                        f"{', '.join(DEFAULT_CASES)}); valid: {', '.join(KAIRO_CASES)}")
    parser.add_argument("--repeat", type=int, default=5, help="interleaved loops (default 5)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.cases) - set(KAIRO_CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}; valid: {', '.join(KAIRO_CASES)}")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        sys.path.insert(0, tmp)
        engines = {"cython": load_engine("wt", where, compiled=True, name="engine_cython"),
                   "mypyc": load_mypyc_engine(where),
                   "pure": load_engine("wt", where, name="engine_pure")}
        print(f"{'case (µs per iter())':22} {'cython':>10} {'mypyc':>10} {'pure':>10}"
              "   cython over mypyc   mypyc over pure")
        with recursion_limit(20_000):
            for case in args.cases or DEFAULT_CASES:
                runs = {name: build(r, case) for name, r in engines.items()}
                timed = interleaved_best_of_us(runs, repeat=args.repeat, min_seconds=0.1)
                cy, my, py = timed["cython"], timed["mypyc"], timed["pure"]
                if all(isinstance(t, (int, float)) for t in (cy, my, py)):
                    print(f"{case:22} {cy:10.1f} {my:10.1f} {py:10.1f}"
                          f"   {my / cy:16.2f}x  {py / my:14.2f}x")
                else:
                    print(f"{case:22} {cy!s:>10} {my!s:>10} {py!s:>10}")


if __name__ == "__main__":
    main()
