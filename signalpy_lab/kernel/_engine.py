"""Which build of the reactive engine runs: compiled from ``graph.py``, or ``graph.py`` itself.

``pip install`` compiles ``graph.py`` with Cython into ``_graph_c`` where a C compiler
exists (``hatch_build.py``). Imported first by ``signalpy_lab.kernel``, this module puts the
chosen build at ``signalpy_lab.kernel.graph``, so every ``from .graph import ...`` (and every
user's) gets the same one. ``SIGNALPY_LAB_ENGINE`` chooses:

* ``auto`` (the default): compiled if installed and built from this ``graph.py``, else pure;
* ``compiled``: compiled, or an ImportError saying why not (CI uses it, so a broken build
  cannot pass as a pure one);
* ``pure``: ``graph.py`` as Python (through ``_fold``, which decides at import what Cython
  decides at compile time).

``ENGINE`` (re-exported as ``signalpy_lab.kernel.ENGINE``) says which one runs.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import os
import sys
from pathlib import Path

__all__ = ["CHOICES", "ENGINE", "REASON", "VARIABLE", "compiled_problem", "describe",
           "digest_name", "select"]

VARIABLE = "SIGNALPY_LAB_ENGINE"
CHOICES = ("auto", "compiled", "pure")
_HERE = Path(__file__).resolve().parent


def digest_name(suffix: str = importlib.machinery.EXTENSION_SUFFIXES[0]) -> str:
    """The file beside the extension holding the SHA-256 of the ``graph.py`` it was built
    from: one per interpreter ABI (``suffix``), so one source tree installed editable into a
    3.11 and a 3.12 venv keeps both builds, each checked against the source on its own."""
    return f"_graph_c{suffix}.sha256"


def compiled_problem(directory: Path = _HERE) -> str | None:
    """Why the compiled engine in ``directory`` cannot be used, or None if it can."""
    try:
        built_from = (directory / digest_name()).read_text().strip()
    except OSError:
        return "it is not installed (no C compiler at install time, or SIGNALPY_LAB_PURE=1)"
    source = directory / "graph.py"
    if hashlib.sha256(source.read_bytes()).hexdigest() != built_from:
        return (f"it was built from another version of {source} (after an edit or a "
                "checkout: run `pip install -e .` again to rebuild it)")
    return None


def select(choice: str | None = None) -> tuple[str, str]:
    """Load the engine named by ``choice`` (default: ``$SIGNALPY_LAB_ENGINE`` or auto).

    Returns the engine (``"compiled"`` or ``"pure"``) and why that one. Called once, at
    import: the other modules bind the engine's names when they are imported.
    """
    wanted = (choice if choice is not None else os.environ.get(VARIABLE, "auto")).strip()
    wanted = wanted.lower() or "auto"
    if wanted not in CHOICES:
        raise ValueError(f"{VARIABLE}={wanted!r} is not an engine; valid: "
                         f"{', '.join(CHOICES)} (auto: compiled when installed, else pure).")
    if wanted == "pure":
        _load_pure()
        return "pure", f"{VARIABLE}=pure"
    problem = compiled_problem()
    if problem is None:
        try:
            compiled = importlib.import_module(f"{__package__}._graph_c")
        except ImportError as exc:
            problem = f"it does not import ({exc})"
        else:
            sys.modules[f"{__package__}.graph"] = compiled
            setattr(sys.modules[__package__], "graph", compiled)  # noqa: B010
            return "compiled", "graph.py compiled with Cython at install time"
    if wanted == "compiled":
        raise ImportError(f"{VARIABLE}=compiled, but the compiled engine cannot be used: "
                          f"{problem}. Unset {VARIABLE} (or set it to auto) to run the pure "
                          "engine instead.")
    _load_pure()
    return "pure", f"the compiled engine is not used: {problem}"


def _load_pure() -> None:
    """``graph.py`` as Python, with Cython's compile-time names folded (``_fold.py``); once:
    a later ``select`` (a test's) must not replace the module every other one has bound."""
    name = f"{__package__}.graph"
    if name not in sys.modules:
        from . import _fold

        setattr(sys.modules[__package__], "graph",  # noqa: B010
                _fold.load(name, _HERE / "graph.py"))


def describe() -> str:
    """One line for people (``%lab``, benchmark headers): which engine runs, and why."""
    return f"engine: {ENGINE} ({REASON})"


#: ``"compiled"`` or ``"pure"``: the build of ``graph.py`` this process runs; ``REASON``: why.
ENGINE, REASON = select()
