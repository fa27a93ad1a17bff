"""The four canonical reactive shapes built with ``observ`` (1.0.x).

Why: observ is a port of Vue's reactivity (proxies, lazy computed watchers,
dependency sets), the most mature pure-Python peer a user might pick instead of
signalpy_lab, so the same shapes are measured here like-for-like.

Every public builder returns a zero-argument ``update()`` that performs one
update (sets the source to a new value) and forces the result to be observed:
the computeds of interest are called, or, for the effect shape, the effect runs
synchronously inside the write.  The ``build_*`` functions return the graph
itself so a smoke test can check the values (through ``value``, since observ's
nodes are a dict proxy and plain getter functions, not objects with ``get()``).

observ API used: ``ref(v)`` (a reactive ``{"value": v}``; read ``r["value"]``,
write ``r["value"] = v``, which is a no-op for an equal value), ``computed(fn)``
(a lazy cached getter, read by calling it), ``watch_effect(fn, sync=True)``
(runs once now and then synchronously inside every write that reaches it;
without ``sync`` it would wait for an event loop, which the shape does not
have; a reference to the returned watcher must be kept).
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from observ import computed, ref, watch_effect
from observ.dep import Dep

from ._common import EffectLog, at_default_recursion_limit


@dataclass
class Shape:
    """A built graph: its source, the nodes an update reads, and any effect."""

    source: Any  # an observ ref: a reactive {"value": ...}
    reads: list[Callable[[], int]]
    log: EffectLog | None = None
    keep_alive: list[object] = field(default_factory=list)


def value(node: Any) -> int:
    """The current value of a source (a ref) or a computed (a getter)."""
    return node() if callable(node) else node["value"]  # type: ignore[no-any-return]


def _plus_source(src: Any, k: int) -> Callable[[], int]:
    def fn() -> int:
        return src["value"] + k  # type: ignore[no-any-return]

    return fn


def _plus(src: Callable[[], int], k: int) -> Callable[[], int]:
    """A compute function ``src + k`` (a closure, so it takes no arguments)."""

    def fn() -> int:
        return src() + k

    return fn


def build_chain(depth: int) -> Shape:
    """``c1 = s + 1, c2 = c1 + 1, ..., c_depth``; an update reads ``c_depth``."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    s = ref(0)
    node = computed(_plus_source(s, 1))
    for _ in range(depth - 1):
        node = computed(_plus(node, 1))
    return Shape(source=s, reads=[node])


def build_fan_out(width: int) -> Shape:
    """One signal feeding ``width`` computeds ``s + i``; an update reads all."""
    if width < 1:
        raise ValueError("width must be >= 1")
    s = ref(0)
    return Shape(source=s, reads=[computed(_plus_source(s, i)) for i in range(width)])


def _diamond(s: Any) -> Callable[[], int]:
    b = computed(_plus_source(s, 1))
    c = computed(_plus_source(s, 2))

    def d_fn() -> int:
        return b() + c()

    return computed(d_fn)


def build_diamond() -> Shape:
    """``s -> b = s+1, c = s+2 -> d = b + c``; an update reads ``d``."""
    s = ref(0)
    return Shape(source=s, reads=[_diamond(s)])


def build_diamond_effect() -> Shape:
    """The diamond ending in an effect that reads ``d`` and records it."""
    s = ref(0)
    d = _diamond(s)
    log = EffectLog()

    def on_d() -> None:
        log.record(d())

    eff = watch_effect(on_d, sync=True)  # runs once now, then inside every write
    return Shape(source=s, reads=[], log=log, keep_alive=[eff, d])


def updater(shape: Shape) -> Callable[[], None]:
    """One update of ``shape``: set the source to a fresh value, read the outputs."""
    source = shape.source
    reads = tuple(shape.reads)
    counter = itertools.count(1)
    keep_alive = shape.keep_alive

    if not reads:

        def update_effect_only() -> None:
            source["value"] = next(counter)  # the sync effect runs inside the write

        update_effect_only.keep_alive = keep_alive  # type: ignore[attr-defined]
        return update_effect_only

    if len(reads) == 1:
        (only,) = reads

        def update_one() -> None:
            source["value"] = next(counter)
            only()

        return update_one

    def update_all() -> None:
        source["value"] = next(counter)
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
    description of a wrong value).  If the failure left watchers on observ's
    global evaluation stack (``Dep.stack``), that is appended, because every
    later read in the process would then be tracked as a dependency of them.
    """

    def probe() -> bool | str:
        shape = build_chain(depth)
        end = shape.reads[0]
        first = end()
        if first != depth:
            return f"wrong value {first!r}, expected {depth}"
        shape.source["value"] = 7
        second = end()
        if second != 7 + depth:
            return f"wrong value {second!r}, expected {7 + depth}"
        return True

    result = at_default_recursion_limit(probe)
    if result is not True and Dep.stack:
        return f"{result} (left {len(Dep.stack)} watchers on observ's Dep.stack)"
    return result
