"""The four canonical reactive shapes built with ``reaktiv`` (0.24.x).

Why: reaktiv is the closest pure-signals peer of signalpy_lab (Preact-style
edge graph with versioned producers), so the same shapes measured here and in
signalpy_lab give a like-for-like per-update cost.

Every public builder returns a zero-argument ``update()`` that performs one
update (sets the source signal to a new value) and forces the result to be
observed: the computeds of interest are read, or, for the effect shape, the
effect runs synchronously inside ``Signal.set``.  The ``build_*`` functions
return the graph itself so a smoke test can check the values.

reaktiv API used: ``Signal(v)`` with ``.get()``/``.set(v)``,
``Computed(fn)`` (a ``ComputeSignal``, read with ``.get()``), ``Effect(fn)``
(runs once at creation, then after every change of what it read; a reference
must be kept).  reaktiv's thread safety is left at its default (on), as a new
user would have it.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from reaktiv import Computed, Effect, Signal
from reaktiv import scheduler as _scheduler
from reaktiv.signal import ComputeSignal

from ._common import EffectLog, at_default_recursion_limit


@dataclass
class Shape:
    """A built graph: its source, the nodes an update reads, and any effect."""

    source: Signal[int]
    reads: list[ComputeSignal[int]]
    log: EffectLog | None = None
    keep_alive: list[object] = field(default_factory=list)


def _plus(src: Signal[int], k: int) -> Callable[[], int]:
    """A compute function ``src + k`` (a closure, so it takes no arguments)."""

    def fn() -> int:
        return src.get() + k

    return fn


def build_chain(depth: int) -> Shape:
    """``c1 = s + 1, c2 = c1 + 1, ..., c_depth``; an update reads ``c_depth``."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    s = Signal(0)
    node: Signal[int] = s
    for _ in range(depth):
        node = Computed(_plus(node, 1))
    assert isinstance(node, ComputeSignal)
    return Shape(source=s, reads=[node])


def build_fan_out(width: int) -> Shape:
    """One signal feeding ``width`` computeds ``s + i``; an update reads all."""
    if width < 1:
        raise ValueError("width must be >= 1")
    s = Signal(0)
    return Shape(source=s, reads=[Computed(_plus(s, i)) for i in range(width)])


def _diamond(s: Signal[int]) -> ComputeSignal[int]:
    b = Computed(_plus(s, 1))
    c = Computed(_plus(s, 2))

    def d_fn() -> int:
        return b.get() + c.get()

    return Computed(d_fn)


def build_diamond() -> Shape:
    """``s -> b = s+1, c = s+2 -> d = b + c``; an update reads ``d``."""
    s = Signal(0)
    return Shape(source=s, reads=[_diamond(s)])


def build_diamond_effect() -> Shape:
    """The diamond ending in an effect that reads ``d`` and records it."""
    s = Signal(0)
    d = _diamond(s)
    log = EffectLog()

    def on_d() -> None:
        log.record(d.get())

    eff = Effect(on_d)  # runs once now, then on every change of d
    return Shape(source=s, reads=[], log=log, keep_alive=[eff, d])


def updater(shape: Shape) -> Callable[[], None]:
    """One update of ``shape``: set the source to a fresh value, read the outputs."""
    source = shape.source
    reads = tuple(shape.reads)
    counter = itertools.count(1)
    keep_alive = shape.keep_alive

    if not reads:

        def update_effect_only() -> None:
            source.set(next(counter))  # the effect runs inside set()

        update_effect_only.keep_alive = keep_alive  # type: ignore[attr-defined]
        return update_effect_only

    if len(reads) == 1:
        (only,) = reads

        def update_one() -> None:
            source.set(next(counter))
            only.get()

        return update_one

    def update_all() -> None:
        source.set(next(counter))
        for node in reads:
            node.get()

    return update_all


def chain(depth: int) -> Callable[[], None]:
    return updater(build_chain(depth))


def fan_out(width: int) -> Callable[[], None]:
    return updater(build_fan_out(width))


def diamond() -> Callable[[], None]:
    return updater(build_diamond())


def diamond_effect() -> Callable[[], None]:
    return updater(build_diamond_effect())


def max_chain_depth_ok(depth: int) -> bool | str:
    """Build a chain of ``depth``, read its end, update, read again.

    Runs at CPython's default recursion limit.  Returns ``True`` when both
    reads give the right value, otherwise the exception type name (or a short
    description of a wrong value).  If the failure left reaktiv's per-thread
    batch depth non-zero, that is appended, because every later effect in the
    process would then be deferred forever.
    """

    def probe() -> bool | str:
        shape = build_chain(depth)
        end = shape.reads[0]
        first = end.get()
        if first != depth:
            return f"wrong value {first!r}, expected {depth}"
        shape.source.set(7)
        second = end.get()
        if second != 7 + depth:
            return f"wrong value {second!r}, expected {7 + depth}"
        return True

    result = at_default_recursion_limit(probe)
    leftover = _scheduler.current_batch_depth()
    if result is not True and leftover:
        return f"{result} (left reaktiv batch depth {leftover})"
    return result
