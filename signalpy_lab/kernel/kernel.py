"""The Kernel: discovers component factories, instantiates, boots, routes, and tears down.

    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])
    kernel.instantiate("config", properties={"defaults": {...}})
    kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
    await kernel.boot()
    await kernel.bus.invoke("tenant-db.query", {"target": "acme"})

At boot, a discovered factory with no instance gets one default instance named after it; a
factory with explicit instances gets none. Instances activate in dependency order and
deactivate in reverse. An instance whose activate raises is marked ``failed`` (its error kept)
and the others still boot. After boot, ``instantiate`` / ``hot_add`` activate at once.

The kernel remembers the loop it booted on; its public coroutines awaited from another loop
run on that loop (see ``loop.py``).
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import re
import types
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..errors import (
    DependencyError,
    DuplicateInstanceError,
    InvalidNameError,
    InvalidPropertiesError,
    KernelStateError,
    PolicyError,
    PublishDeniedError,
    RouteConflictError,
    UndeclaredCallError,
    UnknownFactoryError,
    UnknownHandlerError,
    UnknownInstanceError,
    choices,
)
from .bus import Bus, Handler, issue_scoped_bus
from .events import (
    EventHub,
    InstanceAdded,
    InstanceRemoved,
    InstanceStateChanged,
    PolicyChanged,
    current_command,
    short_repr,
)
from .graph import DerivedNode
from .introspection import (
    FactoryInfo,
    GraphNode,
    GraphSnapshot,
    InstanceInfo,
    RouteInfo,
    TransportInfo,
    describe_nodes,
    snapshot_graph,
)
from .lifecycle import (
    ComponentInstance,
    InstanceState,
    activation_order,
    dependencies_of,
)
from .loop import on_home_loop
from .metadata import ComponentMeta, ComputedMethod, LifecycleSpec, meta_of
from .policy import DEFAULT_POLICY, Policy
from .reactive import Effect, Scope
from .registry import Consumer, Registry
from .rules import check_cross_tenant_instance, check_provides, cross_tenant_refusal
from .runtime import issue_runtime, thaw

__all__ = ["Kernel", "KernelState"]

_log = logging.getLogger("signalpy_lab.kernel")
_audit = logging.getLogger("signalpy_lab.audit")
_INSTANCE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")

#: How long ``hot_remove`` lets in-flight calls to the instance finish before deactivating.
DRAIN_SECONDS = 5.0

#: Isolation kinds the kernel can load on first use, by module (kept at the edge: importing
#: the kernel never imports them; the module's ``create_host(kernel)`` makes the host).
ISOLATION_PLUGINS = {"process": "signalpy_lab.remote.process"}


@runtime_checkable
class IsolationHost(Protocol):
    """Runs instances somewhere else than this process (``instantiate(..., isolation=...)``).

    ``start`` returns once the instance serves its handlers (reached through a transport the
    host added to the bus) and sets ``inst.pid``; a host reports a later death by calling
    ``kernel.instance_failed(name, error)``.
    """

    async def start(self, inst: ComponentInstance) -> None: ...

    async def stop(self, inst: ComponentInstance) -> None: ...

    async def close(self) -> None: ...


class KernelState(enum.Enum):
    CREATED = "created"
    BOOTING = "booting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value


class Kernel:
    """A reactive component microkernel (see the module docstring for the whole story)."""

    def __init__(self, name: str = "kernel", *,
                 policies: Mapping[str, Policy | Mapping[str, Any]] | None = None) -> None:
        self.name = name
        self.events = EventHub()
        self.registry = Registry()
        self.bus = Bus(self, self.events)
        self.state = KernelState.CREATED
        self._factories: dict[str, ComponentMeta] = {}
        self._instances: dict[str, ComponentInstance] = {}
        self._claims: dict[tuple[str, str], str] = {}  # (routed name, target) -> instance
        # Indexes for dependency resolution, kept incrementally so adding a tenant is O(1).
        self._by_factory: dict[str, dict[str, None]] = {}
        self._by_contract: dict[str, dict[str, None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._policies: dict[str, Policy] = {}
        self._route_watchers: list[Callable[[], None]] = []
        self._isolation_hosts: dict[str, IsolationHost] = {}
        self._hosts_creating: dict[str, asyncio.Future[IsolationHost]] = {}
        self._retiring: set[str] = set()  # default instances being retired by a hot_add
        self._routed_names: frozenset[str] | None = None  # of the factories; see is_routed_name
        if policies is not None:
            if not isinstance(policies, Mapping):
                raise PolicyError(f"Kernel(policies=...) maps component names to policies, "
                                  f"like {{'reporting': {{'invoke_allow': ['billing.*']}}}}; "
                                  f"got {policies!r}.")
            for component_name, policy in policies.items():
                self.set_policy(component_name, policy)

    def __repr__(self) -> str:
        return (f"<Kernel {self.name!r} {self.state}: {len(self._factories)} factories, "
                f"{len(self._instances)} instances>")

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the kernel booted on, while it is still open."""
        loop = self._loop
        return None if loop is None or loop.is_closed() else loop

    # -- discovery and instantiation ---------------------------------------------------

    def discover(self, classes: Iterable[Any] | type | types.ModuleType) -> list[str]:
        """Register component classes (or every component class in a module) as factories.

        Re-discovering a factory name with a new class (a re-run notebook cell) replaces it
        while it has no instances. Returns the factory names.
        """
        items = [classes] if isinstance(classes, (type, types.ModuleType)) else list(classes)
        found: list[ComponentMeta] = []
        for item in items:
            if isinstance(item, types.ModuleType):
                found.extend(m for v in vars(item).values()
                             if isinstance(v, type) and (m := meta_of(v)) is not None)
                continue
            meta = meta_of(item) if isinstance(item, type) else None
            if meta is None:
                raise UnknownFactoryError(
                    f"Cannot discover {item!r}: expected a class decorated with "
                    "@component('name') or a module containing such classes."
                )
            found.append(meta)
        for meta in found:
            current = self._factories.get(meta.factory_name)
            if current is not None and current.cls is not meta.cls and any(
                i.meta is current for i in self._instances.values()
            ):
                raise KernelStateError(
                    f"Factory {meta.factory_name!r} is already discovered as "
                    f"{current.cls.__qualname__} and has instances; remove them first."
                )
        for meta in found:
            self._factories[meta.factory_name] = meta
        self._routed_names = None
        return [m.factory_name for m in found]

    def instantiate(self, factory: str | type, name: str | None = None,
                    properties: Mapping[str, Any] | None = None, *,
                    isolation: str = "inline") -> ComponentInstance:
        """Create an instance of ``factory``; before boot it waits, after boot it activates.

        Without ``name`` it configures the factory's singleton (named after the factory),
        e.g. ``instantiate("config", properties={"defaults": {...}})``. An async ``activate``
        after boot needs ``await kernel.hot_add(...)`` instead. ``isolation="process"`` hosts
        the instance in a worker process of its own (``signalpy_lab.remote.process``).
        """
        inst = self._new_instance(factory, name, properties, isolation)
        if self.state is KernelState.RUNNING:
            if inst.isolation != "inline":
                raise KernelStateError(
                    f"Starting a worker takes a moment; after boot use `await kernel.hot_add("
                    f"{inst.factory!r}, {inst.name!r}, ..., isolation={inst.isolation!r})`."
                )
            if inst.meta.activate is not None and inst.meta.activate.is_async:
                raise KernelStateError(
                    f"{inst.meta.factory_name!r} has an async activate; after boot use "
                    f"`await kernel.hot_add({inst.meta.factory_name!r}, {inst.name!r}, ...)`."
                )
            placeholder = self._placeholder_for(inst)
            self._resolve_dependencies(inst)
            self._commit_instance(inst)
            _run_sync(self._activate(inst, raise_errors=True))
            if placeholder is not None:
                _run_sync(self._retire(placeholder, inst))
        else:
            self._commit_instance(inst)
        return inst

    def _new_instance(self, factory: str | type, name: str | None,
                      properties: Mapping[str, Any] | None,
                      isolation: str = "inline") -> ComponentInstance:
        """Validate everything about a new instance without changing any state."""
        if isolation != "inline" and isolation not in self._isolation_hosts \
                and isolation not in ISOLATION_PLUGINS:
            raise InvalidPropertiesError(
                f"isolation must be 'inline' or one of "
                f"{', '.join(map(repr, sorted({*ISOLATION_PLUGINS, *self._isolation_hosts})))}"
                f", got {isolation!r}."
            )
        if isolation in ISOLATION_PLUGINS and isolation not in self._isolation_hosts:
            # Load the plugin now, so a missing extra (MissingExtraError, one line naming
            # it) refuses the instance here instead of leaving it failed at activation.
            import importlib

            importlib.import_module(ISOLATION_PLUGINS[isolation])
        if self.state in (KernelState.STOPPING, KernelState.STOPPED):
            raise KernelStateError(f"Kernel {self.name!r} is {self.state}; create a new Kernel.")
        if isinstance(factory, type):
            meta = meta_of(factory)
            if meta is None:
                raise UnknownFactoryError(f"{factory.__qualname__} is not a component class.")
            if self._factories.get(meta.factory_name) is not meta:
                self.discover([factory])
            factory = meta.factory_name
        if not isinstance(factory, str):
            raise UnknownFactoryError(f"A factory is a component name, got {factory!r}.")
        meta = self._factories.get(factory)
        if meta is None:
            raise UnknownFactoryError(
                f"Unknown factory {factory!r}. {choices(factory, self._factories)}"
            )
        name = factory if name is None else name
        if not isinstance(name, str) or not _INSTANCE_NAME.match(name):
            raise InvalidNameError(
                f"An instance name is letters, digits, '-' and '_' (like 'tenant-db-acme'), "
                f"got {name!r}."
            )
        if name in self._instances:
            existing = self._instances[name]
            raise DuplicateInstanceError(
                f"Instance {name!r} already exists (factory {existing.factory!r}, "
                f"{existing.state}); pick another name or hot_remove it first."
            )
        if properties is None:
            properties = {}
        if not isinstance(properties, Mapping) or not all(isinstance(k, str) for k in properties):
            raise InvalidPropertiesError(
                f"properties must be a mapping with string keys like {{'target': 'acme'}}, "
                f"got {short_repr(properties)}."
            )
        target = properties.get("target")
        if target is not None and (not isinstance(target, str) or not _INSTANCE_NAME.match(target)):
            raise InvalidPropertiesError(
                f"The 'target' property must be a name like 'acme' (letters, digits, '-', '_'), "
                f"got {target!r}."
            )
        inst = ComponentInstance(name=name, meta=meta, properties=thaw(properties),
                                 isolation=isolation)
        check_provides(inst, [o for o in self._instances.values()  # a placeholder retires
                              if not (o.default and o.factory == inst.factory)])
        check_cross_tenant_instance(inst)
        for routed, _handler in self._route_pairs(inst):
            owner = self._claims.get((routed, inst.target or ""))
            if owner is not None:
                raise RouteConflictError(
                    f"Target {inst.target!r} of {routed!r} is already served by instance "
                    f"{owner!r}; hot_remove it first (routes are never taken over silently)."
                )
        return inst

    def _commit_instance(self, inst: ComponentInstance) -> None:
        self._instances[inst.name] = inst
        self._by_factory.setdefault(inst.factory, {})[inst.name] = None
        for contract in inst.meta.provides:
            self._by_contract.setdefault(contract, {})[inst.name] = None
        for routed, _handler in self._route_pairs(inst):
            self._claims[(routed, inst.target or "")] = inst.name
        if self.events.active:
            self.events.emit(InstanceAdded(name=inst.name, factory=inst.factory,
                                           target=inst.target, command=current_command()))

    @staticmethod
    def _route_pairs(inst: ComponentInstance) -> list[tuple[str, str]]:
        """(routed name, handler name) pairs of a targeted, non-default instance."""
        if inst.target is None or inst.name == inst.factory:
            return []
        prefixes = dict.fromkeys((inst.factory, *inst.meta.provides))
        return [(f"{p}.{r.name}", f"{inst.name}.{r.name}")
                for p in prefixes for r in inst.meta.runnables]

    # -- route watchers (what a transport advertises) ----------------------------------

    def watch_routes(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` whenever handlers or target routes come or go; returns unwatch.

        Cheaper than an event listener (which turns on the engine's hooks): transports use
        it to re-advertise what this kernel serves.
        """
        self._route_watchers.append(callback)

        def unwatch() -> None:
            if callback in self._route_watchers:
                self._route_watchers.remove(callback)

        return unwatch

    def _routes_changed(self) -> None:
        for callback in list(self._route_watchers):
            try:
                callback()
            except Exception:
                _log.exception("route watcher %r failed", callback)

    # -- policies (least privilege on the bus) -----------------------------------------

    def guard(self, instance: str, guard: str) -> None:
        """Put handler ``guard`` in front of every handler of ``instance`` (host only).

        Every call that resolves to ``instance`` (its exact names, every routed name and
        target that reaches it) first calls ``guard`` with ``{"handler", "target"}``; if the
        guard raises, the call fails with that error and the handler does not run. Calls
        the guarding instance makes itself pass. A quota in front of a tenant's database:

        >>> kernel.guard("tenant-db-acme", "quota-acme.check")          # doctest: +SKIP

        Both instances must exist; removing either removes the guard.
        """
        self._instance(instance)  # UnknownInstanceError naming the valid ones
        owner = guard.rpartition(".")[0] if isinstance(guard, str) else ""
        if owner not in self._instances or guard not in self.bus.names():
            known = [n for n in self.bus.names() if not self.is_routed_name(n)]
            raise UnknownHandlerError(
                f"A guard is an exact handler name like 'quota-acme.check', got {guard!r}. "
                f"{choices(str(guard), known)}")
        if owner == instance:
            raise InvalidPropertiesError(
                f"{guard!r} cannot guard its own instance {instance!r}: its calls pass it.")
        self.bus.guard(instance, guard)

    def unguard(self, instance: str, guard: str | None = None) -> list[str]:
        """Remove ``guard`` (every guard if None) from ``instance``; returns those removed."""
        return self.bus.unguard(instance, guard)

    def set_policy(self, name: str, policy: Policy | Mapping[str, Any] | None = None, *,
                   invoke_allow: Iterable[str] | None = None,
                   publish_allow: Iterable[str] | None = None,
                   audit: bool | None = None) -> Policy:
        """Grant component ``name`` (an instance or a factory) what it did not declare.

        >>> kernel.set_policy("reporting", invoke_allow=["billing.*"])
        >>> kernel.set_policy("tenant-db", {"publish_allow": ["tenant.*"]})   # the original's form

        Takes effect at once, for calls already wired; replaces an earlier policy of ``name``.
        See ``kernel.policy`` for the rules.
        """
        if not isinstance(name, str) or not _INSTANCE_NAME.match(name):
            raise PolicyError(f"A policy is set for a component name like 'reporting' (an "
                              f"instance or factory), got {name!r}.")
        fields = {k: v for k, v in (("invoke_allow", invoke_allow),
                                    ("publish_allow", publish_allow), ("audit", audit))
                  if v is not None}
        if policy is not None and fields:
            raise PolicyError("Give set_policy either a policy or keyword fields, not both.")
        if policy is None and not fields:
            raise PolicyError(f"set_policy({name!r}) needs invoke_allow=[...], "
                              f"publish_allow=[...] or audit=...; to drop a policy use "
                              f"kernel.remove_policy({name!r}).")
        resolved = Policy.coerce(policy if policy is not None else fields)
        self._policies[name] = resolved
        if self.events.active:
            self.events.emit(PolicyChanged(name=name, policy=resolved.to_dict()))
        return resolved

    def remove_policy(self, name: str) -> bool:
        """Drop ``name``'s policy (it keeps only what it declared); whether there was one."""
        removed = self._policies.pop(name, None) is not None
        if removed and self.events.active:
            self.events.emit(PolicyChanged(name=name, policy=None))
        return removed

    def policies(self) -> dict[str, Policy]:
        """Every policy set, by the component name it was set for."""
        return dict(self._policies)

    def policy_for(self, instance: str) -> Policy:
        """The policy that applies to ``instance``: its own, else its factory's, else none."""
        inst = self._instance(instance)
        return self._policy_of(inst.name, inst.factory)

    def _policy_of(self, name: str, factory: str) -> Policy:
        policies = self._policies
        return policies.get(name) or policies.get(factory) or DEFAULT_POLICY

    def _authorize_call(self, caller: Consumer, requested: str, handler: Handler | None) -> None:
        """Raise ``UndeclaredCallError`` unless ``caller`` may call ``handler`` (see policy.py).

        ``handler`` is None for a call that will go to the transports (known by name only).
        """
        if handler is not None and handler.instance == caller.name:
            return
        meta = self._factories.get(caller.factory)
        declared = (*meta.depends, *meta.requires.values()) if meta is not None else ()
        policy = self._policy_of(caller.name, caller.factory)
        if handler is not None:
            served = self._instances.get(handler.instance)
            contracts = served.meta.provides if served is not None else ()
            if served is not None and served.meta.cross_tenant and caller.target is not None:
                # Declaring it would be granting itself every tenant's data: only the host.
                ok = policy.allows_invoke(requested, handler.name)
                if policy.audit:
                    _audit.info('{"action": "invoke", "caller": %r, "handler": %r, '
                                '"allowed": %s}', caller.name, handler.name,
                                "true" if ok else "false")
                if not ok:
                    raise cross_tenant_refusal(caller.name, caller.target, requested,
                                               served.factory)
                return
            ok = (handler.instance in declared or handler.factory in declared
                  or any(c in declared for c in contracts)
                  or policy.allows_invoke(requested, handler.name))
        else:  # by name only: remote, or one of this kernel's process-isolated instances
            prefix = requested.rpartition(".")[0]
            isolated = self._instances.get(prefix)
            ok = (prefix in declared or policy.allows_invoke(requested) or (
                isolated is not None and (isolated.factory in declared or any(
                    c in declared for c in isolated.meta.provides))))
        if policy.audit:
            _audit.info('{"action": "invoke", "caller": %r, "handler": %r, "allowed": %s}',
                        caller.name, handler.name if handler is not None else requested,
                        "true" if ok else "false")
        if ok:
            return
        owner = handler.factory if handler is not None else requested.rpartition(".")[0]
        via = f" (handler {handler.name!r})" if handler is not None and handler.name != requested \
            else ""
        raise UndeclaredCallError(
            f"Instance {caller.name!r} may not call {requested!r}{via}: it did not declare "
            f"{owner!r} in @component(depends=[...]) or @requires(...), and no policy grants "
            f"it. Declare it, or grant it from the host: "
            f"kernel.set_policy({caller.name!r}, invoke_allow=[{requested!r}])."
        )

    def _authorize_publish(self, caller: Consumer, topic: str) -> None:
        policy = self._policy_of(caller.name, caller.factory)
        ok = policy.allows_publish(topic) if isinstance(topic, str) else True
        if policy.audit:
            _audit.info('{"action": "publish", "caller": %r, "topic": %r, "allowed": %s}',
                        caller.name, topic, "true" if ok else "false")
        if not ok:
            raise PublishDeniedError(
                f"Instance {caller.name!r} may not publish {topic!r}: its policy allows "
                f"{', '.join(map(repr, policy.publish_allow)) or 'no topics'}. Grant it from the "
                f"host: kernel.set_policy({caller.name!r}, publish_allow=[..., {topic!r}])."
            )

    # -- boot and shutdown -------------------------------------------------------------

    @on_home_loop
    async def boot(self) -> None:
        """Give instance-less factories a default instance, then activate all in order.

        Missing or cyclic dependencies raise before anything is activated.
        """
        if self.state is not KernelState.CREATED:
            raise KernelStateError(f"Kernel {self.name!r} is already {self.state}; boot once.")
        instantiated = {i.factory for i in self._instances.values()}
        defaults = [ComponentInstance(name=f, meta=m, properties={}, default=True)
                    for f, m in self._factories.items()
                    if f not in instantiated and f not in self._instances]
        for inst in defaults:
            self._commit_instance(inst)
        try:
            for inst in self._instances.values():
                self._resolve_dependencies(inst)
            order = activation_order(self._instances)
        except Exception:
            for inst in defaults:  # a failed boot changes nothing
                self._forget(inst)
            raise
        self._loop = asyncio.get_running_loop()
        self.state = KernelState.BOOTING
        for name in order:
            await self._activate(self._instances[name], raise_errors=False)
        self.state = KernelState.RUNNING

    def _resolve_dependencies(self, inst: ComponentInstance) -> None:
        """Fill ``inst.depends_on`` from the indexes (raises ``DependencyError``)."""
        inst.depends_on = dependencies_of(
            inst, self._by_factory, self._by_contract, self._instances
        )

    def _satisfied_without(self, inst: ComponentInstance, gone: str) -> bool:
        """Whether ``inst``'s declarations still find a provider once ``gone`` is removed.

        A dependency on a factory or contract is satisfied by any one of its instances, so
        offboarding one tenant's database does not need the admin that depends on all of them
        removed first; a dependency on that very instance, or on its last provider, is not.
        """
        meta = inst.meta
        keys = {*meta.depends, *meta.requires.values()}
        by_factory = {k: [n for n in v if n != gone] for k, v in self._by_factory.items()
                      if k in keys}
        by_contract = {k: [n for n in v if n != gone] for k, v in self._by_contract.items()
                       if k in keys}
        instances = {n: i for n, i in self._instances.items() if n != gone}
        if any(k in by_factory and not by_factory[k] for k in meta.depends) or \
                gone in meta.depends:
            return False
        try:
            dependencies_of(inst, by_factory, by_contract, instances)
        except DependencyError:
            return False
        return True

    def _forget(self, inst: ComponentInstance) -> None:
        """Drop every trace of ``inst`` from the kernel's tables."""
        self._instances.pop(inst.name, None)
        self._by_factory.get(inst.factory, {}).pop(inst.name, None)
        for contract in inst.meta.provides:
            self._by_contract.get(contract, {}).pop(inst.name, None)
        for routed, _handler in self._route_pairs(inst):
            if self._claims.get((routed, inst.target or "")) == inst.name:
                del self._claims[(routed, inst.target or "")]
        self.bus.drop_guards_of(inst.name)

    @on_home_loop
    async def shutdown(self) -> None:
        """Deactivate every active instance in reverse activation order."""
        if self.state in (KernelState.STOPPING, KernelState.STOPPED):
            return
        self.state = KernelState.STOPPING
        active = [i for i in self._instances.values() if i.state is InstanceState.ACTIVE]
        for inst in reversed(self._activation_log(active)):
            await self._deactivate(inst, InstanceState.STOPPED, drain=False)
        for host in list(self._isolation_hosts.values()):
            try:
                await host.close()
            except Exception as exc:
                _log.error("isolation host %r failed to close: %s", host, exc)
        self.state = KernelState.STOPPED

    def _activation_log(self, active: list[ComponentInstance]) -> list[ComponentInstance]:
        """``active`` in an order where dependencies come first."""
        order = activation_order({i.name: i for i in active})
        by_name = {i.name: i for i in active}
        return [by_name[n] for n in order]

    @on_home_loop
    async def hot_add(self, factory_or_class: str | type, name: str | None = None,
                      properties: Mapping[str, Any] | None = None, *,
                      isolation: str = "inline") -> ComponentInstance:
        """Add an instance (discovering a class if needed) and activate it if booted.

        Raises the activation error if activate fails (the instance stays, marked failed).
        ``isolation="process"`` starts it in a worker process of its own.
        """
        if isinstance(factory_or_class, type) and meta_of(factory_or_class) is not None:
            self.discover([factory_or_class])
        inst = self._new_instance(factory_or_class, name, properties, isolation)
        placeholder = self._placeholder_for(inst)
        if self.state is KernelState.RUNNING:
            self._resolve_dependencies(inst)
        self._commit_instance(inst)
        if self.state is KernelState.RUNNING:
            await self._activate(inst, raise_errors=True)
        if placeholder is not None:  # after: what relied on it now has the tenant's
            await self._retire(placeholder, inst)
        return inst

    @on_home_loop
    async def hot_remove(self, name: str) -> None:
        """Deactivate ``name``, drop its handlers, routes and reactive nodes; others untouched."""
        await self._remove(name)

    def _placeholder_for(self, inst: ComponentInstance) -> ComponentInstance | None:
        """The default instance that boot gave ``inst``'s factory, when ``inst`` is a tenant
        instance of it: the factory serves tenants now, so the untargeted placeholder goes
        (it would answer what no tenant asked and hold the factory's contracts)."""
        if inst.target is None:
            return None
        default = self._instances.get(inst.factory)
        return default if default is not None and default.default else None

    async def _retire(self, placeholder: ComponentInstance, inst: ComponentInstance) -> None:
        name = placeholder.name
        if self._instances.get(name) is not placeholder or name in self._retiring:
            return  # a concurrent hot_add of the same factory retires (or retired) it
        self._retiring.add(name)
        try:
            await self._remove(name)
        except DependencyError as exc:  # still relied on: it stays, and says why
            _log.warning("default instance %r of %r kept although %r serves a tenant: %s",
                         name, inst.factory, inst.name, exc)
            return
        finally:
            self._retiring.discard(name)
        _log.info("default instance %r retired: factory %r serves tenants now (%r)",
                  placeholder.name, inst.factory, inst.name)

    async def _remove(self, name: str) -> None:
        inst = self._instances.get(name) if isinstance(name, str) else None
        if inst is None:
            raise UnknownInstanceError(
                f"No instance {name!r} to remove. {choices(str(name), self._instances)}"
            )
        relying = [i for i in self._instances.values()
                   if name in i.depends_on and i.state is InstanceState.ACTIVE]
        dependents = sorted(i.name for i in relying if not self._satisfied_without(i, name))
        if dependents:
            raise DependencyError(
                f"Cannot remove {name!r}: active instances depend on it "
                f"({', '.join(map(repr, dependents[:8]))}); remove them first."
            )
        if inst.state is InstanceState.ACTIVE:
            await self._deactivate(inst, InstanceState.REMOVED, drain=True)
        else:
            self._set_state(inst, InstanceState.REMOVED)
        self._forget(inst)
        for other in relying:  # another instance still provides what they declared
            other.depends_on = tuple(d for d in other.depends_on if d != name)
        inst.obj = None
        inst.runtime = None
        inst.scope = None
        if self.events.active:
            self.events.emit(InstanceRemoved(name=name, command=current_command()))

    def invoke(self, handler: str, params: Any = None, *,
               timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """Same as ``kernel.bus.invoke`` (awaitable from any loop)."""
        return self.bus.invoke(handler, params, timeout=timeout)

    # -- activation internals ----------------------------------------------------------

    def _set_state(self, inst: ComponentInstance, state: InstanceState,
                   error: BaseException | None = None) -> None:
        old = inst.state
        inst.state = state
        if error is not None:
            inst.error = error
        if self.events.active and old is not state:
            self.events.emit(InstanceStateChanged(
                name=inst.name, old=old.value, new=state.value,
                error=f"{type(error).__name__}: {error}" if error is not None else None,
                command=current_command(),
            ))

    async def _activate(self, inst: ComponentInstance, *, raise_errors: bool) -> None:
        meta = inst.meta
        try:
            for dep in inst.depends_on:
                dep_inst = self._instances.get(dep)
                if dep_inst is None or dep_inst.state is not InstanceState.ACTIVE:
                    state = dep_inst.state if dep_inst is not None else "missing"
                    raise DependencyError(
                        f"{inst.name!r} cannot start: its dependency {dep!r} is {state}."
                    )
            self._set_state(inst, InstanceState.ACTIVATING)
            inst.error = None
            if inst.isolation != "inline":
                host = await self._isolation_host(inst.isolation)
                await host.start(inst)
                self._set_state(inst, InstanceState.ACTIVE)
                if self._route_watchers:
                    self._routes_changed()
                return
            effects = self._prepare(inst)
            with inst.scope.active():  # reactive state made in activate belongs to the instance
                await _call_hook(meta.activate, inst)
            self._register(inst)
            for node in effects:
                node.start()
            self._set_state(inst, InstanceState.ACTIVE)
        except Exception as exc:
            self._rollback(inst)
            self._set_state(inst, InstanceState.FAILED, exc)
            _log.error("instance %r failed to activate: %s: %s", inst.name,
                       type(exc).__name__, exc)
            if raise_errors:
                raise

    def _prepare(self, inst: ComponentInstance) -> list[Effect]:
        """Create the object, its Runtime, injected services, computeds and (unstarted) effects."""
        meta = inst.meta
        scope = Scope(inst.name, inst.target, hub=self.events,
                      on_effect_error=lambda node, error: self._effect_failed(inst, node, error))
        inst.scope = scope
        consumer = Consumer(inst.name, inst.factory, inst.target)
        runtime = issue_runtime(consumer, inst.properties, self.registry,
                                issue_scoped_bus(self.bus, consumer))
        inst.runtime = runtime
        obj = meta.cls.__new__(meta.cls)
        obj.rt = runtime
        inst.obj = obj
        with scope.active():
            obj.__init__()
            for attr, contract in meta.requires.items():
                setattr(obj, attr, runtime.service(contract))
            for attr in meta.computeds:
                descriptor = inspect.getattr_static(obj, attr)
                if isinstance(descriptor, ComputedMethod):
                    descriptor.bind(obj, f"{inst.name}.{attr}")
            return [Effect(getattr(obj, attr), label=f"{inst.name}.{attr}", defer=True)
                    for attr in meta.effects]

    def _register(self, inst: ComponentInstance) -> None:
        """Publish the instance: services, handlers, target routes, event subscriptions."""
        obj, meta, target = inst.obj, inst.meta, inst.target
        hidden = frozenset(hook.method for hook in (meta.activate, meta.deactivate) if hook)
        for contract in meta.provides:
            self.registry.register(contract, inst.name, obj, target, hidden)
        for spec in meta.runnables:
            handler = Handler(
                name=f"{inst.name}.{spec.name}", instance=inst.name, factory=inst.factory,
                runnable=spec.name, target=target, fn=getattr(obj, spec.method),
                model=spec.params, is_async=spec.is_async, description=spec.description,
            )
            self.bus.register(handler)
            inst.handlers.append(handler.name)
        for routed, handler_name in self._route_pairs(inst):
            self.bus.register_target_route(routed, target or "", handler_name)
            inst.routes.append((routed, target or ""))
        for pattern, method in meta.subscriptions:
            self.bus.subscribe(pattern, getattr(obj, method), tenant=target, owner=inst.name)
        if self._route_watchers:
            self._routes_changed()

    def _unroute(self, inst: ComponentInstance) -> list[Handler]:
        """Stop new calls reaching ``inst``; returns its handlers (in-flight calls keep them)."""
        handlers = [h for h in map(self.bus.handler, inst.handlers) if h is not None]
        for routed, target in inst.routes:
            if self.bus.route_owner(routed, target) == f"{inst.name}.{routed.rsplit('.', 1)[1]}":
                self.bus.unregister_target_route(routed, target)
        inst.routes.clear()
        for name in inst.handlers:
            self.bus.unregister(name)
        inst.handlers.clear()
        if self._route_watchers:
            self._routes_changed()
        return handlers

    def _unregister(self, inst: ComponentInstance) -> None:
        self._unroute(inst)
        self.bus.unsubscribe_owner(inst.name)
        self.registry.unregister_instance(inst.name)

    def _rollback(self, inst: ComponentInstance) -> None:
        self._unregister(inst)
        if inst.scope is not None:
            inst.scope.dispose()
        inst.obj = None

    async def _deactivate(self, inst: ComponentInstance, final: InstanceState, *,
                          drain: bool) -> None:
        self._set_state(inst, InstanceState.DEACTIVATING)
        if inst.isolation != "inline":
            hook_error: BaseException | None = None
            try:
                await (await self._isolation_host(inst.isolation)).stop(inst)
            except Exception as exc:
                hook_error = exc
                _log.error("worker of %r failed to stop: %s", inst.name, exc)
            inst.pid = None
            self._set_state(inst, final, hook_error)
            if self._route_watchers:
                self._routes_changed()
            return
        handlers = self._unroute(inst)
        if drain:
            await _drain(handlers, DRAIN_SECONDS)
        hook_error: BaseException | None = None
        try:
            await _call_hook(inst.meta.deactivate, inst)
        except Exception as exc:
            hook_error = exc
            _log.error("instance %r failed to deactivate: %s: %s", inst.name,
                       type(exc).__name__, exc)
        self._unregister(inst)
        if inst.scope is not None:
            inst.scope.dispose()
        self._set_state(inst, final, hook_error)

    # -- isolation hosts (instances in other processes) --------------------------------

    def set_isolation_host(self, kind: str, host: IsolationHost) -> None:
        """Use ``host`` for ``instantiate(..., isolation=kind)`` (instead of the default one)."""
        if not isinstance(host, IsolationHost):
            raise TypeError(f"An isolation host has async start/stop/close methods, got {host!r}")
        self._isolation_hosts[kind] = host

    def isolation_host(self, kind: str) -> IsolationHost | None:
        """The host running ``kind``-isolated instances, once one was needed."""
        return self._isolation_hosts.get(kind)

    async def _isolation_host(self, kind: str) -> IsolationHost:
        """The host for ``kind``, created once: concurrent first activations (a gather of
        ``hot_add``s) wait for the same creation instead of each starting a server."""
        host = self._isolation_hosts.get(kind)
        if host is not None:
            return host
        creating = self._hosts_creating.get(kind)
        if creating is None:
            creating = asyncio.ensure_future(self._create_isolation_host(kind))
            self._hosts_creating[kind] = creating
            creating.add_done_callback(lambda _: self._hosts_creating.pop(kind, None))
        return await asyncio.shield(creating)  # one waiter cancelled never cancels it

    async def _create_isolation_host(self, kind: str) -> IsolationHost:
        import importlib

        module = importlib.import_module(ISOLATION_PLUGINS[kind])
        host = await module.create_host(self)
        chosen = self._isolation_hosts.setdefault(kind, host)
        if chosen is not host:  # set_isolation_host() won meanwhile: ours is not needed
            await host.close()
        return chosen

    def instance_failed(self, name: str, error: BaseException) -> None:
        """A host reports that ``name`` died where it ran: it is failed, calls fail at once."""
        inst = self._instances.get(name)
        if inst is not None and inst.state is InstanceState.ACTIVE:
            inst.pid = None
            self._set_state(inst, InstanceState.FAILED, error)
            _log.error("instance %r failed: %s", name, error)

    @on_home_loop
    async def restart(self, name: str) -> ComponentInstance:
        """Bring ``name`` back: a failed or active instance is deactivated and activated again.

        A process-isolated instance gets a new worker with its config view as it is now.
        Other instances never notice.
        """
        inst = self._instance(name)
        if self.state is not KernelState.RUNNING:
            raise KernelStateError(f"Kernel {self.name!r} is {self.state}; restart needs it "
                                   f"running.")
        if inst.state is InstanceState.ACTIVE:
            await self._deactivate(inst, InstanceState.STOPPED, drain=True)
        elif inst.isolation != "inline" and inst.state is InstanceState.FAILED:
            try:
                await (await self._isolation_host(inst.isolation)).stop(inst)
            except Exception as exc:
                _log.warning("cleaning up the dead worker of %r: %s", name, exc)
        self._resolve_dependencies(inst)
        await self._activate(inst, raise_errors=True)
        return inst

    def _effect_failed(self, inst: ComponentInstance, node: DerivedNode,
                       error: BaseException) -> None:
        inst.effect_errors += 1
        inst.last_effect_error = f"{node.describe()}: {type(error).__name__}: {error}"
        _log.error("effect %r of %r failed: %s: %s", node.describe(), inst.name,
                   type(error).__name__, error)

    # -- introspection -----------------------------------------------------------------

    def is_routed_name(self, name: str) -> bool:
        """Whether ``name`` is ``<factory or contract>.<runnable>`` of a discovered factory.

        The bus asks on every call that names a target where no local route serves it, so
        the names are kept in a set, rebuilt after ``discover``.
        """
        names = self._routed_names
        if names is None:
            names = self._routed_names = frozenset(
                f"{prefix}.{r.name}" for meta in self._factories.values()
                for prefix in (meta.factory_name, *meta.provides) for r in meta.runnables)
        return name in names

    def component(self, name: str) -> Any:
        """The live component object of instance ``name`` (for direct calls and tests)."""
        inst = self._instance(name)
        if inst.obj is None:
            raise UnknownInstanceError(f"Instance {name!r} is {inst.state}; it has no object.")
        return inst.obj

    def instance(self, name: str) -> ComponentInstance:
        """The kernel's record of instance ``name``."""
        return self._instance(name)

    def _instance(self, name: str) -> ComponentInstance:
        inst = self._instances.get(name)
        if inst is None:
            raise UnknownInstanceError(f"No instance {name!r}. {choices(name, self._instances)}")
        return inst

    def instances(self) -> list[InstanceInfo]:
        """Every instance with its factory, target, state, error, handlers and policy.

        An isolated instance also carries the state of the transport that reaches it (its
        host's ``transport_state``), so a dead server shows here, not only in the logs, and
        what confines its worker (its host's ``sandbox_state``: ``landlock v7``, or ``none
        (why)``), so an unconfined worker is never silent.
        """
        policies = self._policies
        return [InstanceInfo.of(i, policies.get(i.name) or policies.get(i.factory),
                                self._transport_state(i), self._sandbox_state(i))
                for i in self._instances.values()]

    def _sandbox_state(self, inst: ComponentInstance) -> str | None:
        if inst.isolation == "inline" or inst.state is not InstanceState.ACTIVE:
            return None
        host = self._isolation_hosts.get(inst.isolation)
        state = getattr(host, "sandbox_state", None)
        return state(inst.name) if callable(state) else None

    def _transport_state(self, inst: ComponentInstance) -> str | None:
        if inst.isolation == "inline" or inst.state is not InstanceState.ACTIVE:
            return None  # nothing to reach: a failed worker's own error says why
        host = self._isolation_hosts.get(inst.isolation)
        state = getattr(host, "transport_state", None)
        return state() if callable(state) else None

    def transports(self) -> list[TransportInfo]:
        """Each transport of the bus with its state (``connected``, ``reconnecting``, ...)."""
        rows = []
        for transport in self.bus._transports:
            status = getattr(transport, "status", None)
            rows.append(status() if callable(status) else
                        TransportInfo(name=transport.name, state="connected"))
        return rows

    def factories(self) -> list[FactoryInfo]:
        """Every discovered factory with what it provides, requires and exposes."""
        by_factory: dict[str, list[str]] = {}
        for inst in self._instances.values():
            by_factory.setdefault(inst.factory, []).append(inst.name)
        return [FactoryInfo.of(m, by_factory.get(n, [])) for n, m in self._factories.items()]

    def routes(self) -> list[RouteInfo]:
        """One row per (routed name, target): which instance handler serves it."""
        handlers = self.bus.handlers()
        rows = []
        for routed, targets in self.bus.routes().items():
            for target, handler_name in targets.items():
                rows.append(RouteInfo.of(routed, target, handlers[handler_name],
                                         self._instances.get(handlers[handler_name].instance)))
        for inst in self._instances.values():
            if inst.isolation != "inline" and inst.state is not InstanceState.PENDING:
                rows.extend(RouteInfo.remote(routed, inst.target or "", handler, inst)
                            for routed, handler in self._route_pairs(inst))
        return sorted(rows, key=lambda r: (r.route, r.target))

    def graph(self, *, tenant: str | None = None, instance: str | None = None) -> GraphSnapshot:
        """A JSON-able snapshot of the reactive graph (nodes with owner and tenant, edges)."""
        scopes = [i.scope for i in self._instances.values() if i.scope is not None]
        remote = [i.remote_graph for i in self._instances.values()
                  if i.remote_graph is not None and i.state is InstanceState.ACTIVE]
        return snapshot_graph(scopes, tenant=tenant, instance=instance, remote=remote)

    def graph_nodes(self, uids: Iterable[int]) -> list[GraphNode]:
        """The current description of the reactive nodes ``uids`` (those that still exist).

        What an incremental view refreshes after events named these nodes, instead of a whole
        ``graph()``.
        """
        scopes = [i.scope for i in self._instances.values() if i.scope is not None]
        remote = [i.remote_graph for i in self._instances.values()
                  if i.remote_graph is not None and i.state is InstanceState.ACTIVE]
        return describe_nodes(scopes, set(uids), remote=remote)


async def _call_hook(spec: LifecycleSpec | None, inst: ComponentInstance) -> None:
    if spec is None:
        return
    method = getattr(inst.obj, spec.method)
    result = method(inst.runtime) if spec.takes_rt else method()
    if inspect.isawaitable(result):
        await result


async def _drain(handlers: list[Handler], seconds: float) -> None:
    """Wait (bounded) until no call is running in any of ``handlers``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while any(h.inflight for h in handlers):
        if asyncio.get_running_loop().time() >= deadline:
            _log.warning("in-flight calls still running after %.1fs; deactivating anyway",
                         seconds)
            return
        await asyncio.sleep(0.005)


def _run_sync(coroutine: Any) -> Any:
    """Drive a coroutine that never suspends (a sync activation) to completion."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value
    coroutine.close()
    raise KernelStateError("a synchronous activation tried to suspend; use `await hot_add`")
