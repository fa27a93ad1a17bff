"""Sealed handles: objects that hold no attribute path to what they wrap.

A component receives handles (``self.rt``, ``rt.config``, ``rt.creds``, ``rt.storage``,
``rt.bus``, injected services). If a handle kept the unscoped service in an attribute or slot,
tenant code could reach it with ``vars()``, ``object.__getattribute__`` or rewrite it with
``object.__setattr__``. So a sealed handle has no state of its own:

* its record (the service, its scope) lives in a table private to this module, keyed by the
  handle's identity *and class*: a method of one handle class called on another handle (an
  unbound method with a forged ``self``, or after ``__class__`` was reassigned) finds nothing;
* the handle classes cannot be constructed, copied, pickled, subclassed with state, or have
  attributes set or deleted on them (so a tenant cannot patch a method every tenant uses);
* the module-level functions that issue handles are not reachable from a handle's attributes.

Services without their own scoping (another component's object) are handed out through a
``ServiceProxy`` exposing only that component's public methods, as sealed callables: no
``__self__`` leading back to the component and its own ``rt``.

This is a boundary against code that uses the handles' API, attributes and dunders. It is not
a sandbox: code that imports private modules, follows ``__globals__``, walks ``gc`` or frames,
patches shared modules, or uses ``ctypes`` can reach anything in the process (README,
"Security model").
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

__all__ = ["SealedMethod", "Sealed", "ServiceProxy", "seal", "service_proxy", "unseal"]

H = TypeVar("H", bound="Sealed")


class _SealedMeta(type):
    """Handle classes are read-only once created: no method can be patched or removed."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise TypeError(f"{cls.__name__} is a kernel handle class; it cannot be modified.")

    def __delattr__(cls, name: str) -> None:
        raise TypeError(f"{cls.__name__} is a kernel handle class; it cannot be modified.")


class Sealed(metaclass=_SealedMeta):
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


def _vault() -> tuple[Callable[[type[H], Any], H], Callable[[Sealed, type], Any]]:
    records: dict[int, tuple[type, Any]] = {}

    def seal(cls: type[H], record: Any) -> H:
        handle = object.__new__(cls)
        key = id(handle)
        records[key] = (cls, record)
        weakref.finalize(handle, records.pop, key, None)
        return handle

    def unseal(handle: Sealed, cls: type) -> Any:
        entry = records.get(id(handle))
        if entry is None or entry[0] is not cls or type(handle) is not cls:
            raise TypeError(f"{type(handle).__name__} object is not a kernel-issued "
                            f"{cls.__name__} handle")
        return entry[1]

    return seal, unseal


seal, unseal = _vault()
seal.__doc__ = "Issue a new handle of class ``cls`` backed by ``record``."
unseal.__doc__ = "The record behind a kernel-issued handle of class ``cls`` (else TypeError)."


class SealedMethod(Sealed):
    """One public method of a proxied service, callable without exposing the service."""

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        service, name = unseal(self, SealedMethod)
        return getattr(service, name)(*args, **kwargs)

    def __repr__(self) -> str:
        service, name = unseal(self, SealedMethod)
        return f"<method {name} of {type(service).__name__} service>"


class ServiceProxy(Sealed):
    """Another component's service as a consumer sees it: its public methods, nothing else."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        service, allowed, methods = unseal(self, ServiceProxy)
        if name not in allowed:
            raise AttributeError(
                f"the {type(service).__name__} service exposes "
                f"{', '.join(sorted(allowed)) or 'no methods'}; {name!r} is not one of them"
            )
        method = methods.get(name)
        if method is None:
            method = methods[name] = seal(SealedMethod, (service, name))
        return method

    def __dir__(self) -> list[str]:
        return sorted(unseal(self, ServiceProxy)[1])

    def __repr__(self) -> str:
        service, allowed, _methods = unseal(self, ServiceProxy)
        return f"<{type(service).__name__} service: {', '.join(sorted(allowed))}>"


#: Never exposed through a proxy: the kernel's hooks into a component.
_HIDDEN = frozenset({"rt", "scoped_for"})


def service_proxy(service: Any, hidden: frozenset[str] = frozenset()) -> ServiceProxy:
    """Wrap a component object so consumers reach only its public methods."""
    import inspect

    def exposed(name: str) -> bool:
        static = inspect.getattr_static(service, name, None)
        return callable(static) or hasattr(static, "fn")  # methods and @computed values

    allowed = frozenset(
        name for name in dir(type(service))
        if not name.startswith("_") and name not in _HIDDEN and name not in hidden
        and exposed(name)
    )
    return seal(ServiceProxy, (service, allowed, {}))
