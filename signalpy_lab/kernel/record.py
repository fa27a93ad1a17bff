"""``Record``: an immutable record with named fields, built in one call.

Why not a frozen dataclass: the kernel builds an event for every write, run and call while
someone listens, on the engine's hot path. A frozen dataclass stores each field through
``object.__setattr__`` (about 2 µs for an event of seven fields); a ``Record`` is a tuple
whose fields are read through C-level ``itemgetter`` properties, so building one is a
single ``tuple.__new__`` (about 0.5 µs) and reading a field costs what reading a slot does.

A subclass declares its fields with annotations; a class attribute gives a field's default and
``dataclasses.field(default_factory=...)`` a factory (``ts: float = field(default_factory=
time.time)``). A subclass inherits its base's fields and may give one of them a new default
(``kind: str = "signal.set"``). Fields are keyword-only unless the class says
``kw_only=False``. Every public annotation of a subclass is a field (class-level constants take
an ``_underscore`` name). Records compare equal only to records of the same class, hash like tuples,
pickle, and ``to_dict()`` them (nested records too) the way ``dataclasses.asdict`` does. Being
tuples they can also be unpacked and indexed, in ``_fields`` order.
"""

from __future__ import annotations

import dataclasses
import inspect
from operator import itemgetter
from typing import Any, ClassVar

__all__ = ["Record"]

_new = tuple.__new__


class _Factory:
    """The default shown for a field whose default is a factory (``ts=<factory>``)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY: Any = _Factory()


def _rebuild(cls: type[Record], values: tuple[Any, ...]) -> Record:
    return _new(cls, values)


class Record(tuple):  # type: ignore[type-arg]
    """Base of the kernel's immutable records (events, causes); see the module docstring."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _factories: ClassVar[dict[str, Any]] = {}
    #: ``cls._make(*required, **defaulted)``: the fields without a default or factory,
    #: positionally in field order; those with a default by keyword; factories are called.
    #: For hot paths (half the cost of the keyword call); other code uses the class itself.
    _make: ClassVar[Any]

    def __init_subclass__(cls, *, kw_only: bool = True, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        factories = dict(cls._factories)
        for name in inspect.get_annotations(cls):  # this class's own, in declaration order
            if name.startswith("_"):
                continue
            if name not in fields:
                fields.append(name)
            if name in cls.__dict__:
                value = cls.__dict__[name]
                defaults.pop(name, None)
                factories.pop(name, None)
                if isinstance(value, dataclasses.Field):
                    factories[name] = value.default_factory
                else:
                    defaults[name] = value
                delattr(cls, name)
        cls._fields, cls._defaults, cls._factories = tuple(fields), defaults, factories
        for index, name in enumerate(fields):
            if not isinstance(cls.__dict__.get(name), property):
                setattr(cls, name, property(itemgetter(index), doc=f"Field {index}: {name}."))
        cls.__match_args__ = tuple(fields)
        cls.__new__ = _generate(cls, "__new__", kw_only=kw_only)  # type: ignore[method-assign]
        cls._make = staticmethod(_generate(cls, "_make"))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r} "
                             "(make a changed copy with .replace(...))")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and tuple.__eq__(self, other)  # type: ignore[arg-type]

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), tuple(self))

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value, nested records as dicts too (JSON-able when the values are)."""
        return {name: value.to_dict() if isinstance(value, Record) else value
                for name, value in zip(self._fields, self)}

    def replace(self, **changes: Any) -> Record:
        """A copy with ``changes`` applied (``dataclasses.replace`` for records)."""
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}; "
                            f"its fields are {', '.join(self._fields)}")
        return _new(type(self), tuple(changes.get(name, value)
                                      for name, value in zip(self._fields, self)))


def _generate(cls: type[Record], kind: str, *, kw_only: bool = True) -> Any:
    """Generate, once per class, ``__new__`` (every field a parameter, a factory's called when
    its field is not given) or ``_make`` (the fields without a default positionally, those
    with one by keyword, factories always called)."""
    scope: dict[str, Any] = {"_new": _new, "_FACTORY": _FACTORY, "_cls": cls}
    required: list[str] = []
    optional: list[str] = []
    values: list[str] = []
    for name in cls._fields:
        if name in cls._defaults:
            scope[f"_default_{name}"] = cls._defaults[name]
            optional.append(f"{name}=_default_{name}")
            values.append(name)
        elif name in cls._factories:
            scope[f"_factory_{name}"] = cls._factories[name]
            if kind == "__new__":
                optional.append(f"{name}=_FACTORY")
                values.append(f"_factory_{name}() if {name} is _FACTORY else {name}")
            else:
                values.append(f"_factory_{name}()")
        else:
            required.append(name)
            values.append(name)
    if kind == "__new__":
        if not kw_only and required and optional and (
                cls._fields.index(required[-1]) > len(required) - 1):
            raise TypeError(f"{cls.__name__}: a positional field without a default follows "
                            "one with a default; make the class kw_only or reorder its fields")
        params = [*required, *optional]  # positional: the field order (checked just above)
        signature = ", ".join(["cls", *(["*"] if kw_only and params else []), *params])
    else:
        signature = ", ".join([*required, *(["*", *optional] if optional else [])])
    body = f"({', '.join(values)},)" if values else "()"
    target = "cls" if kind == "__new__" else "_cls"
    exec(f"def {kind}({signature}):\n    return _new({target}, {body})\n", scope)  # names only
    function = scope[kind]
    function.__qualname__ = f"{cls.__qualname__}.{kind}"
    return function
