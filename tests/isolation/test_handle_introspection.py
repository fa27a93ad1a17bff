"""Handles expose no attribute path to the unscoped services they wrap.

``self.rt``, ``rt.config``, ``rt.creds``, ``rt.storage`` and ``rt.bus`` are sealed handles:
their record lives in a table private to ``signalpy_lab.kernel.sealed``, so the objects have
no ``__dict__``, no slots but ``__weakref__``, and refuse copying and construction. Each
attack here is mallory's code poking at its own handles; the "unscoped" objects are the
registry, the bus, the kernel, the providers and other components' objects.
"""

from __future__ import annotations

import copy
import gc
import inspect
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from signalpy_lab.errors import TenantIsolationError
from signalpy_lab.kernel import Bus, Consumer, Kernel, Registry, Runtime, ScopedBus
from signalpy_lab.providers import (
    ConfigProvider,
    CredentialHandle,
    CredentialProvider,
    LoggingProvider,
    StorageHandle,
    StorageProvider,
    TenantConfig,
)

from .conftest import VICTIM, Auditor, Vault

#: What tenant code must never get hold of.
UNSCOPED = (Registry, Bus, Kernel, ConfigProvider, CredentialProvider, StorageProvider,
            LoggingProvider, Vault, Auditor)

#: Mallory's sealed handles, by name.
HANDLES: dict[str, Callable[[Any], Any]] = {
    "rt": lambda self: self.rt,
    "config": lambda self: self.rt.config,
    "creds": lambda self: self.rt.creds,
    "storage": lambda self: self.rt.storage,
    "bus": lambda self: self.rt.bus,
}

#: One ordinary use of each handle, to show a forged or bare one is refused.
USE: dict[str, Callable[[Any], Any]] = {
    "rt": lambda h: h.name,
    "config": lambda h: h.get("region"),
    "creds": lambda h: h.keys(),
    "storage": lambda h: h.list(),
    "bus": lambda h: h.publish("payments.sent"),
}

PRIVATE_NAMES = ["_config", "_provider", "_registry", "_bus", "_record", "_consumer",
                 "_service", "_kernel", "_target", "_handles"]

with_every_handle = pytest.mark.parametrize("which", list(HANDLES))


@with_every_handle
async def test_vars_of_a_handle_is_a_type_error(attack, which) -> None:
    """`vars(handle)` finds no `__dict__` to read."""
    with pytest.raises(TypeError, match="vars\\(\\) argument must have __dict__ attribute"):
        await attack(lambda self: vars(HANDLES[which](self)))


@with_every_handle
async def test_a_handle_has_no_dunder_dict(attack, which) -> None:
    """`handle.__dict__` is an AttributeError."""
    with pytest.raises(AttributeError, match="object has no attribute '__dict__'"):
        await attack(lambda self: HANDLES[which](self).__dict__)


@with_every_handle
@pytest.mark.parametrize("name", PRIVATE_NAMES)
@pytest.mark.parametrize("read", [getattr, object.__getattribute__],
                         ids=["getattr", "object.__getattribute__"])
async def test_private_names_are_not_there(attack, which, name, read) -> None:
    """`_registry`, `_bus`, `_provider`... exist neither as attributes nor as slots."""
    with pytest.raises(AttributeError, match=f"object has no attribute '{name}'"):
        await attack(lambda self: read(HANDLES[which](self), name))


@with_every_handle
async def test_object_setattr_cannot_plant_state(attack, which) -> None:
    """`object.__setattr__(handle, "_registry", ...)` has nowhere to store it."""
    with pytest.raises(AttributeError, match="object has no attribute '_registry'"):
        await attack(lambda self: object.__setattr__(HANDLES[which](self), "_registry", {}))


@with_every_handle
async def test_no_public_attribute_is_an_unscoped_service(attack, which) -> None:
    """Every non-dunder attribute of a handle is scoped, plain data, or its own bound method."""

    def survey(self):
        handle = HANDLES[which](self)
        leaks, methods = [], []
        for name in dir(handle):
            if name.startswith("__"):
                continue
            value = getattr(handle, name)
            if isinstance(value, UNSCOPED):
                leaks.append(name)
            if inspect.ismethod(value):
                methods.append((value.__self__ is handle, value.__func__.__closure__,
                                hasattr(value, "__wrapped__")))
        return leaks, methods

    leaks, methods = await attack(survey)
    assert [] == leaks
    assert [(True, None, False)] * len(methods) == methods


@with_every_handle
async def test_class_attributes_along_the_mro_hold_no_service(attack, which) -> None:
    """`type(handle).__mro__` leads to functions and properties, never to a service object."""

    def walk(self):
        return [f"{cls.__name__}.{name}" for cls in type(HANDLES[which](self)).__mro__
                for name, value in vars(cls).items() if isinstance(value, UNSCOPED)]

    assert [] == await attack(walk)


@with_every_handle
async def test_the_only_gc_referent_of_a_handle_is_its_class(attack, which) -> None:
    """`gc.get_referents(handle)` returns `[type(handle)]`: the record is not reachable from it."""
    referents = await attack(lambda self: (gc.get_referents(HANDLES[which](self)),
                                           type(HANDLES[which](self))))
    assert [referents[1]] == referents[0]


@with_every_handle
@pytest.mark.parametrize("duplicate", [copy.copy, copy.deepcopy, pickle.dumps,
                                       lambda h: h.__reduce_ex__(2)],
                         ids=["copy", "deepcopy", "pickle", "__reduce_ex__"])
async def test_handles_cannot_be_copied_or_pickled(attack, which, duplicate) -> None:
    """Copying a handle would copy nothing but its class; it is refused outright."""
    with pytest.raises(TypeError, match="handles cannot be copied or pickled"):
        await attack(lambda self: duplicate(HANDLES[which](self)))


@with_every_handle
async def test_reconstructing_from_reduce_gives_a_dead_handle(attack, which) -> None:
    """`handle.__reduce__()` (protocol 0) rebuilds a bare object, which no method accepts."""

    def rebuild(self):
        make, args = HANDLES[which](self).__reduce__()[:2]
        return USE[which](make(*args))

    with pytest.raises(TypeError, match="is not a kernel-issued"):
        await attack(rebuild)


@with_every_handle
async def test_handle_classes_cannot_be_constructed(attack, which) -> None:
    """`type(handle)()` is a TypeError: only the kernel issues handles."""
    with pytest.raises(TypeError, match="handles are issued by the kernel to components"):
        await attack(lambda self: type(HANDLES[which](self))())


@with_every_handle
async def test_a_bare_instance_made_with_object_new_is_dead(attack, which) -> None:
    """`object.__new__(type(handle))` skips the refusal but has no record: TypeError on use."""
    with pytest.raises(TypeError, match="is not a kernel-issued"):
        await attack(lambda self: USE[which](object.__new__(type(HANDLES[which](self)))))


@with_every_handle
@pytest.mark.parametrize("namespace", [{"__slots__": ("stash",)}, {}],
                         ids=["with-a-slot", "with-a-dict"])
async def test_subclasses_with_state_are_refused(attack, which, namespace) -> None:
    """`__init_subclass__` refuses a handle subclass that could hold state."""
    with pytest.raises(TypeError, match="must declare __slots__ = \\(\\)"):
        await attack(lambda self: type("Stash", (type(HANDLES[which](self)),), dict(namespace)))


@with_every_handle
async def test_stateless_subclasses_cannot_make_live_handles(attack, which) -> None:
    """A `__slots__ = ()` subclass (with its own `__init_subclass__`) still yields dead objects."""

    def subclass(self):
        class Evil(type(HANDLES[which](self))):
            __slots__ = ()

            def __init_subclass__(cls, **kwargs):
                pass

        return USE[which](object.__new__(Evil))

    with pytest.raises(TypeError, match="Evil object is not a kernel-issued"):
        await attack(subclass)


async def test_bound_methods_lead_back_to_the_handle_itself(attack) -> None:
    """`rt.config.get.__self__` is the handle and `__func__` the class's plain function."""
    found = await attack(lambda self: (self.rt.config.get.__self__ is self.rt.config,
                                       self.rt.config.get.__func__ is TenantConfig.get))
    assert (True, True) == found


@pytest.mark.parametrize(("forge", "refusal"), [
    (lambda self: TenantConfig.keys(object()),
     (TypeError, "object object is not a kernel-issued ConfigView handle")),
    (lambda self: TenantConfig.keys(self.rt.creds),
     (TypeError, "CredentialHandle object is not a kernel-issued ConfigView handle")),
    (lambda self: CredentialHandle.get(self.rt.config, "password"),
     (TypeError, "ConfigView object is not a kernel-issued CredentialHandle handle")),
    (lambda self: ScopedBus.invoke(self.rt.creds, f"{VICTIM}.read"),
     (TypeError, "CredentialHandle object is not a kernel-issued ScopedBus handle")),
    (lambda self: Runtime.service(self.rt.config, "IConfig"),
     (TypeError, "ConfigView object is not a kernel-issued Runtime handle")),
], ids=["object", "creds-as-config", "config-as-creds", "creds-as-bus", "config-as-runtime"])
async def test_unbound_methods_with_a_forged_self_are_refused(attack, victim_intact, forge,
                                                              refusal) -> None:
    """Calling a handle class's function with a foreign self fails before reaching any data."""
    error, phrase = refusal
    with pytest.raises(error, match=phrase):
        await attack(forge)
    await victim_intact()


async def test_a_config_view_issued_for_globex_over_its_own_view_is_still_acme(
        attack, victim_intact) -> None:
    """There is no `TenantConfig.issue` to forge a globex view with."""
    with pytest.raises(AttributeError, match="'ConfigView' has no attribute 'issue'"):
        await attack(lambda self: type(self.config).issue(self.config, "globex", "mallory")
                     .get("tenants.globex.db_url"))
    await victim_intact()


async def test_a_bus_handle_issued_for_an_admin_over_its_own_handle_is_dead(
        attack, victim_intact) -> None:
    """There is no `ScopedBus.issue` to make an untargeted bus handle with."""
    admin = Consumer("auditor", "auditor", None)
    with pytest.raises(AttributeError, match="'ScopedBus' has no attribute 'issue'"):
        await attack(lambda self: type(self.rt.bus).issue(self.rt.bus, admin)
                     .invoke(f"{VICTIM}.read"))
    await victim_intact()


@pytest.mark.parametrize(("which", "steal"), [
    ("creds", lambda service: service.get(VICTIM, "password")),
    ("config", lambda service: service.get("tenants.globex")),
    ("bus", lambda service: service.invoke(f"{VICTIM}.read")),
])
async def test_a_storage_property_read_on_another_handle_reaches_nothing(attack, which,
                                                                         steal) -> None:
    """`StorageHandle._prefix.fget(self.rt.<handle>)` must not return the service behind it."""
    with pytest.raises((AttributeError, TypeError, ValueError)):
        await attack(lambda self: steal(StorageHandle._prefix.fget(HANDLES[which](self))))


async def test_retyping_a_handle_reaches_nothing(attack) -> None:
    """Re-typing `self.rt.creds` as a StorageHandle must not make `_prefix` the provider."""

    def retype(self):
        object.__setattr__(self.rt.creds, "__class__", StorageHandle)
        return self.rt.creds._prefix.get(VICTIM, "password")

    with pytest.raises((AttributeError, TypeError, ValueError)):
        await attack(retype)


@pytest.mark.xfail(strict=True, reason="FINDING: every handle method's __globals__ holds "
                   "unseal(); unseal(self.rt) is the _Record with the unscoped Registry")
@pytest.mark.xfail(strict=True, reason="DOCUMENTED LIMIT (README, Security model): following "
                   "a function's __globals__ is deliberate introspection, like importing "
                   "signalpy_lab.kernel.sealed; it reaches the module's unseal()")
async def test_method_globals_do_not_lead_to_the_registry(attack) -> None:
    """`self.rt.service.__func__.__globals__["unseal"]` opens the runtime's record."""

    def open_record(self):
        record = self.rt.service.__func__.__globals__["unseal"](self.rt, type(self.rt))
        return record.registry.require("IConfig").get("tenants.globex.api_key")

    with pytest.raises((AttributeError, KeyError, TypeError)):
        await attack(open_record)


async def test_an_untargeted_service_object_carries_no_unscoped_runtime(attack) -> None:
    """`self.rt.service("IAudit").rt.config` must not be the whole config."""
    with pytest.raises((AttributeError, TypeError, TenantIsolationError)):
        await attack(lambda self: self.rt.service("IAudit").rt.config
                     .get("tenants.globex.api_key"))
