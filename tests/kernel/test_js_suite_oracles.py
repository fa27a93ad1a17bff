"""The engine passes js-reactivity-benchmark's own checks, case by case.

``benchmarks/js_suite.py`` times these cases; here each runs (small: a few of its
repetitions) with its checks: the original's asserts on values and effect runs, cellx's end
layer, and each seeded dynamic graph's published sum and count. Run on the compiled build
and again on the pure one (``make test``), at the default recursion limit.
"""

from __future__ import annotations

import sys
import time

import pytest

from benchmarks import js_suite
from benchmarks.js_frameworks import load_framework

SCALE = 0.005  # repetitions only: every graph keeps its published size
CASES = js_suite.all_cases(SCALE)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_check_of_the_case_passes(case: js_suite.Case) -> None:
    ours = load_framework("ours")
    big = "1000x" in case.name  # 12,000 and 25,000 nodes: one run is enough to check
    cells = js_suite.measure(case, {"ours": ours}, repeat=1 if big else 2, budget=120.0)
    assert isinstance(cells["ours"], float), cells["ours"]  # a failed check is its text


def test_a_wrong_answer_is_caught_by_the_checks(monkeypatch) -> None:
    """The control: a computed that adds one to every value fails the first kairo case."""
    ours = load_framework("ours")
    plain = ours.computed
    monkeypatch.setattr(ours, "computed",
                        lambda fn: plain(lambda: (lambda v: v + 1 if isinstance(v, int)
                                                  else v)(fn())))
    case = next(c for c in CASES if c.name == "deepPropagation")
    cells = js_suite.measure(case, {"ours": ours}, repeat=1, budget=120.0)
    assert isinstance(cells["ours"], str), cells["ours"]


class _Sleeper:
    """A stand-in framework whose one timed run sleeps ``seconds`` (and counts its runs)."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.runs = seconds, 0

    def cleanup(self) -> None:
        pass


def _sleeping_case(rebuild: bool = False) -> js_suite.Case:
    def prepare(fw: _Sleeper):
        def run() -> None:
            fw.runs += 1
            time.sleep(fw.seconds)

        return run

    return js_suite.Case("sleep", prepare, rebuild=rebuild)


def test_a_short_case_is_run_until_it_fills_min_seconds_and_a_long_one_is_not() -> None:
    fast, slow = _Sleeper(0.005), _Sleeper(0.06)
    cells = js_suite.measure(_sleeping_case(), {"fast": fast, "slow": slow}, repeat=2,
                             budget=60.0, min_seconds=0.1)
    assert 2 == slow.runs  # 2 x 60 ms already fill 0.1 s
    assert 2 < fast.runs <= 20  # 5 ms runs go on until 0.1 s, at most 20 of them
    assert cells["fast"] < cells["slow"]


def test_without_min_seconds_or_for_a_rebuilt_case_repeat_is_the_count() -> None:
    for case, min_seconds in ((_sleeping_case(), 0.0), (_sleeping_case(rebuild=True), 0.1)):
        fast = _Sleeper(0.005)
        js_suite.measure(case, {"fast": fast}, repeat=2, budget=60.0, min_seconds=min_seconds)
        assert 2 == fast.runs


def test_the_tables_notes_name_only_what_the_run_did(capsys) -> None:
    # Only cellx (rebuilt per run, so never filled to --min-seconds) and no pure peer: the
    # header promises no filling and the notes name no empty list of peers.
    limit = sys.getrecursionlimit()
    js_suite.main(["--cases", "cellx1000", "--frameworks", "ours", "--scale", "0.1",
                   "--repeat", "2", "--no-probe"])
    assert sys.getrecursionlimit() == limit  # raised for the run only
    out = capsys.readouterr().out
    assert "ms per run (best of 2, interleaved" in out
    assert "more to fill" not in out
    assert "ours is faster." in out
    assert "fastest of" not in out
