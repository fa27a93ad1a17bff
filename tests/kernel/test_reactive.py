"""The reactive engine's promises, one example each: ``graph.py`` (algorithm) and ``reactive.py``.

Shapes are named and sketched where they appear: chain, diamond, dependency switch, equality
cutoff, cycle, error in a computed. Each computed counts its body runs so that "did not re-run"
is asserted, not assumed.
"""


from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from signalpy_lab.errors import CycleError, DisposedError, EffectLoopError
from signalpy_lab.kernel import graph
from signalpy_lab.kernel.graph import (
    MAX_EFFECT_ROUNDS,
    DerivedNode,
    GraphHooks,
    ReactiveNode,
    SourceNode,
    graph_stats,
)
from signalpy_lab.kernel.reactive import (
    Computed,
    Effect,
    Scope,
    Signal,
    batch,
    current_scope,
    untracked,
)


class Counted:
    """Wraps a body and counts how many times it ran."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn
        self.runs = 0

    def __call__(self) -> Any:
        self.runs += 1
        return self.fn()


# --- laziness and caching ----------------------------------------------------------------


def test_computed_does_not_run_until_it_is_read() -> None:
    """A computed is lazy: creating it, or changing its inputs, runs nothing."""
    count = Signal(1)
    body = Counted(lambda: count.get() * 2)
    double = Computed(body)
    count.set(2)

    assert 0 == body.runs
    assert 4 == double.get()
    assert 1 == body.runs


def test_computed_caches_its_value_between_reads() -> None:
    """Reading a computed again without any change does not re-run its body."""
    count = Signal(3)
    body = Counted(lambda: count.get() * 2)
    double = Computed(body)

    assert [6, 6, 6] == [double.get(), double.get(), double()]
    assert 1 == body.runs


def test_computed_reruns_only_when_something_it_read_changed() -> None:
    """A change to a signal the body did not read leaves the cached value alone."""
    read, unread = Signal(1), Signal(100)
    body = Counted(lambda: read.get() + 1)
    plus_one = Computed(body)
    plus_one.get()

    unread.set(200)
    assert 2 == plus_one.get()
    assert 1 == body.runs

    read.set(5)
    assert 6 == plus_one.get()
    assert 2 == body.runs


def test_setting_an_equal_value_changes_nothing() -> None:
    """``set`` of an equal value returns False and marks nothing stale."""
    count = Signal(1)
    body = Counted(lambda: count.get())
    mirror = Computed(body)
    mirror.get()

    assert (False, True) == (count.set(1), count.set(2))
    assert 2 == mirror.get()
    assert 2 == body.runs


def test_the_stale_flag_tells_whether_the_next_read_may_run_the_body() -> None:
    """``Computed.stale`` is True before the first read and after an input changes."""
    count = Signal(1)
    double = Computed(lambda: count.get() * 2)
    before = double.stale
    double.get()
    after_read = double.stale
    count.set(2)

    assert (True, False, True) == (before, after_read, double.stale)


# --- dependency switch -------------------------------------------------------------------


def test_dependencies_are_retracked_on_every_run() -> None:
    """Dependency switch: after ``flag`` flips, ``a`` is no longer a dependency.

        flag ──► c ◄── a        flag True:  c = a
                 ▲
                 └──── b        flag False: c = b
    """
    flag, a, b = Signal(True), Signal("a1"), Signal("b1")
    body = Counted(lambda: a.get() if flag.get() else b.get())
    c = Computed(body)
    assert "a1" == c.get()

    flag.set(False)
    assert "b1" == c.get()
    runs_after_switch = body.runs

    a.set("a2")
    assert "b1" == c.get()
    assert runs_after_switch == body.runs
    assert {} == a.subs

    b.set("b2")
    assert "b2" == c.get()
    assert runs_after_switch + 1 == body.runs


# --- equality cutoff ---------------------------------------------------------------------


def test_a_recompute_with_an_equal_result_does_not_propagate() -> None:
    """Equality cutoff: ``parity`` re-runs but is unchanged, so nothing below it runs.

        count ──► parity ──► label ──► effect
    """
    count = Signal(1)
    parity_body = Counted(lambda: count.get() % 2)
    parity = Computed(parity_body)
    label_body = Counted(lambda: "odd" if parity.get() else "even")
    label = Computed(label_body)
    seen: list[str] = []
    Effect(lambda: seen.append(label.get()))

    count.set(3)

    assert (2, 1) == (parity_body.runs, label_body.runs)
    assert ["odd"] == seen

    count.set(4)
    count.set(6)  # cut off again, now that label has re-run once
    assert (4, 2) == (parity_body.runs, label_body.runs)
    assert ["odd", "even"] == seen


def test_a_custom_equals_decides_what_counts_as_a_change() -> None:
    """With ``equals`` comparing case-insensitively, a case change does not propagate."""
    name = Signal("Ada")
    lowered = Computed(lambda: name.get(), equals=lambda x, y: x.lower() == y.lower())
    body = Counted(lambda: f"hello {lowered.get()}")
    greeting = Computed(body)
    greeting.get()

    name.set("ADA")

    assert "hello Ada" == greeting.get()
    assert 1 == body.runs


# --- diamond -----------------------------------------------------------------------------


def test_a_diamond_runs_its_bottom_once_per_update_and_never_sees_a_glitch() -> None:
    """Diamond: ``d`` runs once per update and always sees ``b`` and ``c`` from the same ``s``.

          s
         / \\
        b   c
         \\ /
          d
    """
    s = Signal(1)
    b = Computed(lambda: s.get() + 1)
    c = Computed(lambda: s.get() * 10)
    pairs: list[tuple[int, int]] = []

    def d_body() -> int:
        pairs.append((b.get(), c.get()))
        return b.get() + c.get()

    d = Computed(d_body)
    effect_runs: list[int] = []
    Effect(lambda: effect_runs.append(d.get()))

    for value in (2, 3, 4):
        s.set(value)

    assert [(2, 10), (3, 20), (4, 30), (5, 40)] == pairs
    assert [12, 23, 34, 45] == effect_runs


# --- effects -----------------------------------------------------------------------------


def test_an_effect_runs_immediately_and_again_after_what_it_read_changes() -> None:
    """An effect runs on creation, then once per change of a signal it read."""
    count, unread = Signal(1), Signal(0)
    seen: list[int] = []
    Effect(lambda: seen.append(count.get()))

    count.set(2)
    unread.set(1)
    count.set(3)

    assert [1, 2, 3] == seen


def test_an_effect_runs_once_per_batch_with_the_final_values() -> None:
    """Two signals set twice each inside ``batch()`` re-run the effect once, after the batch."""
    first, last = Signal("Ada"), Signal("Lovelace")
    seen: list[str] = []
    Effect(lambda: seen.append(f"{first.get()} {last.get()}"))

    with batch():
        first.set("Grace")
        last.set("Hopper")
        first.set("Alan")
        last.set("Turing")
        inside = list(seen)

    assert ["Ada Lovelace"] == inside
    assert ["Ada Lovelace", "Alan Turing"] == seen


def test_nested_batches_flush_once_after_the_outermost() -> None:
    """Ending an inner batch runs nothing; the effect runs once when the outer one ends."""
    count = Signal(0)
    seen: list[int] = []
    Effect(lambda: seen.append(count.get()))

    with batch():
        with batch():
            count.set(1)
        after_inner = list(seen)
        count.set(2)

    assert ([0], [0, 2]) == (after_inner, seen)


def test_a_computed_read_inside_a_batch_is_already_up_to_date() -> None:
    """Batching delays effects only: a computed read mid-batch reflects the writes so far."""
    count = Signal(1)
    double = Computed(lambda: count.get() * 2)

    with batch():
        count.set(5)
        inside = double.get()

    assert 10 == inside


def test_an_effect_created_inside_a_batch_runs_when_the_batch_ends() -> None:
    """A new effect in a batch waits for the batch, so it sees the batch's final values."""
    count = Signal(0)
    seen: list[int] = []

    with batch():
        Effect(lambda: seen.append(count.get()))
        count.set(7)
        inside = list(seen)

    assert ([], [7]) == (inside, seen)


def test_a_deferred_effect_runs_on_start() -> None:
    """``Effect(defer=True)`` runs nothing until ``start()``; a second ``start()`` is a no-op."""
    count = Signal(1)
    seen: list[int] = []
    effect = Effect(lambda: seen.append(count.get()), defer=True)
    before = list(seen)
    effect.start()
    effect.start()

    assert ([], [1]) == (before, seen)


def test_an_effect_cleanup_runs_before_the_next_run_and_on_dispose() -> None:
    """A callable returned by the body is its cleanup: called before each re-run and on dispose."""
    count = Signal(1)
    log: list[str] = []

    def body() -> Callable[[], None]:
        value = count.get()
        log.append(f"run {value}")
        return lambda: log.append(f"cleanup {value}")

    effect = Effect(body)
    count.set(2)
    effect.dispose()
    count.set(3)

    assert ["run 1", "cleanup 1", "run 2", "cleanup 2"] == log


# --- errors in computeds -----------------------------------------------------------------


def test_an_error_in_a_computed_is_cached_until_a_dependency_changes() -> None:
    """Error in a computed: re-raised on each read without re-running, cleared by a change.

        divisor ──► ratio (raises ZeroDivisionError while divisor == 0)
    """
    divisor = Signal(0)
    body = Counted(lambda: 10 // divisor.get())
    ratio = Computed(body)

    for _ in range(3):
        with pytest.raises(ZeroDivisionError):
            ratio.get()
    assert 1 == body.runs

    divisor.set(5)
    assert 2 == ratio.get()
    assert 2 == body.runs


def test_an_error_propagates_to_dependents_and_they_recover_with_it() -> None:
    """A computed reading a failing computed fails with the same error, then recovers."""
    divisor = Signal(0)
    ratio = Computed(lambda: 10 // divisor.get())
    shown = Computed(lambda: f"ratio={ratio.get()}")

    with pytest.raises(ZeroDivisionError):
        shown.get()
    divisor.set(2)

    assert "ratio=5" == shown.get()


def test_a_computed_that_recovers_to_its_last_good_value_still_propagates() -> None:
    """value -> error -> the same value again: dependents must see the value, not the error."""
    divisor = Signal(5)
    ratio = Computed(lambda: 10 // divisor.get())
    shown = Computed(lambda: f"ratio={ratio.get()}")
    shown.get()

    divisor.set(0)
    with pytest.raises(ZeroDivisionError):
        shown.get()
    divisor.set(5)

    assert "ratio=2" == shown.get()


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt: not an ``Exception``, so it is not cached."""


def test_a_body_interrupted_by_a_base_exception_runs_again_on_the_next_read() -> None:
    """An interrupted body left no result, so the computed stays stale instead of keeping the
    value from before the change."""
    count = Signal(1)
    interrupt: list[bool] = []

    def body() -> int:
        value = count.get() * 10
        if interrupt:
            raise Interrupt
        return value

    tenfold = Computed(body)
    tenfold.get()
    count.set(2)
    interrupt.append(True)
    with pytest.raises(Interrupt):
        tenfold.get()
    interrupt.clear()

    assert 20 == tenfold.get()


# --- cycles ------------------------------------------------------------------------------


def test_a_cycle_raises_cycle_error_naming_the_chain() -> None:
    """Cycle: ``a`` reads ``b`` reads ``a``; the error names the chain.

        a ──► b
        ▲     │
        └─────┘
    """
    a = Computed(lambda: b.get() + 1, label="a")
    b = Computed(lambda: a.get() + 1, label="b")

    with pytest.raises(CycleError, match="a -> b -> a"):
        a.get()


def test_a_computed_reading_itself_is_a_cycle() -> None:
    """The shortest cycle: a computed that reads itself."""
    me = Computed(lambda: me.get(), label="me")

    with pytest.raises(CycleError, match="me -> me"):
        me.get()


def test_a_cycle_error_is_a_runtime_error() -> None:
    """CycleError also inherits RuntimeError, so generic handlers catch it."""
    me = Computed(lambda: me.get(), label="me")

    with pytest.raises(RuntimeError):
        me.get()


def test_a_cycle_broken_by_a_dependency_change_recovers() -> None:
    """A cycle through a branch goes away when the branch is not taken any more."""
    closed = Signal(True)
    a = Computed(lambda: b.get() if closed.get() else 0, label="a")
    b = Computed(lambda: a.get() + 1, label="b")
    with pytest.raises(CycleError):
        b.get()

    closed.set(False)

    assert (0, 1) == (a.get(), b.get())


def test_a_300_node_cycle_raises_cycle_error_not_recursion_error() -> None:
    """A ring longer than the nesting limit is still reported as a cycle."""
    ring: list[Computed[int]] = []
    for i in range(300):
        ring.append(Computed(lambda i=i: ring[(i + 1) % 300].get() + 1, label=f"n{i}"))

    with pytest.raises(CycleError, match=r"^Cycle detected: n0 -> "):
        ring[0].get()


# --- effects that fail --------------------------------------------------------------------


def test_a_failing_effect_goes_to_its_scope_and_the_flush_goes_on() -> None:
    """An effect error is passed to ``Scope(on_effect_error=...)``; the next effect still runs."""
    count = Signal(1)
    reported: list[tuple[str, str]] = []
    scope = Scope("tenant-db", on_effect_error=lambda node, exc: reported.append(
        (node.describe(), str(exc))))
    seen: list[int] = []

    def fails() -> None:
        if count.get() == 2:
            raise ValueError("two is not allowed")

    with scope.active():
        Effect(fails, label="validator")
        Effect(lambda: seen.append(count.get()), label="printer")
    count.set(2)

    assert [("validator", "two is not allowed")] == reported
    assert [1, 2] == seen


def test_a_failing_effect_without_a_scope_handler_is_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    """With no scope handler, the error goes to the ``signalpy_lab.reactive`` logger."""
    count = Signal(1)
    seen: list[int] = []

    def fails() -> None:
        if count.get() == 2:
            raise ValueError("two is not allowed")

    Effect(fails, label="validator")
    Effect(lambda: seen.append(count.get()), label="printer")
    with caplog.at_level(logging.ERROR, logger="signalpy_lab.reactive"):
        count.set(2)

    assert [("signalpy_lab.reactive", "effect 'validator' failed: ValueError: two is not allowed")
            ] == [(r.name, r.getMessage()) for r in caplog.records]
    assert [1, 2] == seen


def test_an_effect_that_keeps_retriggering_itself_raises_effect_loop_error() -> None:
    """An effect that sets a signal it reads gives up after ``MAX_EFFECT_ROUNDS`` rounds."""
    count = Signal(0)
    runs = Counted(lambda: count.set(count.get() + 1))
    Effect(runs, label="incrementer")

    with pytest.raises(EffectLoopError, match="still pending: incrementer"):
        count.set(100)
    assert 1 + MAX_EFFECT_ROUNDS == runs.runs

    # The engine is left usable: another signal's effect still flushes.
    other = Signal(0)
    seen: list[int] = []
    Effect(lambda: seen.append(other.get()))
    other.set(1)
    assert [0, 1] == seen


# --- ownership and disposal ----------------------------------------------------------------


def test_disposing_a_scope_disposes_its_computeds_and_effects() -> None:
    """After ``Scope.dispose`` no node or link is left, and the signal has no subscribers."""
    baseline = graph_stats()
    count = Signal(1)
    scope = Scope("tenant-db-acme", tenant="acme")
    seen: list[int] = []
    with scope.active():
        double = Computed(lambda: count.get() * 2)
        Effect(lambda: seen.append(double.get()))
    during = graph_stats()

    scope.dispose()
    count.set(2)

    assert {"derived_nodes": baseline["derived_nodes"] + 2,
            "links": baseline["links"] + 2} == during
    assert baseline == graph_stats()
    assert {} == count.subs
    assert [2] == seen
    with pytest.raises(DisposedError, match="was disposed"):
        double.get()


def test_a_disposed_computed_that_was_never_read_raises_disposed_error() -> None:
    """Disposal is final even for a computed whose body never ran."""
    scope = Scope("tenant-db")
    lazy = Computed(lambda: 1, owner=scope)
    scope.dispose()

    with pytest.raises(DisposedError):
        lazy.get()


def test_a_scope_owns_what_is_created_while_it_is_active() -> None:
    """Nodes created inside ``scope.active()`` get it as owner and its tenant; none outside."""
    scope = Scope("tenant-db-acme", tenant="acme")
    with scope.active():
        inside_scope = current_scope()
        c = Computed(lambda: 1)
    outside = Computed(lambda: 2)

    assert (scope, scope, "acme") == (inside_scope, c.owner, c.tenant)
    assert (None, None) == (current_scope(), outside.owner)
    assert [c] == scope.nodes


def test_disposing_a_scope_runs_effect_cleanups() -> None:
    """The cleanup returned by an effect in a scope runs when the scope is disposed."""
    log: list[str] = []
    scope = Scope("tenant-db")
    Effect(lambda: lambda: log.append("closed"), owner=scope)
    scope.dispose()

    assert ["closed"] == log


# --- untracked reads and peek ----------------------------------------------------------------


def test_untracked_as_a_context_manager_reads_without_subscribing() -> None:
    """Reads inside ``with untracked():`` do not become dependencies."""
    tracked, ignored = Signal(1), Signal(10)

    def body() -> int:
        with untracked():
            extra = ignored.get()
        return tracked.get() + extra

    total_body = Counted(body)
    total = Computed(total_body)
    total.get()
    ignored.set(20)

    assert 11 == total.get()
    assert (1, {}) == (total_body.runs, ignored.subs)


def test_untracked_with_a_function_reads_without_subscribing() -> None:
    """``untracked(fn)`` returns ``fn()`` and its reads do not become dependencies."""
    tracked, ignored = Signal(1), Signal(10)
    total_body = Counted(lambda: tracked.get() + untracked(ignored.get))
    total = Computed(total_body)
    total.get()
    ignored.set(20)
    after_ignored = total.get()
    tracked.set(2)

    assert (11, 22) == (after_ignored, total.get())
    assert 2 == total_body.runs


def test_untracked_restores_tracking_afterwards() -> None:
    """A read after the ``untracked`` block is tracked again."""
    before, after = Signal(1), Signal(2)

    def body() -> int:
        with untracked():
            pass
        return before.peek() + after.get()

    total = Computed(body)
    total.get()
    after.set(3)

    assert 4 == total.get()


def test_computed_peek_does_not_subscribe_the_caller() -> None:
    """``Computed.peek()`` returns the fresh value but the caller does not depend on it."""
    count = Signal(1)
    double = Computed(lambda: count.get() * 2)
    viewer_body = Counted(lambda: double.peek())
    viewer = Computed(viewer_body)
    viewer.get()
    count.set(2)

    assert (2, 1) == (viewer.get(), viewer_body.runs)
    assert 4 == double.peek()
    assert {} == double.subs


def test_signal_peek_does_not_subscribe_the_caller() -> None:
    """``Signal.peek()`` inside a body is an untracked read."""
    count = Signal(1)
    body = Counted(lambda: count.peek())
    viewer = Computed(body)
    viewer.get()
    count.set(2)

    assert (1, 1, {}) == (viewer.get(), body.runs, count.subs)


def test_signal_update_applies_a_function_to_the_current_value() -> None:
    """``update(fn)`` sets ``fn(current)`` and, like ``set``, says whether it changed."""
    items = Signal((1, 2))
    changed = items.update(lambda xs: (*xs, 3))
    unchanged = items.update(lambda xs: xs)

    assert ((1, 2, 3), True, False) == (items.peek(), changed, unchanged)


# --- depth ---------------------------------------------------------------------------------


@pytest.fixture
def default_recursion_limit() -> int:
    """The interpreter's default recursion limit, asserted untouched by anyone before us."""
    limit = sys.getrecursionlimit()
    assert 1000 == limit
    return limit


def test_a_10000_deep_chain_works_at_the_default_recursion_limit(
        default_recursion_limit: int) -> None:
    """Chain: 10,000 computeds, each one more than the last, read first and after an update.

        s ──► c0 ──► c1 ──► ... ──► c9999
    """
    s = Signal(0)
    chain: list[Computed[int]] = [Computed(s.get)]
    for _ in range(9_999):
        chain.append(Computed(lambda previous=chain[-1]: previous.get() + 1))

    first = chain[-1].get()
    s.set(5)
    updated = chain[-1].get()

    assert (9_999, 10_004) == (first, updated)
    assert default_recursion_limit == sys.getrecursionlimit()


def test_a_10000_deep_chain_that_all_goes_dirty_at_once_works(
        default_recursion_limit: int) -> None:
    """Every link also reads ``s``, so one write makes all 10,000 DIRTY (not MAYBE) at once.

        s ──► c0 ──► c1 ──► ... ──► c9999
        └──────┴──────┴──── ... ──────┘   (each ci reads s too)
    """
    s = Signal(1)
    chain: list[Computed[int]] = [Computed(s.get)]
    for _ in range(9_999):
        chain.append(Computed(lambda previous=chain[-1]: previous.get() + s.get()))
    seen: list[int] = []
    Effect(lambda: seen.append(chain[-1].get()))

    s.set(2)
    s.set(3)

    assert [10_000, 20_000, 30_000] == seen
    assert default_recursion_limit == sys.getrecursionlimit()


def test_a_wide_fan_in_evaluates_every_input_once() -> None:
    """A computed reading 10,000 fresh computeds runs each of them exactly once."""
    s = Signal(1)
    bodies = [Counted(lambda i=i: s.get() + i) for i in range(10_000)]
    inputs = [Computed(body) for body in bodies]
    total = Computed(lambda: sum(c.get() for c in inputs))

    assert sum(range(10_000)) + 10_000 == total.get()
    assert {1} == {body.runs for body in bodies}


# --- threads -------------------------------------------------------------------------------


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Let threads interleave every few bytecodes, so races show up in a short test."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def test_a_reader_thread_never_sees_an_inconsistent_or_stale_value(
        frequent_thread_switches: None) -> None:
    """A thread sets ``s`` 1,000 times (its effect refreshing ``pair`` there too) while the
    main thread reads: every pair is consistent, and never older than ``s`` already was.

        s ──► double ──► pair ──► effect (runs in the writer thread)
        └────────────────┘
    """
    s = Signal(0)
    double = Computed(lambda: s.get() * 2)
    pair = Computed(lambda: (s.get(), double.get()))
    Effect(pair.get)
    done = threading.Event()
    problems: list[str] = []

    def writer() -> None:
        try:
            for i in range(1, 1001):
                s.set(i)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    while not done.is_set():
        floor = s.peek()
        try:
            value = pair.get()
        except Exception as exc:  # e.g. a spurious CycleError: recorded, reported below
            problems.append(repr(exc))
            continue
        if value[1] != 2 * value[0] or value[0] < floor:
            problems.append(f"read {value!r} after s was {floor}")
    thread.join()

    assert [] == problems[:5]
    assert (1000, 2000) == pair.get()


class ReaderThread:
    """Runs ``read`` in a new thread and gives it a moment to finish, without requiring it.

    Used from inside the engine (a body, an ``equals``, a hook) to look at the graph from
    another thread at that exact moment. A correct engine may make the reader wait for the
    lock, so the reader is only joined for good in ``result()``.
    """

    def __init__(self, read: Callable[[], Any]) -> None:
        self.outcome: list[Any] = []
        self.thread = threading.Thread(target=self._run, args=(read,))
        self.thread.start()
        self.thread.join(timeout=0.1)

    def _run(self, read: Callable[[], Any]) -> None:
        try:
            self.outcome.append(read())
        except Exception as exc:
            self.outcome.append(repr(exc))

    def result(self) -> Any:
        self.thread.join(timeout=10)
        return self.outcome[0]


def test_a_read_waits_for_a_body_running_in_another_thread() -> None:
    """Read while another thread is inside the body, then while it stores the result: the
    reader gets the new value, neither a spurious CycleError nor the previous value."""
    s = Signal(1)
    readers: list[ReaderThread] = []
    armed: list[bool] = []

    def look_from_another_thread() -> None:
        if armed:
            readers.append(ReaderThread(lambda: tenfold.get()))

    def body() -> int:
        value = s.get() * 10
        look_from_another_thread()
        return value

    def equals(old: int, new: int) -> bool:
        look_from_another_thread()
        return old == new

    tenfold = Computed(body, equals=equals)
    tenfold.get()
    armed.append(True)
    s.set(2)
    tenfold.get()

    assert [20, 20] == [reader.result() for reader in readers]


def test_another_threads_read_of_a_stale_computed_waits_while_a_body_runs_here() -> None:
    """A body of ours is running (nested evaluations in progress, the engine lock held), and
    another thread reads a different computed that a write made stale: it waits for the
    lock, so the two bodies never run at once, and it gets the new value. (A read nested in
    a body skips re-taking the lock; only the thread whose evaluation it is may.)"""
    s = Signal(1)
    running: list[str] = []
    overlaps: list[tuple[str, ...]] = []

    def exclusive(name: str, fn: Callable[[], int]) -> Callable[[], int]:
        def body() -> int:
            if running:
                overlaps.append((*running, name))
            running.append(name)
            try:
                return fn()
            finally:
                running.remove(name)
        return body

    theirs = Computed(exclusive("theirs", lambda: s.get() + 100))
    readers: list[ReaderThread] = []

    def mine_body() -> int:
        if s.get() == 2:  # the second run: look from another thread, mid-body
            readers.append(ReaderThread(lambda: theirs.get()))
        return s.get()

    mine = Computed(exclusive("mine", mine_body))
    nested = Computed(lambda: mine.get() * 10)  # so mine runs nested, at depth 1
    assert (101, 10) == (theirs.get(), nested.get())
    s.set(2)  # theirs, mine and nested are all stale now

    assert 20 == nested.get()
    assert [102] == [reader.result() for reader in readers]
    assert [] == overlaps


def test_a_stale_read_that_finds_an_evaluation_it_does_not_own_still_refreshes() -> None:
    """Not expected (an evaluation lets go of the lock only at depth 0), but if a read takes
    the lock and finds ``depth`` set by an evaluation that is not this thread's, it brings
    the computed up to date through the walk: right at any depth."""
    s = Signal(1)
    doubled = Computed(lambda: s.get() * 2)
    assert 2 == doubled.get()
    s.set(5)
    ctx = graph.context
    with ctx.lock:
        saved = (ctx.depth, ctx.owner)
        ctx.depth, ctx.owner = 3, threading.get_ident() ^ 1  # someone else's, mid-evaluation
        try:
            assert 10 == doubled.get()
        finally:
            ctx.depth, ctx.owner = saved
    assert (0, 2) == (ctx.depth, doubled.runs)


def test_a_thread_that_sees_a_new_signal_value_never_sees_a_stale_dependent() -> None:
    """Mid-write (from an ``on_set`` hook), another thread reading ``s`` and then ``pair``
    gets a pair at least as new as ``s``."""
    s = Signal(1)
    pair = Computed(lambda: (s.get(), s.get() * 2))
    pair.get()
    readers: list[ReaderThread] = []

    class LookMidWrite(GraphHooks):
        def on_set(self, node: SourceNode, old: Any, new: Any) -> Any:
            readers.append(ReaderThread(lambda: (s.peek(), pair.get())))

    graph.set_hooks(LookMidWrite())
    try:
        s.set(2)
    finally:
        graph.set_hooks(None)
    seen_s, seen_pair = readers[0].result()

    assert seen_pair[0] >= seen_s, f"saw s={seen_s}, then the older pair {seen_pair}"
    assert (2, 4) == pair.get()


def test_a_read_from_another_thread_is_never_recorded_as_a_dependency() -> None:
    """While a body runs in this thread, another thread's read is not the body's dependency."""
    mine, theirs = Signal(1), Signal(100)
    reading_started = threading.Event()
    other_read: list[int] = []

    def read_from_other_thread() -> None:
        reading_started.wait(timeout=10)
        other_read.append(theirs.get())

    thread = threading.Thread(target=read_from_other_thread)

    def body() -> int:
        thread.start()
        reading_started.set()
        thread.join(timeout=10)
        return mine.get()

    counted = Counted(body)
    c = Computed(counted)
    c.get()

    assert [100] == other_read
    assert ([mine], {}) == (c.deps, theirs.subs)


def test_untracked_in_another_thread_leaves_this_threads_tracking_alone() -> None:
    """While a body runs here, another thread enters and leaves ``untracked()``: the body's
    reads before and after are still its dependencies, the other thread's read is not.

    (Tracking is one engine-wide observer owned by the thread running the body.)"""
    mine, later, theirs = Signal(1), Signal(2), Signal(100)
    entered, leave, left = threading.Event(), threading.Event(), threading.Event()
    other_read: list[int] = []

    def other_thread() -> None:
        with untracked():
            entered.set()
            leave.wait(timeout=10)
            other_read.append(theirs.get())
        left.set()

    thread = threading.Thread(target=other_thread)

    def body() -> int:
        thread.start()
        entered.wait(timeout=10)
        first = mine.get()
        leave.set()
        left.wait(timeout=10)
        return first + later.get()

    c = Computed(body)
    value = c.get()
    thread.join(timeout=10)

    assert (3, [100]) == (value, other_read)
    assert ([mine, later], {}) == (c.deps, theirs.subs)


# --- observer hooks ---------------------------------------------------------------------------


class Recorder(GraphHooks):
    """Records every hook call by node label; ``on_set`` returns a cause naming the write."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def on_set(self, node: SourceNode, old: Any, new: Any) -> Any:
        self.log.append(("set", node.describe(), old, new))
        return f"cause:{node.describe()}={new}"

    def on_marked(self, node: SourceNode, cause: Any, marked: list[DerivedNode]) -> None:
        self.log.extend(("stale", n.describe(), cause) for n in marked)

    def on_run(self, node: DerivedNode, seconds: float, changed: bool,
               error: BaseException | None) -> None:
        self.log.append(("run", node.describe(), changed, type(error).__name__ if error else None))

    def on_verified(self, node: DerivedNode) -> None:
        self.log.append(("verified", node.describe()))

    def on_edge(self, source: ReactiveNode, target: DerivedNode, added: bool) -> None:
        self.log.append(("edge", source.describe(), target.describe(), added))

    def on_effect_error(self, node: DerivedNode, error: BaseException) -> None:
        self.log.append(("effect_error", node.describe(), str(error)))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """A ``Recorder`` installed as the engine's hooks, always removed afterwards."""
    hooks = Recorder()
    graph.set_hooks(hooks)
    try:
        yield hooks
    finally:
        graph.set_hooks(None)


def test_hooks_see_edges_runs_staleness_and_verification(recorder: Recorder) -> None:
    """The exact event log of a first read, an equal recompute, and a real change.

        count ──► parity ──► label
    """
    count = Signal(1, label="count")
    parity = Computed(lambda: count.get() % 2, label="parity")
    label = Computed(lambda: "odd" if parity.get() else "even", label="label")

    label.get()
    first_read = recorder.log[:]
    recorder.log.clear()
    count.set(3)
    label.get()
    equal_recompute = recorder.log[:]
    recorder.log.clear()
    count.set(4)
    label.get()

    assert [
        ("edge", "count", "parity", True),
        ("run", "parity", True, None),
        ("edge", "parity", "label", True),
        ("run", "label", True, None),
    ] == first_read
    assert [
        ("set", "count", 1, 3),
        ("stale", "parity", "cause:count=3"),
        ("stale", "label", "cause:count=3"),
        ("run", "parity", False, None),
        ("verified", "label"),
    ] == equal_recompute
    assert [
        ("set", "count", 3, 4),
        ("stale", "parity", "cause:count=4"),
        ("stale", "label", "cause:count=4"),
        ("run", "parity", True, None),
        ("run", "label", True, None),
    ] == recorder.log


def test_hooks_see_edges_removed_by_a_switch_and_by_dispose(recorder: Recorder) -> None:
    """A dependency switch and a dispose each report the links they remove."""
    flag, a, b = Signal(True, label="flag"), Signal(1, label="a"), Signal(2, label="b")
    c = Computed(lambda: a.get() if flag.get() else b.get(), label="c")
    c.get()
    recorder.log.clear()

    flag.set(False)
    c.get()
    switch_edges = [entry for entry in recorder.log if entry[0] == "edge"]
    recorder.log.clear()
    c.dispose()

    assert [("edge", "a", "c", False), ("edge", "b", "c", True)] == switch_edges
    assert [("edge", "flag", "c", False), ("edge", "b", "c", False)] == recorder.log


def test_hooks_see_a_failing_effect(recorder: Recorder) -> None:
    """A failing effect is reported to ``on_effect_error`` and its run carries the error."""
    scope = Scope("quiet", on_effect_error=lambda node, exc: None)

    def fails() -> None:
        raise KeyError("missing")

    Effect(fails, label="broken", owner=scope)

    assert [("effect_error", "broken", "'missing'"),
            ("run", "broken", True, "KeyError")] == recorder.log


def test_no_hook_is_called_once_hooks_are_removed() -> None:
    """After ``set_hooks(None)`` the engine calls nothing on the former hooks."""
    hooks = Recorder()
    graph.set_hooks(hooks)
    graph.set_hooks(None)
    try:
        count = Signal(1)
        double = Computed(lambda: count.get() * 2)
        Effect(lambda: double.get())
        count.set(2)
        double.dispose()
    finally:
        graph.set_hooks(None)

    assert [] == hooks.log


def test_effects_dropped_by_an_effect_loop_run_again_on_the_next_write() -> None:
    """After an EffectLoopError, an innocent effect still reacts to later writes."""
    from signalpy_lab.errors import EffectLoopError

    ping, pong, innocent_source = Signal(0), Signal(0), Signal(0)
    seen: list[int] = []
    # It also reads ping and pong, so it is still queued when the loop is cut off.
    effects = [Effect(lambda: seen.append(innocent_source.get() + 0 * (ping() + pong())))]

    def start_the_loop() -> None:
        with batch():
            innocent_source.set(1)
            effects.append(Effect(lambda: pong.set(ping.get() + 1)))  # ping -> pong -> ...
            effects.append(Effect(lambda: ping.set(pong.get() + 1)))

    with pytest.raises(EffectLoopError):
        start_the_loop()
    for effect in effects[1:]:
        effect.dispose()
    innocent_source.set(2)
    assert seen[-1] == 2
