"""``benchmarks.js_instructions``: what the counted process reports, and a count end to end.

The counted process prints ``RESULT: ok`` only when the run passed its checks; a wrong
answer or a missing library is its cell's text, never a count. The end-to-end count needs
valgrind (``apt-get install valgrind``) and is skipped without it.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks import js_instructions
from benchmarks.js_frameworks import FRAMEWORKS, Ours

SCALE = 0.002  # one call of iter()


def test_a_run_that_passes_its_checks_reports_ok(capsys) -> None:
    js_instructions._run_one("triangle", "ours", SCALE)
    assert capsys.readouterr().out.strip() == "RESULT: ok"


def test_a_wrong_answer_reports_the_failed_check(monkeypatch, capsys) -> None:
    make_ours = FRAMEWORKS["ours"]

    def off_by_one() -> Ours:
        framework = make_ours()
        plain = framework.computed
        framework.computed = lambda fn: plain(lambda: fn() + 1)  # type: ignore[method-assign]
        return framework

    monkeypatch.setitem(FRAMEWORKS, "ours", off_by_one)
    js_instructions._run_one("deepPropagation", "ours", SCALE)
    out = capsys.readouterr().out.strip()
    assert out.startswith("RESULT: error: CheckFailed: "), out


def test_a_library_that_is_not_installed_says_so(monkeypatch, capsys) -> None:
    def missing() -> Ours:
        raise ImportError("no module named 'absent'", name="absent")

    monkeypatch.setitem(FRAMEWORKS, "ours", missing)
    js_instructions._run_one("triangle", "ours", SCALE)
    assert capsys.readouterr().out.strip() == "RESULT: not installed (absent)"


def test_no_valgrind_is_a_one_line_error(monkeypatch, capsys) -> None:
    monkeypatch.setattr(js_instructions.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit):
        js_instructions.main(["--cases", "triangle"])
    assert "valgrind is not on PATH" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_a_count_is_repeatable_and_grows_with_the_run() -> None:
    one = js_instructions.count("triangle", "ours", SCALE, timeout=300)
    again = js_instructions.count("triangle", "ours", SCALE, timeout=300)
    three = js_instructions.count("triangle", "ours", 3 * SCALE, timeout=300)
    assert all(isinstance(n, int) for n in (one, again, three)), (one, again, three)
    assert abs(one - again) < one * 0.01  # the hash seed is fixed: the same work
    assert 2.5 * one < three < 3.5 * one  # three calls of iter() against one
