"""Component decorators: they only record metadata; the kernel acts on it.

``@component``, ``@provides`` and ``@requires`` write into a per-class ``ComponentMeta`` kept in
the class's own ``__dict__`` (a subclass gets a copy, so decorating it never changes its
parent). Method decorators mark functions; ``@component`` collects the marks along the MRO.
Mistakes are reported at class definition, naming the culprit.

    @component("tenant-db", version="1.0", depends=["config"])
    @requires(config="IConfig")
    class TenantDatabase:
        @computed
        def db_url(self): ...

        @runnable("query", params=QueryParams)
        async def query(self, params): ...
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from pydantic import BaseModel

from ..errors import ComponentDefinitionError
from .reactive import Computed, current_scope
from .sealed import Sealed, seal, unseal

__all__ = [
    "ComponentMeta",
    "ComputedMethod",
    "ComputedValue",
    "NoParams",
    "RunnableSpec",
    "component",
    "computed",
    "effect",
    "lifecycle",
    "meta_of",
    "provides",
    "requires",
    "runnable",
    "subscribe",
]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

_META = "__signalpy_meta__"
_ROLE = "__signalpy_role__"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


@dataclass(frozen=True)
class RunnableSpec:
    """A bus handler declared with ``@runnable``."""

    name: str
    method: str
    params: type[BaseModel]
    description: str
    is_async: bool


@dataclass(frozen=True)
class LifecycleSpec:
    method: str
    takes_rt: bool
    is_async: bool


@dataclass
class ComponentMeta:
    """Everything the decorators said about one component class (its factory)."""

    cls: type
    name: str | None = None
    version: str = "0"
    depends: tuple[str, ...] = ()
    #: It answers cross-tenant questions: tenant instances call it only by the host's grant.
    cross_tenant: bool = False
    provides: tuple[str, ...] = ()
    requires: dict[str, str] = field(default_factory=dict)
    runnables: tuple[RunnableSpec, ...] = ()
    computeds: tuple[str, ...] = ()
    effects: tuple[str, ...] = ()
    subscriptions: tuple[tuple[str, str], ...] = ()  # (pattern, method)
    activate: LifecycleSpec | None = None
    deactivate: LifecycleSpec | None = None

    @property
    def factory_name(self) -> str:
        if self.name is None:
            raise ComponentDefinitionError(
                f"{self.cls.__qualname__} is not a component: decorate it with "
                "@component('name')."
            )
        return self.name


def meta_of(cls: type) -> ComponentMeta | None:
    """The class's own metadata (not inherited), or ``None`` if it is no component."""
    meta = cls.__dict__.get(_META)
    return meta if isinstance(meta, ComponentMeta) and meta.name is not None else None


def _own_meta(cls: type) -> ComponentMeta:
    """This class's metadata, creating it (as a copy of the nearest parent's) if needed."""
    if not isinstance(cls, type):
        raise ComponentDefinitionError(
            f"component decorators apply to classes, got {type(cls).__name__} {cls!r}"
        )
    own = cls.__dict__.get(_META)
    if isinstance(own, ComponentMeta):
        return own
    inherited = next(
        (k.__dict__[_META] for k in cls.__mro__[1:] if isinstance(k.__dict__.get(_META),
                                                                  ComponentMeta)),
        None,
    )
    meta = (replace(inherited, cls=cls, requires=dict(inherited.requires))
            if inherited is not None else ComponentMeta(cls=cls))
    setattr(cls, _META, meta)
    return meta


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ComponentDefinitionError(
            f"{what} must be a name of letters, digits, '-' and '_' (like 'tenant-db'), "
            f"got {name!r}"
        )
    return name


def component(name: str, *, version: str = "0",
              depends: list[str] | tuple[str, ...] = (),
              cross_tenant: bool = False) -> Callable[[C], C]:
    """Declare a class as a component factory called ``name``.

    ``depends`` names components (factories or instances) that must be active first.
    ``cross_tenant=True`` says it answers with every tenant's data (an admin's overview):
    tenant instances may call it only by the host's grant, not by declaring it (see
    ``kernel.rules``).
    """
    _check_name("component name", name)
    if isinstance(depends, str) or not all(isinstance(d, str) for d in depends):
        raise ComponentDefinitionError(
            f"@component({name!r}): depends must be a list of component names, got {depends!r}"
        )

    if not isinstance(cross_tenant, bool):
        raise ComponentDefinitionError(
            f"@component({name!r}): cross_tenant is True or False, got {cross_tenant!r}")

    def decorate(cls: C) -> C:
        meta = _own_meta(cls)
        meta.name = name
        meta.version = str(version)
        meta.depends = tuple(depends)
        meta.cross_tenant = cross_tenant
        _collect_methods(cls, meta)
        _check_constructible(cls)
        return cls

    return decorate


def provides(*contracts: str) -> Callable[[C], C]:
    """Declare the contracts (service names like ``'IConfig'``) this component provides.

    Target routes are also registered under each contract, so factories that provide the
    same contract share one routed name (see ``Bus``).
    """
    for contract in contracts:
        _check_name("contract", contract)

    def decorate(cls: C) -> C:
        meta = _own_meta(cls)
        meta.provides = tuple(dict.fromkeys((*meta.provides, *contracts)))
        return cls

    return decorate


def requires(**attr_to_contract: str) -> Callable[[C], C]:
    """Inject services: ``@requires(config="IConfig")`` sets ``self.config`` before activate.

    A provider that scopes per consumer (config, credentials, storage) injects the consumer's
    scoped handle, never the unscoped service.
    """
    for attr, contract in attr_to_contract.items():
        _check_name(f"@requires({attr}=...) contract", contract)

    def decorate(cls: C) -> C:
        meta = _own_meta(cls)
        meta.requires = {**meta.requires, **attr_to_contract}
        return cls

    return decorate


def _mark(fn: Any, role: tuple[Any, ...], decorator: str) -> None:
    target = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
    if not inspect.isfunction(target):
        raise ComponentDefinitionError(f"@{decorator} applies to methods, got {fn!r}")
    target.__dict__.setdefault(_ROLE, [])
    target.__dict__[_ROLE].append(role)


def _arity(fn: Callable[..., Any]) -> int:
    params = [p for p in inspect.signature(fn).parameters.values()
              if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params)


class NoParams(BaseModel):
    """The params model of a runnable declared with ``params=BaseModel`` (or none): no fields.

    Pydantic refuses to instantiate ``BaseModel`` itself, so it stands for "takes nothing";
    extra keys such as ``target`` are ignored.
    """


def runnable(name: str, *, params: type[BaseModel] = BaseModel,
             description: str = "") -> Callable[[F], F]:
    """Expose a method on the bus as ``<instance>.<name>``, validating params with pydantic.

    The method receives the validated model: ``async def query(self, params)``.
    """
    _check_name("runnable name", name)

    def decorate(fn: F) -> F:
        where = getattr(fn, "__qualname__", repr(fn))
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise ComponentDefinitionError(
                f"{where}: params must be a pydantic model class, got {params!r}"
            )
        if inspect.isfunction(fn) and _arity(fn) != 2:
            raise ComponentDefinitionError(
                f"{where}: a runnable takes (self, params), got {inspect.signature(fn)}"
            )
        model = NoParams if params is BaseModel else params
        _mark(fn, ("runnable", name, model, description or (fn.__doc__ or "").strip()),
              "runnable")
        return fn

    return decorate


class ComputedValue(Sealed):
    """What ``self.db_url`` is: a sealed handle on the instance's own ``Computed``.

    Call it (``self.db_url()``) for the up-to-date value. It exposes no graph internals: a
    ``Computed`` node links to its dependencies, their owners and, through them, to other
    tenants' config signals, so tenant code gets this handle, never the node.
    """

    __slots__ = ()

    def __call__(self) -> Any:
        return unseal(self, ComputedValue).get()

    def get(self) -> Any:
        """The up-to-date value (re-running the body only if an input changed)."""
        return unseal(self, ComputedValue).get()

    def peek(self) -> Any:
        """The up-to-date value without becoming a dependency of the caller."""
        return unseal(self, ComputedValue).peek()

    @property
    def stale(self) -> bool:
        """Whether the next read may run the body."""
        return unseal(self, ComputedValue).stale  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        node = unseal(self, ComputedValue)
        return f"<computed {node.describe()!r}>"


class ComputedMethod:
    """Descriptor made by ``@computed``: each instance gets its own ``Computed``.

    The kernel creates them at activation (owned by the instance's scope); outside a kernel
    the first access creates one lazily. ``self.db_url()`` reads it.
    """

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__
        fn.__dict__[_ROLE] = [("computed",)]

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def bind(self, instance: Any, label: str) -> ComputedValue:
        node: Computed[Any] = Computed(self.fn.__get__(instance), label=label)
        handle = seal(ComputedValue, node)
        instance.__dict__[self.name] = handle
        return handle

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        existing = instance.__dict__.get(self.name)
        if existing is not None:
            return existing
        label = f"{type(instance).__name__}.{self.name}"
        scope = current_scope()
        if scope is not None:
            label = f"{scope.name}.{self.name}"
        return self.bind(instance, label)


def computed(fn: Callable[[Any], Any]) -> ComputedMethod:
    """Make a method a per-instance, lazy, cached reactive value: call it as ``self.name()``."""
    if not inspect.isfunction(fn) or _arity(fn) != 1:
        raise ComponentDefinitionError(
            f"@computed applies to methods taking only self, got {fn!r}"
        )
    return ComputedMethod(fn)


def effect(fn: F) -> F:
    """Run a method after activation and again whenever the signals it read change."""
    if inspect.isfunction(fn) and _arity(fn) != 1:
        raise ComponentDefinitionError(
            f"{fn.__qualname__}: an @effect takes only self, got {inspect.signature(fn)}"
        )
    _mark(fn, ("effect",), "effect")
    return fn


def subscribe(event_pattern: str) -> Callable[[F], F]:
    """Call the method with each bus event whose topic matches the glob ``event_pattern``."""
    if not isinstance(event_pattern, str) or not event_pattern:
        raise ComponentDefinitionError(
            f"@subscribe needs a topic pattern like 'orders.*', got {event_pattern!r}"
        )

    def decorate(fn: F) -> F:
        _mark(fn, ("subscribe", event_pattern), "subscribe")
        return fn

    return decorate


class _Lifecycle:
    """``@lifecycle.activate`` / ``@lifecycle.deactivate``: with or without an ``rt`` argument."""

    @staticmethod
    def _hook(kind: str) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            if inspect.isfunction(fn) and _arity(fn) not in (1, 2):
                raise ComponentDefinitionError(
                    f"{fn.__qualname__}: @lifecycle.{kind} takes (self) or (self, rt), "
                    f"got {inspect.signature(fn)}"
                )
            _mark(fn, (kind,), f"lifecycle.{kind}")
            return fn

        return decorate

    def activate(self, fn: F) -> F:
        """Called when the instance starts, after its requirements are injected."""
        return self._hook("activate")(fn)

    def deactivate(self, fn: F) -> F:
        """Called when the instance stops (shutdown or hot_remove)."""
        return self._hook("deactivate")(fn)


lifecycle = _Lifecycle()


def _collect_methods(cls: type, meta: ComponentMeta) -> None:
    """Gather method marks along the MRO; the most derived definition of a name wins."""
    runnables: dict[str, RunnableSpec] = {}
    computeds: dict[str, None] = {}
    effects: dict[str, None] = {}
    subscriptions: dict[tuple[str, str], None] = {}
    hooks: dict[str, LifecycleSpec] = {}
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attr, value in klass.__dict__.items():
            if attr in seen:
                continue
            seen.add(attr)
            fn = value.fn if isinstance(value, ComputedMethod) else value
            if isinstance(fn, (staticmethod, classmethod)):
                fn = fn.__func__
            for role in getattr(fn, "__dict__", {}).get(_ROLE, ()):
                kind = role[0]
                if kind == "runnable":
                    _, name, params, description = role
                    if name in runnables:
                        raise ComponentDefinitionError(
                            f"{cls.__qualname__}: two methods declare runnable {name!r} "
                            f"({runnables[name].method!r} and {attr!r})"
                        )
                    runnables[name] = RunnableSpec(name, attr, params, description,
                                                   inspect.iscoroutinefunction(fn))
                elif kind == "computed":
                    computeds[attr] = None
                elif kind == "effect":
                    effects[attr] = None
                elif kind == "subscribe":
                    subscriptions[(role[1], attr)] = None
                elif kind in ("activate", "deactivate"):
                    if kind in hooks:
                        raise ComponentDefinitionError(
                            f"{cls.__qualname__}: two @lifecycle.{kind} methods "
                            f"({hooks[kind].method!r} and {attr!r})"
                        )
                    hooks[kind] = LifecycleSpec(attr, _arity(fn) == 2,
                                                inspect.iscoroutinefunction(fn))
    meta.runnables = tuple(sorted(runnables.values(), key=lambda r: r.name))
    meta.computeds = tuple(computeds)
    meta.effects = tuple(effects)
    meta.subscriptions = tuple(subscriptions)
    meta.activate = hooks.get("activate")
    meta.deactivate = hooks.get("deactivate")


def _check_constructible(cls: type) -> None:
    init = cls.__init__
    if init is object.__init__:
        return
    try:
        inspect.signature(init).bind(object())
    except TypeError:
        raise ComponentDefinitionError(
            f"{cls.__qualname__}.__init__ must be callable without arguments (the kernel "
            f"creates instances; per-instance data goes in properties), got "
            f"{inspect.signature(init)}"
        ) from None
