"""The four canonical shapes as bare Python closures: the floor any engine is measured against.

Why: an engine's cost per update is the cost of running the bodies plus its bookkeeping
(tracking, marking, version checks, locking). These closures run the same bodies
(``src + k``) with no bookkeeping at all: every update recomputes everything, nothing is
cached, nothing is tracked, so ``ours / floor`` is what our bookkeeping costs per body.
For the chain this is a recursion 1000 deep (``c1000()`` calls ``c999()`` ...), so like
the peers it needs a raised recursion limit and is compared in the † row.

The same interface as the other ``*_shapes`` modules, so ``benchmarks.run`` times it side
by side and ``benchmarks.peers.smoke.check_shapes`` checks its values. A source is a
one-element list (``box[0]``); a node is a zero-argument function.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .peers._common import EffectLog, at_default_recursion_limit

Node = Callable[[], int]


@dataclass
class Shape:
    """A built graph: its source box, the functions an update calls, and any effect."""

    source: list[int]
    reads: list[Node]
    log: EffectLog | None = None
    effect: Callable[[], None] | None = None
    keep_alive: list[object] = field(default_factory=list)


def value(node: Any) -> int:
    """The current value of a source box or a node."""
    return node[0] if isinstance(node, list) else node()  # type: ignore[no-any-return]


def _plus_box(box: list[int], k: int) -> Node:
    def fn() -> int:
        return box[0] + k

    return fn


def _plus(src: Node, k: int) -> Node:
    def fn() -> int:
        return src() + k

    return fn


def build_chain(depth: int) -> Shape:
    """``c1 = s + 1, c2 = c1 + 1, ..., c_depth``; an update calls ``c_depth``."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth!r}")
    box = [0]
    node = _plus_box(box, 1)
    for _ in range(depth - 1):
        node = _plus(node, 1)
    return Shape(source=box, reads=[node])


def build_fan_out(width: int) -> Shape:
    """``width`` functions ``s + i``; an update calls all."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width!r}")
    box = [0]
    return Shape(source=box, reads=[_plus_box(box, i) for i in range(width)])


def _diamond(box: list[int]) -> Node:
    b = _plus_box(box, 1)
    c = _plus_box(box, 2)

    def d_fn() -> int:
        return b() + c()

    return d_fn


def build_diamond() -> Shape:
    """``b = s+1, c = s+2, d = b + c``; an update calls ``d``."""
    box = [0]
    return Shape(source=box, reads=[_diamond(box)])


def build_diamond_effect() -> Shape:
    """The diamond and an "effect" that records ``d``, called after every write."""
    box = [0]
    d = _diamond(box)
    log = EffectLog()

    def on_d() -> None:
        log.record(d())

    on_d()  # an effect runs once at creation
    return Shape(source=box, reads=[], log=log, effect=on_d)


def updater(shape: Shape) -> Callable[[], None]:
    """One update: store a fresh value in the box, call the outputs (or the effect)."""
    box = shape.source
    reads = tuple(shape.reads)
    counter = itertools.count(1)

    if not reads:
        effect = shape.effect
        assert effect is not None

        def update_effect_only() -> None:
            box[0] = next(counter)
            effect()

        return update_effect_only

    if len(reads) == 1:
        (only,) = reads

        def update_one() -> None:
            box[0] = next(counter)
            only()

        return update_one

    def update_all() -> None:
        box[0] = next(counter)
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
    """Build a chain of ``depth`` and call its end twice, at the default recursion limit."""

    def probe() -> bool | str:
        shape = build_chain(depth)
        end = shape.reads[0]
        if end() != depth:
            return "wrong value"
        shape.source[0] = 7
        return True if end() == 7 + depth else "wrong value"

    return at_default_recursion_limit(probe)
