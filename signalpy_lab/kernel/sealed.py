"""Sealed handles: objects that hold no attribute path to what they wrap.

A component receives handles (``self.rt``, ``rt.config``, ``rt.creds``, ``rt.storage``,
``rt.bus``). If a handle kept the unscoped service in an attribute or slot, tenant code could
reach it with ``vars()``, ``object.__getattribute__`` or ``object.__setattr__`` (and e.g.
rewrite its own target). So a sealed handle has no state of its own: its record (the service,
its scope) lives in a table private to this module, keyed by the handle's identity, and the
handle class cannot be constructed or copied from outside.

This is a boundary against code that uses the handles' API, attributes and dunders. It is
not a sandbox: code that imports private modules, walks ``gc`` or frames, or uses ``ctypes``
can reach anything in the process (see README, "Security model").
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

__all__ = ["Sealed", "seal", "unseal"]

H = TypeVar("H", bound="Sealed")


class Sealed:
    """Base class of handles whose state lives outside the object."""

    __slots__ = ("__weakref__",)

    def __new__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            f"{cls.__name__} handles are issued by the kernel to components; "
            "they cannot be constructed."
        )

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(f"{type(self).__name__} handles cannot be copied or pickled.")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("__slots__") != ():
            raise TypeError(f"{cls.__name__} must declare __slots__ = () (no state of its own)")


def _vault() -> tuple[Callable[[type[H], Any], H], Callable[[Sealed], Any]]:
    records: dict[int, Any] = {}

    def seal(cls: type[H], record: Any) -> H:
        handle = object.__new__(cls)
        key = id(handle)
        records[key] = record
        weakref.finalize(handle, records.pop, key, None)
        return handle

    def unseal(handle: Sealed) -> Any:
        try:
            return records[id(handle)]
        except KeyError:
            raise TypeError(f"{type(handle).__name__} object is not a kernel-issued handle")\
                from None

    return seal, unseal


seal, unseal = _vault()
seal.__doc__ = "Issue a new handle of class ``cls`` backed by ``record``."
unseal.__doc__ = "The record behind a kernel-issued handle (TypeError for anything else)."
