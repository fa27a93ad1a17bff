"""Each library measured by ``js_suite``, adapted to the suite's ``ReactiveFramework``.

Why one module: the adapters must cost every library the same, so they are written side by
side. A node is a ``Node`` whose ``read`` / ``write`` are the library's own callables,
bound once (a bound method, or ``functools.partial`` of ``getattr``/``setattr`` for a
property, both without a Python frame of ours), so a read in a body costs one slot
lookup and the library's read, whatever the library. ``with_build`` / ``cleanup`` own the
effects of one build, as the original's ``effectScope`` does: disposed where the library
can, dropped otherwise (their sources are never written again).

A library that is not installed (signified needs Python 3.12 or newer) is reported with
the reason instead of measured.
"""
from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ._harness import package_version

__all__ = ["FRAMEWORKS", "Node", "load_framework"]


class Node:
    """A signal or computed as the cases see it."""

    __slots__ = ("read", "write")

    def __init__(self, read: Callable[[], Any],
                 write: Callable[[Any], Any] | None = None) -> None:
        self.read = read
        if write is not None:
            self.write = write


def _call(fn: Callable[[], Any]) -> None:
    fn()


def _batched(batch: Callable[[], Any]) -> Callable[[Callable[[], Any]], None]:
    """``with_batch`` for a library whose ``batch()`` is a context manager."""

    def with_batch(fn: Callable[[], Any]) -> None:
        with batch():
            fn()

    return with_batch


class _Base:
    name = ""
    dist = ""

    def __init__(self, module: ModuleType, *, batches: bool = True) -> None:
        """``module`` is the library (``self.m``); ``batches``: it has a ``batch()``
        context manager, else ``with_batch`` just calls."""
        self.m = module
        self.with_batch = _batched(module.batch) if batches else _call
        self._owned: list[Any] = []

    @property
    def version(self) -> str:
        return package_version(self.dist)

    def with_build(self, fn: Callable[[], Any]) -> Any:
        return fn()

    def cleanup(self) -> None:
        self._owned.clear()


class Ours(_Base):
    """signalpy_lab's ``Signal`` / ``Computed`` / ``Effect``, in a ``Scope``."""

    dist = "signalpy-lab"

    def __init__(self, reactive: ModuleType, name: str) -> None:
        super().__init__(reactive)
        self.name = name
        self.scope: Any = None

    def signal(self, value: Any) -> Node:
        s = self.m.Signal(value)
        return Node(s.get, s.set)

    def computed(self, fn: Callable[[], Any]) -> Node:
        return Node(self.m.Computed(fn).get)

    def effect(self, fn: Callable[[], Any]) -> None:
        self.m.Effect(fn)

    def with_build(self, fn: Callable[[], Any]) -> Any:
        self.scope = self.m.Scope("bench")
        with self.scope.active():
            return fn()

    def cleanup(self) -> None:
        if self.scope is not None:
            self.scope.dispose()
            self.scope = None


class Signified(_Base):
    """signified 0.7.3: a Rust (PyO3) core; values through the ``value`` property."""

    name = "signified"
    dist = "signified"

    def __init__(self) -> None:
        import signified

        super().__init__(signified)

    def signal(self, value: Any) -> Node:
        s = self.m.Signal(value)
        return Node(functools.partial(getattr, s, "value"),
                    functools.partial(setattr, s, "value"))

    def computed(self, fn: Callable[[], Any]) -> Node:
        c = self.m.Computed(fn)
        self._owned.append(c)
        return Node(functools.partial(getattr, c, "value"))

    def effect(self, fn: Callable[[], Any]) -> None:
        self._owned.append(self.m.Effect(fn))

    def cleanup(self) -> None:
        for item in self._owned:
            if isinstance(item, self.m.Effect):
                item.dispose()
        self._owned.clear()


class AlienSignals(_Base):
    """``signals`` 0.1.0a7: a Python port of alien-signals, with its ``effect_scope``."""

    name = "signals"
    dist = "signals"

    def __init__(self) -> None:
        import signals

        super().__init__(signals)
        self.dispose: Callable[[], None] | None = None

    def signal(self, value: Any) -> Node:
        s = self.m.Signal(value)
        return Node(s.get, s.set)

    def computed(self, fn: Callable[[], Any]) -> Node:
        return Node(self.m.computed(fn).get)

    def effect(self, fn: Callable[[], Any]) -> None:
        self.m.effect(fn)

    def with_build(self, fn: Callable[[], Any]) -> Any:
        out: list[Any] = []
        self.dispose = self.m.effect_scope(lambda: out.append(fn()))
        return out[0]

    def cleanup(self) -> None:
        if self.dispose is not None:
            self.dispose()
            self.dispose = None


class Observ(_Base):
    """observ 1.0: Vue's reactivity; sync watchers, no batch (``with_batch`` just calls)."""

    name = "observ"
    dist = "observ"

    def __init__(self) -> None:
        import observ

        super().__init__(observ, batches=False)

    def signal(self, value: Any) -> Node:
        r = self.m.ref(value)
        return Node(functools.partial(r.__getitem__, "value"),
                    functools.partial(r.__setitem__, "value"))

    def computed(self, fn: Callable[[], Any]) -> Node:
        c = self.m.computed(fn)
        self._owned.append(c)
        return Node(c)

    def effect(self, fn: Callable[[], Any]) -> None:
        self._owned.append(self.m.watch_effect(fn, sync=True))


class Nervio(_Base):
    """nervio 0.2: a Reactively-style engine; nodes are read by calling them."""

    name = "nervio"
    dist = "nervio"

    def __init__(self) -> None:
        import nervio

        super().__init__(nervio)

    def signal(self, value: Any) -> Node:
        s = self.m.signal(value)
        return Node(s, s.set)

    def computed(self, fn: Callable[[], Any]) -> Node:
        return Node(self.m.computed(fn))

    def effect(self, fn: Callable[[], Any]) -> None:
        self._owned.append(self.m.effect(fn))

    def cleanup(self) -> None:
        for dispose in self._owned:
            dispose()
        self._owned.clear()


class _ClassStyle(_Base):
    """A library of ``Signal(v)`` / ``Computed(fn)`` / ``Effect(fn)`` classes with
    ``get``/``set``, ``dispose()`` and a ``batch()`` context manager."""

    def signal(self, value: Any) -> Node:
        s = self.m.Signal(value)
        return Node(s.get, s.set)

    def computed(self, fn: Callable[[], Any]) -> Node:
        return Node(self.m.Computed(fn).get)

    def effect(self, fn: Callable[[], Any]) -> None:
        self._owned.append(self.m.Effect(fn))

    def cleanup(self) -> None:
        for effect in self._owned:
            effect.dispose()
        self._owned.clear()


class Reaktiv(_ClassStyle):
    """reaktiv: Angular-style signals in plain Python."""

    name = "reaktiv"
    dist = "reaktiv"

    def __init__(self) -> None:
        import reaktiv

        super().__init__(reaktiv)


class SignalpyKernel(_ClassStyle):
    """signalpy-kernel 0.4.0 (import name ``signalpy``): a component microkernel."""

    name = "signalpy-kernel"
    dist = "signalpy-kernel"

    def __init__(self) -> None:
        from signalpy.kernel import reactive

        super().__init__(reactive)


def _ours_installed() -> Ours:
    from signalpy_lab.kernel import ENGINE, reactive

    return Ours(reactive, f"ours ({ENGINE})")


def _ours_pure() -> Ours:
    """The pure engine beside a compiled one: the work tree's graph.py as its own package."""
    import tempfile
    from pathlib import Path

    from .ab_engine import load_engine

    where = Path(tempfile.mkdtemp(prefix="spl-pure-"))
    sys.path.insert(0, str(where))
    reactive = load_engine("wt", where)
    engine = importlib.import_module(reactive.__name__.rsplit(".", 1)[0] + ".graph")
    assert not engine.COMPILED, "the work tree's graph.py loaded compiled"
    return Ours(reactive, "ours (pure)")


#: Name -> factory, in the order of the table's columns.
FRAMEWORKS: dict[str, Callable[[], Any]] = {
    "ours": _ours_installed,
    "ours (pure)": _ours_pure,
    "signified": Signified,
    "signals": AlienSignals,
    "observ": Observ,
    "nervio": Nervio,
    "reaktiv": Reaktiv,
    "signalpy-kernel": SignalpyKernel,
}


def load_framework(name: str) -> Any:
    """The adapter, or the text of why it cannot be had (not installed, Python too old)."""
    try:
        return FRAMEWORKS[name]()
    except ImportError as exc:
        why = f"not installed ({exc.name or exc})"
        if name == "signified" and sys.version_info < (3, 12):
            why = f"needs Python >= 3.12 (this is {sys.version.split()[0]})"
        return why
