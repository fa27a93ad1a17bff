"""The four canonical reactive shapes built with ``nervio`` (0.2.x).

Why: nervio is a small Reactively-style engine (clean/check/dirty colouring, a
pull phase with an explicit stack, one global ``RLock``), the design closest to
ours among the peers, so the same shapes are measured here like-for-like.

Every public builder returns a zero-argument ``update()`` that performs one
update (sets the source signal to a new value) and forces the result to be
observed: the computeds of interest are read, or, for the effect shape, the
effect runs synchronously inside ``Signal.set`` (nervio flushes its effect
queue at the end of every write outside ``batch``).  The ``build_*`` functions
return the graph itself so a smoke test can check the values (through
``value``: nervio's nodes are read by calling them, they have no ``get()``).

nervio API used: ``signal(v)`` with ``s()`` / ``s.set(v)`` (``==`` cut-off),
``computed(fn)`` (lazy, cached, read by calling it), ``effect(fn)`` (runs once
now, then after every change of what it read; returns its ``dispose``, and the
library keeps live effects alive itself).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import nervio
from nervio import Computed, Signal, computed, effect, signal

from ._common import EffectLog, at_default_recursion_limit

Node = Signal[int] | Computed[int]


@dataclass
class Shape:
    """A built graph: its source, the nodes an update reads, and any effect."""

    source: Signal[int]
    reads: list[Computed[int]]
    log: EffectLog | None = None
    keep_alive: list[object] = field(default_factory=list)


def value(node: Any) -> int:
    """The current value of a signal or computed (both are read by calling them)."""
    return node()  # type: ignore[no-any-return]


def _plus(src: Node, k: int) -> Callable[[], int]:
    """A compute function ``src + k`` (a closure, so it takes no arguments)."""

    def fn() -> int:
        return src() + k

    return fn


def build_chain(depth: int) -> Shape:
    """``c1 = s + 1, c2 = c1 + 1, ..., c_depth``; an update reads ``c_depth``."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    s = signal(0)
    node: Node = s
    for _ in range(depth):
        node = computed(_plus(node, 1))
    assert isinstance(node, Computed)
    return Shape(source=s, reads=[node])


def build_fan_out(width: int) -> Shape:
    """One signal feeding ``width`` computeds ``s + i``; an update reads all."""
    if width < 1:
        raise ValueError("width must be >= 1")
    s = signal(0)
    return Shape(source=s, reads=[computed(_plus(s, i)) for i in range(width)])


def _diamond(s: Signal[int]) -> Computed[int]:
    b = computed(_plus(s, 1))
    c = computed(_plus(s, 2))

    def d_fn() -> int:
        return b() + c()

    return computed(d_fn)


def build_diamond() -> Shape:
    """``s -> b = s+1, c = s+2 -> d = b + c``; an update reads ``d``."""
    s = signal(0)
    return Shape(source=s, reads=[_diamond(s)])


def build_diamond_effect() -> Shape:
    """The diamond ending in an effect that reads ``d`` and records it."""
    s = signal(0)
    d = _diamond(s)
    log = EffectLog()

    def on_d() -> None:
        log.record(d())

    dispose = effect(on_d)  # runs once now, then on every change of d
    return Shape(source=s, reads=[], log=log, keep_alive=[dispose, d])


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
            only()

        return update_one

    def update_all() -> None:
        source.set(next(counter))
        for node in reads:
            node()

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
    description of a wrong value).  If the failure left this thread's nervio
    scope mid-evaluation (an observer still set), that is appended, because
    every later read in the thread would then be tracked as its dependency.
    """

    def probe() -> bool | str:
        shape = build_chain(depth)
        end = shape.reads[0]
        first = end()
        if first != depth:
            return f"wrong value {first!r}, expected {depth}"
        shape.source.set(7)
        second = end()
        if second != 7 + depth:
            return f"wrong value {second!r}, expected {7 + depth}"
        return True

    result = at_default_recursion_limit(probe)
    if result is not True and nervio._scope().observer is not None:
        return f"{result} (left a nervio observer set in this thread)"
    return result
