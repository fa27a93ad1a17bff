"""The names of Cython's pure-Python mode that ``graph.py`` uses, for when it runs as Python.

Why not Cython's own ``cython`` module (its ``Shadow.py``): the package must not need Cython
at run time, and Cython's stand-in ``cclass`` leaves a class as it is, with a ``__dict__``
per instance. Here ``cclass`` rebuilds the class with ``__slots__`` named by its
``declare``\\ d attributes, so the pure engine keeps the slotted nodes it always had, and
the compiled one gets the same attributes as C fields (``public``: readable from Python).

``graph.py`` imports this only when it is not compiled; compiled, ``import cython`` is
Cython's and every name here is resolved at compile time.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

compiled = False

T = TypeVar("T")
_NOTHING: Any = object()

# C types used in annotations and declarations: plain Python objects here.
bint = int = long = longlong = ulong = Py_ssize_t = object
NULL = None


class _Declared:
    """A class attribute declared with ``declare(type)``: becomes a slot in ``cclass``."""

    __slots__ = ()


def declare(type_: Any = None, value: Any = _NOTHING, **_options: Any) -> Any:
    """``x = declare(T, v)``: ``v``; in a class body ``declare(T)``: a slot of ``cclass``."""
    return _Declared() if value is _NOTHING else value


def cclass(cls: type[T]) -> type[T]:
    """The class again, its ``declare``\\ d attributes turned into ``__slots__``.

    Methods must call a base's method explicitly (``Base.__init__(self)``), not with
    zero-argument ``super()``, whose cell names the class before this rebuild.
    """
    namespace = dict(vars(cls))
    slots = tuple(name for name, value in namespace.items() if isinstance(value, _Declared))
    for name in (*slots, "__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace["__slots__"] = slots
    return type(cls)(cls.__name__, cls.__bases__, namespace)  # type: ignore[return-value]


def _identity(fn: T) -> T:
    return fn


ccall = cfunc = inline = final = _identity


def locals(**_types: Any) -> Callable[[T], T]:  # Cython's name
    return _identity


def exceptval(*_value: Any, **_options: Any) -> Callable[[T], T]:  # Cython's name
    return _identity


def cast(_type: Any, value: T) -> T:
    return value
