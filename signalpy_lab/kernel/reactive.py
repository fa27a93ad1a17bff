"""User-facing reactivity: ``Signal``, ``Computed``, ``Effect``, ``batch()``, ``untracked()``.

Thin classes over the engine in ``graph.py``. Everything derived has an owner: a ``Scope``
(one per component instance in the kernel) that disposes its computeds and effects together,
so removing an instance leaves no subscription behind.

>>> count = Signal(1)
>>> double = Computed(lambda: count.get() * 2)
>>> seen = []
>>> effect = Effect(lambda: seen.append(double.get()))
>>> with batch():
...     count.set(2)
...     count.set(3)
>>> seen
[2, 6]
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

from . import graph
from .graph import (
    DerivedNode,
    SourceNode,
    batch,
    context,
    pause_tracking,
    resume_tracking,
)

__all__ = [
    "Computed",
    "Effect",
    "Scope",
    "Signal",
    "batch",
    "current_scope",
    "untracked",
]

T = TypeVar("T")


class Scope:
    """Owner of reactive nodes: disposing it disposes everything created inside it.

    The kernel gives each component instance a scope labelled with the instance name and
    tenant, which is how the graph snapshot knows who owns what.
    """

    __slots__ = ("name", "tenant", "nodes", "disposed", "on_effect_error", "hub")

    def __init__(self, name: str, tenant: str | None = None, *, hub: Any = None,
                 on_effect_error: Callable[[DerivedNode, BaseException], None] | None = None
                 ) -> None:
        self.name = name
        self.tenant = tenant
        self.nodes: list[graph.ReactiveNode] = []
        self.disposed = False
        self.on_effect_error = on_effect_error
        self.hub = hub  # where events about these nodes go (the kernel's EventHub)

    def adopt(self, node: graph.ReactiveNode) -> None:
        """Make this scope the owner of ``node``."""
        node.owner = self
        if node.tenant is None:
            node.tenant = self.tenant
        self.nodes.append(node)

    @contextmanager
    def active(self) -> Iterator[Scope]:
        """Nodes created inside the ``with`` block are owned by this scope.

        Context-local (a ``ContextVar``), so an ``await`` inside the block does not leak the
        scope into other tasks.
        """
        token = _owner.set(self)
        try:
            yield self
        finally:
            _owner.reset(token)

    def dispose(self) -> None:
        """Dispose every derived node this scope owns (effects first, then computeds)."""
        self.disposed = True
        nodes, self.nodes = self.nodes, []
        for node in nodes:
            if isinstance(node, DerivedNode) and node.is_effect:
                node.dispose()
        for node in nodes:
            if isinstance(node, DerivedNode) and not node.is_effect:
                node.dispose()

    def __repr__(self) -> str:
        return f"Scope({self.name!r}, nodes={len(self.nodes)})"


_owner: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "signalpy_lab_scope", default=None
)


def current_scope() -> Scope | None:
    """The scope that new nodes are adopted by, if any."""
    return _owner.get()


def _adopt(node: graph.ReactiveNode, owner: Scope | None) -> None:
    scope = owner if owner is not None else _owner.get()
    if scope is not None:
        scope.adopt(node)


class Signal(SourceNode, Generic[T]):
    """A writable reactive value. Reads inside a computed or effect become dependencies.

    ``set`` of a value equal to the current one (``==``, or the ``equals`` given) does nothing.
    """

    __slots__ = ()

    def __init__(self, value: T, *, label: str | None = None,
                 equals: Callable[[Any, Any], bool] | None = None,
                 owner: Scope | None = None) -> None:
        super().__init__(value, label, equals)
        _adopt(self, owner)

    #: ``get()``: the value; tracked as a dependency when read inside a computed or effect.
    #: The engine's read itself (not a method calling it): one Python call per read.
    get: Callable[[], T] = SourceNode._read  # type: ignore[assignment]
    __call__ = get

    def peek(self) -> T:
        """The value, without becoming a dependency."""
        return self.value  # type: ignore[no-any-return]

    #: ``set(value)``: store ``value``; dependents go stale and effects re-run. Returns
    #: whether it changed. The engine's write itself, like ``get``.
    set: Callable[[T], bool] = SourceNode._write  # type: ignore[assignment]

    def update(self, fn: Callable[[T], T]) -> bool:
        """Set the value to ``fn(current)``."""
        with context.lock:
            return self._write(fn(self.value))

    def __repr__(self) -> str:
        return f"Signal({self.value!r}, label={self.label!r})"


class Computed(DerivedNode, Generic[T]):
    """A lazily evaluated, cached value derived from signals and other computeds.

    The body re-runs only when read after something it read last time has changed; its
    dependencies are re-tracked on every run. An exception is cached and re-raised on each
    read until a dependency changes. A result equal to the previous one does not propagate.
    """

    __slots__ = ()

    def __init__(self, fn: Callable[[], T], *, label: str | None = None,
                 equals: Callable[[Any, Any], bool] | None = None,
                 owner: Scope | None = None) -> None:
        super().__init__(fn, label, equals=equals)
        _adopt(self, owner)

    #: ``get()``: the up-to-date value (re-running the body only if an input changed).
    #: The engine's read itself (not a method calling it): one Python call per read.
    get: Callable[[], T] = DerivedNode._read  # type: ignore[assignment]
    __call__ = get

    def peek(self) -> T:
        """The up-to-date value, without becoming a dependency of the caller."""
        paused = pause_tracking()
        try:
            return self._read()  # type: ignore[no-any-return]
        finally:
            resume_tracking(paused)

    @property
    def stale(self) -> bool:
        """Whether the next read may run the body."""
        return self.state != graph.CLEAN

    def __repr__(self) -> str:
        return f"Computed(label={self.label!r}, runs={self.runs})"


class Effect(DerivedNode):
    """A side effect that runs now and again after the signals it read change.

    Re-runs at most once per ``batch()``. If the body returns a callable, it is called before
    the next run and on dispose (a cleanup). A failing effect is reported (to its scope, else
    the ``signalpy_lab.reactive`` logger) and does not stop other effects.
    """

    __slots__ = ()

    def __init__(self, fn: Callable[[], Any], *, label: str | None = None,
                 defer: bool = False, owner: Scope | None = None) -> None:
        super().__init__(fn, label, is_effect=True)
        _adopt(self, owner)
        if not defer:
            graph.run_effect_now(self)

    def start(self) -> None:
        """Run a deferred effect for the first time (no-op if it already ran)."""
        if self.runs == 0 and not self.disposed:
            graph.run_effect_now(self)

    def __repr__(self) -> str:
        return f"Effect(label={self.label!r}, runs={self.runs})"


class _Untracked:
    __slots__ = ("previous",)

    def __enter__(self) -> None:
        self.previous = pause_tracking()

    def __exit__(self, *exc: object) -> None:
        resume_tracking(self.previous)


@overload
def untracked() -> _Untracked: ...
@overload
def untracked(fn: Callable[[], T]) -> T: ...


def untracked(fn: Callable[[], T] | None = None) -> Any:
    """Read without creating dependencies: ``untracked(fn)`` or ``with untracked(): ...``."""
    if fn is None:
        return _Untracked()
    paused = pause_tracking()
    try:
        return fn()
    finally:
        resume_tracking(paused)
