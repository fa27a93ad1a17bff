"""``benchmarks.js_instructions``: what the counted process reports, and a count end to end;
``benchmarks._callgrind``: how callgrind's summary is read, and the cache model it is given.

The counted process prints ``RESULT: ok`` only when the run passed its checks; a wrong
answer or a missing library is its cell's text, never a count. The end-to-end count needs
valgrind (``apt-get install valgrind``) and is skipped without it.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from benchmarks import _callgrind, js_instructions
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
    counts = [js_instructions.count("triangle", "ours", scale, timeout=300)
              for scale in (SCALE, SCALE, 3 * SCALE)]
    assert all(isinstance(c, dict) for c in counts), counts
    one, again, three = (c["Ir"] for c in counts)  # type: ignore[index]
    assert abs(one - again) < one * 0.01  # the hash seed is fixed: the same work
    assert 2.5 * one < three < 3.5 * one  # three calls of iter() against one


def _summary(events: str, collected: str, code: int = 0):
    """What ``subprocess.run`` returns for a callgrind run with this summary."""
    stderr = f"==7== Events    : {events}\n==7== Collected : {collected}\n"
    return lambda *a, **k: subprocess.CompletedProcess(a, code, "RESULT: ok\n", stderr)


def test_callgrinds_summary_is_read_by_event_name(monkeypatch) -> None:
    events = "Ir D1mr D1mw DLmr DLmw Bc Bcm Bi Bim"
    monkeypatch.setattr(_callgrind.subprocess, "run", _summary(events, "90 7 2 0 0 40 3 5 1"))
    counted = _callgrind.count(["python", "-c", "pass"], cache=True, branches=True)
    assert counted.events["Bim"] == 1
    assert counted.stdout == "RESULT: ok\n"
    assert _callgrind.misses(counted.events) == {"L1d misses": 9, "L2 misses": 0,
                                                 "mispredicted branches": 4}
    monkeypatch.setattr(_callgrind.subprocess, "run", _summary("Ir D1mr D1mw DLmr DLmw", "90 7 2"))
    counted = _callgrind.count(["python", "-c", "pass"], cache=True)  # trailing zeros left off
    assert counted.events == {"Ir": 90, "D1mr": 7, "D1mw": 2, "DLmr": 0, "DLmw": 0}
    assert _callgrind.misses(counted.events) == {"L1d misses": 9, "L2 misses": 0}


def test_a_failed_counted_process_is_an_error_with_its_last_line(monkeypatch) -> None:
    failed = lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "a\nValueError: bad\n")  # noqa: E731
    monkeypatch.setattr(_callgrind.subprocess, "run", failed)
    with pytest.raises(_callgrind.CallgrindError, match="exit 1: ValueError: bad"):
        _callgrind.count(["python", "-c", "pass"])


def test_the_cache_model_is_this_cpus_l1_data_cache_and_l2(monkeypatch, tmp_path) -> None:
    caches = {"index0": ("1", "Data", "48K", "12"), "index1": ("1", "Instruction", "32K", "8"),
              "index2": ("2", "Unified", "2048K", "16"), "index3": ("3", "Unified", "32768K", "16")}
    for name, (level, kind, size, ways) in caches.items():
        folder = tmp_path / name
        folder.mkdir()
        for field, value in {"level": level, "type": kind, "size": size,
                             "ways_of_associativity": ways, "coherency_line_size": "64"}.items():
            (folder / field).write_text(value + "\n")
    monkeypatch.setattr(_callgrind, "_SYSFS", tmp_path)
    assert _callgrind.cache_options() == ["--cache-sim=yes", "--D1=49152,12,64",
                                          "--LL=2097152,16,64"]
    monkeypatch.setattr(_callgrind, "_SYSFS", tmp_path / "absent")
    assert _callgrind.cache_options() == ["--cache-sim=yes"]  # callgrind's own guess


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_a_count_with_the_cache_model_has_misses_and_the_same_instructions() -> None:
    plain = js_instructions.count("triangle", "ours", SCALE, timeout=300)
    cached = js_instructions.count("triangle", "ours", SCALE, timeout=300, cache=True)
    assert isinstance(plain, dict), plain
    assert isinstance(cached, dict), cached
    assert abs(plain["Ir"] - cached["Ir"]) < plain["Ir"] * 0.01
    assert "D1mr" not in plain
    assert _callgrind.misses(cached)["L1d misses"] > 0


def test_the_counted_process_must_load_the_engine_the_header_names(monkeypatch) -> None:
    seen = {}

    def fake_count(command, **options):
        seen.update(options["env"])
        return _callgrind.Counted({"Ir": 1}, "RESULT: ok\n")

    monkeypatch.setattr(_callgrind, "count", fake_count)
    assert js_instructions.count("triangle", "ours", SCALE, timeout=1) == {"Ir": 1}
    assert seen == {"SIGNALPY_LAB_ENGINE": js_instructions.ENGINE}  # stale build: an error
