"""The four canonical reactive shapes built with ``signalpy_lab.kernel``.

Why: the same shapes as ``benchmarks/peers/reaktiv_shapes.py`` and
``benchmarks/peers/signalpy_kernel_shapes.py``, built with our ``Signal`` /
``Computed`` / ``Effect``, so ``benchmarks.run`` can time all three side by side
and ``benchmarks.peers.smoke.check_shapes`` can check this module's values too.

Every public builder returns a zero-argument ``update()`` that performs one
update (sets the source signal to a new value) and forces the result to be
observed: the computeds of interest are read, or, for the effect shape, the
effect runs synchronously inside ``Signal.set`` (a write outside ``batch()``
flushes the effects it queued before returning, like signalpy-kernel's
implicit batch and reaktiv's ``set``).  No explicit ``batch()`` is used: with a
single write per update it would only add the cost of entering and leaving it.

::

    chain(depth)     s -> c1 -> c2 -> ... -> c_depth        read c_depth
    fan_out(width)   s -> c_0, c_1, ..., c_{width-1}         read all
    diamond()        s -> b = s+1 -> d = b + c               read d
                       \\-> c = s+2 -/
    diamond_effect() the diamond, then an effect reading d   effect runs in set()
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from signalpy_lab.kernel import Computed, Effect, Signal
from signalpy_lab.kernel.graph import context as _engine

from .peers._common import EffectLog, at_default_recursion_limit

__all__ = [
    "Shape",
    "build_chain",
    "build_diamond",
    "build_diamond_effect",
    "build_fan_out",
    "chain",
    "diamond",
    "diamond_effect",
    "fan_out",
    "max_chain_depth_ok",
    "updater",
]

Node: TypeAlias = "Signal[int] | Computed[int]"


@dataclass
class Shape:
    """A built graph: its source, the nodes an update reads, and any effect."""

    source: Signal[int]
    reads: list[Computed[int]]
    log: EffectLog | None = None
    keep_alive: list[object] = field(default_factory=list)


def _plus(src: Node, k: int) -> Callable[[], int]:
    """A compute function ``src + k`` (a closure, so it takes no arguments)."""

    def fn() -> int:
        return src.get() + k

    return fn


def build_chain(depth: int) -> Shape:
    """``c1 = s + 1, c2 = c1 + 1, ..., c_depth``; an update reads ``c_depth``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth!r}")
    s: Signal[int] = Signal(0)
    node: Node = s
    for _ in range(depth):
        node = Computed(_plus(node, 1))
    assert isinstance(node, Computed)
    return Shape(source=s, reads=[node])


def build_fan_out(width: int) -> Shape:
    """One signal feeding ``width`` computeds ``s + i``; an update reads all."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width!r}")
    s: Signal[int] = Signal(0)
    return Shape(source=s, reads=[Computed(_plus(s, i)) for i in range(width)])


def _diamond(s: Signal[int]) -> Computed[int]:
    b = Computed(_plus(s, 1))
    c = Computed(_plus(s, 2))

    def d_fn() -> int:
        return b.get() + c.get()

    return Computed(d_fn)


def build_diamond() -> Shape:
    """``s -> b = s+1, c = s+2 -> d = b + c``; an update reads ``d``."""
    s: Signal[int] = Signal(0)
    return Shape(source=s, reads=[_diamond(s)])


def build_diamond_effect() -> Shape:
    """The diamond ending in an effect that reads ``d`` and records it."""
    s: Signal[int] = Signal(0)
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
    description of a wrong value).  If the failure left the engine mid-evaluation
    or mid-batch, that is appended, as the peer modules do for their globals.
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
    if result is not True and (_engine.depth or _engine.batch_depth):
        return (f"{result} (left engine depth {_engine.depth}, "
                f"batch depth {_engine.batch_depth})")
    return result
