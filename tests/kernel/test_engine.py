"""Which build of the reactive engine runs (issue 21), and that choosing one says why.

The rest of tests/kernel runs against whichever build is loaded; ``make test`` runs it twice,
once compiled (``SIGNALPY_LAB_ENGINE=compiled`` in CI: a failed build cannot pass as pure)
and once with ``SIGNALPY_LAB_ENGINE=pure``.
"""
from __future__ import annotations

import dis
import hashlib
import importlib.util
import os
import py_compile
import sys
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from signalpy_lab.kernel import ENGINE, _engine, _fold, graph
from signalpy_lab.kernel.graph import DerivedNode, SourceNode


def test_engine_names_the_loaded_build() -> None:
    assert ENGINE in ("compiled", "pure")
    assert graph.COMPILED is (ENGINE == "compiled")
    assert graph.__name__.endswith("._graph_c" if ENGINE == "compiled" else ".graph")
    wanted = os.environ.get(_engine.VARIABLE, "auto").strip().lower() or "auto"
    if wanted != "auto":
        assert ENGINE == wanted
    assert _engine.describe().startswith(f"engine: {ENGINE} (")


def test_nodes_have_fixed_fields_in_both_builds() -> None:
    """Slots as Python (the shim's cclass), C fields compiled: no per-node __dict__."""
    source = SourceNode(1)
    derived = DerivedNode(lambda: source._read() + 1)
    assert derived._read() == 2
    for node in (source, derived):
        with pytest.raises(AttributeError):
            node.not_a_field = 1  # type: ignore[attr-defined]


def test_an_unknown_choice_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="is not an engine; valid: auto, compiled, pure"):
        _engine.select("fast")


def test_asking_for_compiled_where_it_cannot_load_says_why(monkeypatch) -> None:
    monkeypatch.setattr(_engine, "compiled_problem", lambda: "it is not installed (test)")
    with pytest.raises(ImportError, match=r"cannot be used: it is not installed \(test\)\. "
                                          r"Unset SIGNALPY_LAB_ENGINE"):
        _engine.select("compiled")
    assert _engine.select("pure") == ("pure", "SIGNALPY_LAB_ENGINE=pure")


def test_a_compiled_engine_from_another_graph_py_is_refused(tmp_path: Path) -> None:
    """An editable install keeps the extension beside graph.py; after an edit it is stale."""
    assert "not installed" in str(_engine.compiled_problem(tmp_path))
    source = tmp_path / "graph.py"
    source.write_text("x = 1\n")
    (tmp_path / _engine.digest_name()).write_text(hashlib.sha256(b"x = 2\n").hexdigest() + "\n")
    assert "built from another version" in str(_engine.compiled_problem(tmp_path))
    (tmp_path / _engine.digest_name()).write_text(hashlib.sha256(b"x = 1\n").hexdigest() + "\n")
    assert _engine.compiled_problem(tmp_path) is None


# -- the pure engine: graph.py with Cython's compile-time names folded (_fold.py) ----------

PROBE = '''\
from signalpy_lab.kernel import _cython_shim as cython

_TWO = cython.declare(cython.int, 2)
_MOVES = cython.declare(cython.int, 1)


def where():
    if cython.compiled:
        return "compiled"
    return _TWO


def fail():
    raise ValueError("on line 14")


def move():
    global _MOVES
    _MOVES += 1
    return _MOVES
'''


def _global_loads(code: CodeType) -> set[str]:
    """Every global (and ``x.compiled``) that ``code`` or a code nested in it loads."""
    found: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname == "LOAD_GLOBAL" or (
                instruction.opname in ("LOAD_ATTR", "LOAD_METHOD")
                and instruction.argval == "compiled"):
            found.add(str(instruction.argval))
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            found |= _global_loads(constant)
    return found


def test_the_pure_engine_never_asks_whether_it_is_compiled() -> None:
    """As Python, graph.py runs folded: no ``cython.compiled`` test and no state looked up
    as a global on any path, as in the compiled build (where Cython decides them)."""
    path = Path(_engine.__file__).with_name("graph.py")
    loads = _global_loads(_fold.fold(path.read_bytes(), str(path)))
    assert {"compiled", "_CLEAN", "_MAYBE", "_DIRTY", "_RUNNING"} & loads == set()
    assert "_get_ident" in loads  # (the scan sees globals: this one is looked up)
    if ENGINE == "pure":
        assert isinstance(graph.__loader__, _fold.FoldingLoader)
        assert "_DIRTY" not in _global_loads(DerivedNode._read.__code__)


def test_a_folded_module_keeps_its_lines_and_its_reassigned_globals(tmp_path: Path) -> None:
    path = tmp_path / "spl_fold_probe.py"
    path.write_text(PROBE)
    probe = _fold.load("spl_fold_probe", path)
    try:
        assert probe.where() == 2
        assert {"cython", "_TWO"} & _global_loads(probe.where.__code__) == set()
        with pytest.raises(ValueError, match="on line 14") as raised:
            probe.fail()
        assert (raised.traceback[-1].lineno + 1, str(raised.traceback[-1].path)) == (14, str(path))
        assert (probe.move(), probe.move()) == (2, 3)  # rebound by ``global``: not folded
    finally:
        sys.modules.pop("spl_fold_probe", None)


def test_the_folded_code_is_cached_apart_and_follows_edits(tmp_path: Path,
                                                           monkeypatch) -> None:
    """pip byte-compiles graph.py the plain way; the folded code has its own cache file,
    rebuilt when the source changes and when the cached file is damaged."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "spl_fold_probe.py"
    path.write_text(PROBE)
    py_compile.compile(str(path))  # the plain bytecode, where CPython caches it
    folded_cache = Path(importlib.util.cache_from_source(str(path), optimization="fold"))

    def where() -> tuple[Any, set[str]]:
        try:
            probe = _fold.load("spl_fold_probe", path)
            return probe.where(), _global_loads(probe.where.__code__)
        finally:
            sys.modules.pop("spl_fold_probe", None)

    assert where() == (2, set())
    assert folded_cache.is_file()
    assert folded_cache.read_bytes() != Path(
        importlib.util.cache_from_source(str(path))).read_bytes()
    assert where() == (2, set())  # from the cache
    path.write_text(PROBE.replace("_TWO = cython.declare(cython.int, 2)",
                                  "_TWO = cython.declare(cython.int, 22)"))
    assert where() == (22, set())
    folded_cache.write_bytes(folded_cache.read_bytes()[:40])
    assert where() == (22, set())
