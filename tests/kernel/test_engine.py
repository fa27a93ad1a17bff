"""Which build of the reactive engine runs (issue 21), and that choosing one says why.

The rest of tests/kernel runs against whichever build is loaded; ``make test`` runs it twice,
once compiled (``SIGNALPY_LAB_ENGINE=compiled`` in CI: a failed build cannot pass as pure)
and once with ``SIGNALPY_LAB_ENGINE=pure``.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from signalpy_lab.kernel import ENGINE, _engine, graph
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
