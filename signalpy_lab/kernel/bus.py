"""The bus: named handlers, target routing, remote transports, and published events.

``invoke(name, params)`` resolves, in order:

1. **exact** - a handler registered under ``name`` (``tenant-db-acme.query``);
2. **target** - ``name`` is a routed name (``tenant-db.query``) and ``params['target']``
   picks the instance through the target-route map;
3. **transport** - each registered ``Transport`` in turn (another process, another kernel).

**A call that names a target is answered by that target's instance, and nothing else.** A
routed name can also be an exact name: an untargeted instance named after its factory (boot's
default instance ``tenant-db``, kept because something depends on it, or made on a kernel
that serves no tenant itself) registers ``tenant-db.query``. Such an instance keeps its exact
name for callers that name no target; a call carrying ``target`` for a routed name never
falls to it (nor to an instance serving another target): it goes by the route here, then to
the transports (a worker, another kernel), and if nobody serves the target anywhere it is an
``UnknownTargetError`` naming the known targets, local and remote. Exact names of tenant
instances (``tenant-db-acme.query``) are not routed names: they are answered as named.

Guards. The host may put a guard in front of an instance (``Kernel.guard``): before any call
that resolves to one of that instance's handlers, by its exact name or any routed name, the
bus calls the guard's handler (a quota's ``check``, say) with ``{"handler", "target"}``; if it
raises, the call fails with that error and the handler does not run. Calls the guarding
instance makes itself pass (a quota delegating to the database it guards is not counted
twice). With no guard anywhere this costs one truth test per call.

Routed names. The kernel registers an instance's runnables under ``<factory>.<runnable>`` and
also under ``<contract>.<runnable>`` for every contract its factory provides. So tenants served
by different factories (``postgres-db`` for acme, ``mysql-db`` for globex) that both
``@provides("tenant-db")`` are reached by one routed name: ``tenant-db.query`` + target. A
(routed name, target) pair has exactly one instance; a second claim is an error, never a
silent takeover.

Routing params. ``target`` picks the instance; it travels inside ``params`` (as in the design
note and the original ``signalpy-kernel``), so every handler accepts it whatever its model
says: a model that forbids extra keys (``extra="forbid"``) and has no ``target`` field gets
the params without it. Other keys a model does not declare are the model's business, as in
pydantic and the original: ignored by default, kept with ``extra="allow"``, refused with
``extra="forbid"`` (with a did-you-mean). The bus does not refuse them itself, so a caller
written for the original that passes extras keeps working; the lab's ``%invoke``, where a
person types the keys, does (``signalpy_lab/lab/suggest.py``).
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import fnmatch
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

from pydantic import BaseModel, ValidationError

from ..errors import (
    InvalidParamsError,
    InvokeTimeoutError,
    RouteConflictError,
    TenantIsolationError,
    UnknownHandlerError,
    UnknownTargetError,
    choices,
)
from .events import EventHub, HandlerInvoked, current_command, short_repr
from .loop import hop_if_needed
from .redaction import redact
from .registry import Consumer
from .sealed import Sealed, seal, unseal

if TYPE_CHECKING:
    from .kernel import Kernel

__all__ = [
    "ROUTING_PARAMS",
    "Bus",
    "BusEvent",
    "Handler",
    "InProcessTransport",
    "Transport",
    "format_validation_error",
]

_handler_invoked = HandlerInvoked._make  # the hot path's positional constructor

#: Keys of ``params`` that the bus itself reads to route a call; every handler accepts them.
ROUTING_PARAMS = frozenset({"target"})


@runtime_checkable
class Transport(Protocol):
    """A way to reach handlers outside this kernel.

    ``invoke`` raises ``RoutingError`` (``UnknownHandlerError`` / ``UnknownTargetError``) when
    it cannot deliver, so the bus tries the next transport; any other exception is the
    handler's own failure and reaches the caller. A transport whose ``invoke`` takes a
    ``timeout=`` keyword says so with ``takes_timeout = True`` (then it enforces the call's
    timeout itself); otherwise the bus cancels it after the timeout. A transport may also
    offer ``targets(routed_name)``, the targets it reaches for a routed name: an
    ``UnknownTargetError`` then names them beside the local ones.
    """

    name: str

    async def invoke(self, handler: str, params: Mapping[str, Any] | None) -> Any: ...

    def handler_names(self) -> Iterable[str]: ...


class BusEvent(NamedTuple):
    """A published event. ``source`` and ``target`` are set by the kernel, never by callers.

    A tuple, so no subscriber can rewrite a field; each subscriber gets its own copy of the
    payload, so none can change what the next one sees.
    """

    topic: str
    payload: Any
    source: str | None
    target: str | None


def format_validation_error(where: str, error: ValidationError,
                            fields: Iterable[str] = ()) -> str:
    """One line naming each failing field and its problem; an undeclared key (a model with
    ``extra="forbid"``) gets the closest of ``fields``, the model's own field names."""
    problems = []
    for item in error.errors()[:5]:
        field = ".".join(str(p) for p in item["loc"]) or "(params)"
        got = f"got {short_repr(item.get('input'), 40)}"
        if item["type"] == "extra_forbidden" and fields:
            close = difflib.get_close_matches(field, list(fields), n=1, cutoff=0.6)
            got += f"; did you mean {close[0]!r}?" if close else \
                f"; it takes {', '.join(repr(f) for f in sorted(fields))}"
        problems.append(f"{field}: {item['msg']} ({got})")
    more = f" (+{error.error_count() - 5} more)" if error.error_count() > 5 else ""
    return f"{where}: invalid params: " + "; ".join(problems) + more


def _refused_routing(model: type[BaseModel]) -> frozenset[str]:
    """The routing params ``model`` would refuse: it forbids extras and declares none of them."""
    if model.model_config.get("extra") != "forbid":
        return frozenset()
    return ROUTING_PARAMS - set(model.model_fields)


class Handler:
    """One callable bus endpoint with its statistics."""

    __slots__ = (
        "name", "instance", "factory", "runnable", "target", "fn", "model", "is_async",
        "description", "calls", "errors", "last_latency", "last_result", "last_error",
        "inflight", "drops",
    )

    def __init__(self, name: str, instance: str, factory: str, runnable: str,
                 target: str | None, fn: Callable[[Any], Any], model: type[BaseModel],
                 is_async: bool, description: str = "") -> None:
        self.name = name
        self.instance = instance
        self.factory = factory
        self.runnable = runnable
        self.target = target
        self.fn = fn
        self.model = model
        self.is_async = is_async
        self.description = description
        self.calls = 0
        self.errors = 0
        self.last_latency: float | None = None
        self.last_result: str | None = None
        self.last_error: str | None = None
        self.inflight = 0
        self.drops = _refused_routing(model)  # routing keys to remove before validating

    def validate(self, params: Any) -> BaseModel:
        if self.drops and isinstance(params, Mapping):
            params = {k: v for k, v in params.items() if k not in self.drops}
        if type(params) is dict:  # the common case, straight to pydantic-core
            try:
                return self.model.__pydantic_validator__.validate_python(params)  # type: ignore[no-any-return]
            except ValidationError as exc:
                raise InvalidParamsError(self._invalid(exc)) from None
        if isinstance(params, self.model):
            return params
        if params is None:
            params = {}
        elif isinstance(params, BaseModel):
            params = params.model_dump()
        elif not isinstance(params, Mapping):
            raise InvalidParamsError(
                f"{self.name}: params must be a mapping of field names to values, "
                f"got {type(params).__name__} {short_repr(params, 40)}"
            )
        try:
            return self.model.model_validate(params)
        except ValidationError as exc:
            raise InvalidParamsError(self._invalid(exc)) from None

    def _invalid(self, error: ValidationError) -> str:
        return format_validation_error(self.name, error, self.model.model_fields)

    async def _bounded(self, awaitable: Awaitable[Any], timeout: float) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout)
        except TimeoutError:
            raise InvokeTimeoutError(
                f"{self.name} did not finish within {timeout:g}s; it was cancelled."
            ) from None


class Bus:
    """Handlers by name, the target-route map, transports and event subscriptions."""

    def __init__(self, kernel: Kernel | None = None, events: EventHub | None = None) -> None:
        self._kernel = kernel
        self._events = events if events is not None else EventHub()
        self._handlers: dict[str, Handler] = {}
        self._routes: dict[str, dict[str, str]] = {}  # routed name -> target -> handler name
        self._transports: list[Transport] = []
        self._subscriptions: list[tuple[str, Callable[[BusEvent], Any], str | None, str]] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        # guarded instance -> the guards' handler names (see the module docstring)
        self._guards: dict[str, tuple[str, ...]] = {}

    def home_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._kernel.home_loop() if self._kernel is not None else None

    # -- registration ----------------------------------------------------------------

    def register(self, handler: Handler) -> None:
        if handler.name in self._handlers:
            raise RouteConflictError(
                f"Handler {handler.name!r} is already registered by instance "
                f"{self._handlers[handler.name].instance!r}."
            )
        self._handlers[handler.name] = handler

    def unregister(self, name: str) -> None:
        self._handlers.pop(name, None)

    def register_target_route(self, routed_name: str, target: str, handler_name: str) -> None:
        """Route ``routed_name`` + ``target`` to the handler ``handler_name``.

        >>> bus.register_target_route("tenant-db.query", "acme", "tenant-db-acme.query")
        """
        targets = self._routes.setdefault(routed_name, {})
        current = targets.get(target)
        if current is not None and current != handler_name:
            raise RouteConflictError(
                f"{routed_name!r} for target {target!r} is already served by {current!r}; "
                f"remove that instance first (no silent takeover)."
            )
        targets[target] = handler_name

    def unregister_target_route(self, routed_name: str, target: str) -> None:
        targets = self._routes.get(routed_name)
        if targets is not None:
            targets.pop(target, None)
            if not targets:
                del self._routes[routed_name]

    def route_owner(self, routed_name: str, target: str) -> str | None:
        """The handler serving ``routed_name`` for ``target``, if any."""
        return self._routes.get(routed_name, {}).get(target)

    def add_transport(self, transport: Transport) -> None:
        """Try ``transport`` (after local handlers and routes) for calls nobody here serves."""
        self._transports.append(transport)

    def remove_transport(self, transport: Transport) -> None:
        self._transports = [t for t in self._transports if t is not transport]

    # -- introspection ---------------------------------------------------------------

    def handler(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def handlers(self) -> dict[str, Handler]:
        return dict(self._handlers)

    def routes(self) -> dict[str, dict[str, str]]:
        return {name: dict(targets) for name, targets in self._routes.items()}

    def targets(self, routed_name: str) -> list[str]:
        return sorted(self._routes.get(routed_name, {}))

    def names(self) -> list[str]:
        """Every name ``invoke`` accepts locally: exact handlers and routed names."""
        return sorted({*self._handlers, *self._routes})

    # -- calling ---------------------------------------------------------------------

    def resolve(self, name: str, params: Mapping[str, Any] | None) -> tuple[Handler, str] | None:
        """The local handler for a call and the route kind, or ``None`` to try transports.

        A call that names a target of a routed name is answered by that target's instance
        only: its route, or an exact handler serving that very target, never an untargeted
        one (a default instance named after its factory); see the module docstring. Returns
        ``None`` for a routed name with an unknown target (``invoke`` raises
        ``UnknownTargetError`` once no transport serves it either).
        """
        target = params.get("target") if params else None
        if target is None:
            handler = self._handlers.get(name)
            return (handler, "exact") if handler is not None else None
        targets = self._routes.get(name)
        if targets is not None:
            handler_name = targets.get(target) if isinstance(target, str) else None
            if handler_name is not None:
                return self._handlers[handler_name], "target"
        handler = self._handlers.get(name)
        if handler is None:
            return None
        if handler.target == target or not self.is_routed(name):
            return handler, "exact"
        return None  # an untargeted (or another tenant's) instance never answers a target

    def is_routed(self, name: str) -> bool:
        """Whether ``name`` is a routed name here: it has target routes, or it is
        ``<factory or contract>.<runnable>`` of a factory this kernel discovered."""
        return name in self._routes or (self._kernel is not None
                                        and self._kernel.is_routed_name(name))

    def invoke(self, handler: str, params: Mapping[str, Any] | BaseModel | None = None,
               *, timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """Call ``handler`` with ``params`` (validated by its pydantic model); see module doc.

        Awaitable from any loop: from another loop than the kernel's it runs on the kernel's.
        """
        kernel = self._kernel
        home = kernel._loop if kernel is not None else None
        return hop_if_needed(home, self._invoke(handler, params, timeout, local_only=False))

    async def invoke_local(self, handler: str, params: Any = None, *,
                           timeout: float | None = None) -> Any:
        """Like ``invoke`` without transports (what a transport calls on the far side)."""
        return await self._invoke(handler, params, timeout, local_only=True)

    # -- guards ----------------------------------------------------------------------------

    def guard(self, instance: str, guard: str) -> None:
        """Call handler ``guard`` before every call to ``instance``'s handlers."""
        current = self._guards.get(instance, ())
        if guard not in current:
            self._guards[instance] = (*current, guard)

    def unguard(self, instance: str, guard: str | None = None) -> list[str]:
        """Remove ``guard`` (every guard if None) from ``instance``; returns those removed."""
        current = self._guards.pop(instance, ())
        removed = [g for g in current if guard is None or g == guard]
        kept = tuple(g for g in current if g not in removed)
        if kept:
            self._guards[instance] = kept
        return removed

    def guards(self) -> dict[str, tuple[str, ...]]:
        """Guarded instance -> its guards' handler names."""
        return dict(self._guards)

    def drop_guards_of(self, instance: str) -> None:
        """``instance`` is gone: it is guarded no more, and guards no more."""
        self._guards.pop(instance, None)
        for guarded, guards in list(self._guards.items()):
            kept = tuple(g for g in guards if g.rpartition(".")[0] != instance)
            if kept:
                self._guards[guarded] = kept
            else:
                del self._guards[guarded]

    async def _run_guards(self, guards: tuple[str, ...], handler: Handler,
                          caller: str | None) -> None:
        for name in guards:
            if caller is not None and name.rpartition(".")[0] == caller:
                continue  # the guard's own calls (a quota delegating) pass
            guard = self._handlers.get(name)
            if guard is None:
                raise UnknownHandlerError(
                    f"{handler.name!r} is guarded by {name!r}, which nothing serves: the call "
                    f"is refused until the guard is back or the host removes it "
                    f"(kernel.unguard({handler.instance!r}))")
            result = guard.fn(guard.validate({"handler": handler.name,
                                              "target": handler.target}))
            if guard.is_async:
                await result

    async def _invoke(self, name: str, params: Any, timeout: float | None,
                      local_only: bool, allowed: Callable[[Handler], None] | None = None,
                      remote_allowed: Callable[[str], None] | None = None,
                      caller: str | None = None) -> Any:
        if not isinstance(name, str):
            raise UnknownHandlerError(f"A handler name is a string like 'tenant-db.query', "
                                      f"got {type(name).__name__} {name!r}")
        mapping = params if type(params) is dict or isinstance(params, Mapping) else None
        if mapping is None and isinstance(params, BaseModel):
            mapping = params.model_dump()
        found = self.resolve(name, mapping)
        if found is None:
            if not local_only and self._transports:
                if remote_allowed is not None:
                    remote_allowed(name)
                remote_miss: UnknownTargetError | None = None
                for transport in self._transports:
                    try:
                        return await self._via_transport(transport, name, mapping, timeout)
                    except UnknownTargetError as exc:  # the name is routed there: say which
                        remote_miss = exc
                    except UnknownHandlerError:
                        continue
                raise self._not_found(name, mapping, remote=True, remote_miss=remote_miss)
            raise self._not_found(name, mapping)
        handler, route = found
        if allowed is not None:
            allowed(handler)
        started = time.perf_counter()
        try:
            validated = handler.validate(params)
        except InvalidParamsError as exc:
            if self._events.calls_active:
                self._emit(name, handler, route, started, f"InvalidParamsError: {exc}", "")
            raise
        if self._guards:
            guards = self._guards.get(handler.instance)
            if guards:
                try:
                    await self._run_guards(guards, handler, caller)
                except Exception as exc:
                    handler.errors += 1
                    handler.last_error = redact(f"{type(exc).__name__}: {exc}")
                    if self._events.calls_active:
                        self._emit(name, handler, route, started, handler.last_error, "")
                    raise
        handler.calls += 1
        handler.inflight += 1
        try:
            result = handler.fn(validated)
            if handler.is_async:
                result = await (result if timeout is None else handler._bounded(result, timeout))
        except BaseException as exc:
            handler.errors += 1
            handler.last_error = redact(f"{type(exc).__name__}: {exc}")
            if self._events.calls_active:
                self._emit(name, handler, route, started, handler.last_error, "")
            raise
        finally:
            handler.inflight -= 1
            handler.last_latency = time.perf_counter() - started
        if self._events.calls_active:  # built only for listeners: the hot path stays lean
            handler.last_result = short_repr(result)
            self._emit(name, handler, route, started, None, handler.last_result)
        return result

    def _emit(self, requested: str, handler: Handler, route: str, started: float,
              error: str | None, result: str) -> None:
        self._events.emit(_handler_invoked(  # positionally: once per call while listened to
            requested, handler.name, route, handler.instance, handler.target,
            time.perf_counter() - started, error, result, command=current_command()))

    async def _via_transport(self, transport: Transport, name: str,
                             params: Mapping[str, Any] | None, timeout: float | None) -> Any:
        started = time.perf_counter()
        try:
            if timeout is not None and getattr(transport, "takes_timeout", False):
                result = await transport.invoke(name, params,  # type: ignore[call-arg]
                                                timeout=timeout)
            elif timeout is not None:
                try:
                    result = await asyncio.wait_for(transport.invoke(name, params), timeout)
                except TimeoutError:
                    raise InvokeTimeoutError(f"{name} via {transport.name} did not finish "
                                             f"within {timeout:g}s; it was cancelled.") from None
            else:
                result = await transport.invoke(name, params)
        except (UnknownHandlerError, UnknownTargetError):
            raise  # not delivered here: the next transport may serve it
        except Exception as exc:
            if self._events.calls_active:  # a failed remote call counts, like a failed local one
                self._transport_event(name, params, started, redact(f"{type(exc).__name__}: "
                                                                    f"{exc}"), "")
            raise
        if self._events.calls_active:
            self._transport_event(name, params, started, None, short_repr(result))
        return result

    def _transport_event(self, name: str, params: Mapping[str, Any] | None, started: float,
                         error: str | None, result: str) -> None:
        self._events.emit(HandlerInvoked(
            requested=name, handler=name, route="transport", instance=None,
            target=(params or {}).get("target"), duration=time.perf_counter() - started,
            error=error, result=result, command=current_command(),
        ))

    def _remote_targets(self, name: str) -> set[str]:
        """The targets the transports reach for routed ``name`` (those that can say)."""
        found: set[str] = set()
        for transport in self._transports:
            targets = getattr(transport, "targets", None)
            if targets is not None:
                found.update(targets(name))
        return found

    def _not_found(self, name: str, params: Mapping[str, Any] | None, *, remote: bool = False,
                   remote_miss: UnknownTargetError | None = None) -> Exception:
        """The error for a call nobody serves. With ``remote``, the known targets include
        those the transports reach (a tenant instance's calls never use them, nor see them)."""
        local = self._routes.get(name)
        far = self._remote_targets(name) if remote else set()
        targets: set[str] | None = None
        if local is not None or far or self.is_routed(name):
            targets = {*(local or ()), *far}  # empty: a runnable that no tenant serves yet
        elif remote_miss is not None:  # routed on the far side only: in its own words
            return remote_miss
        if targets is not None:
            target = (params or {}).get("target")
            known = _listed(targets)
            if target is None:
                return UnknownTargetError(
                    f"{name!r} is routed by target, but the call has no 'target' parameter. "
                    f"Known targets: {known}."
                )
            return UnknownTargetError(
                f"No instance serves {name!r} for target {target!r}. Known targets: {known}."
            )
        remote = [n for t in self._transports for n in t.handler_names()]
        return UnknownHandlerError(
            f"No handler {name!r}. {choices(name, [*self._handlers, *self._routes, *remote])}"
        )

    # -- events ----------------------------------------------------------------------

    def subscribe(self, pattern: str, callback: Callable[[BusEvent], Any], *,
                  tenant: str | None = None, owner: str = "") -> Callable[[], None]:
        """Deliver events whose topic matches the glob ``pattern`` to ``callback``.

        A subscriber with a ``tenant`` receives only events from that tenant's instances and
        from untargeted sources.
        """
        entry = (pattern, callback, tenant, owner)
        self._subscriptions.append(entry)

        def unsubscribe() -> None:
            self._subscriptions = [s for s in self._subscriptions if s is not entry]

        return unsubscribe

    def unsubscribe_owner(self, owner: str) -> None:
        self._subscriptions = [s for s in self._subscriptions if s[3] != owner]

    def publish(self, topic: str, payload: Any = None, *, source: str | None = None,
                target: str | None = None) -> int:
        """Deliver an event now; async callbacks are scheduled. Returns how many got it."""
        delivered = 0
        for pattern, callback, tenant, _owner in list(self._subscriptions):
            if target is not None and tenant is not None and tenant != target:
                continue
            if not fnmatch.fnmatchcase(topic, pattern):
                continue
            result = callback(BusEvent(topic, copy.deepcopy(payload), source, target))
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)  # keep a reference until done (asyncio holds weak ones)
                task.add_done_callback(self._tasks.discard)
            delivered += 1
        return delivered


def _listed(names: Iterable[str], limit: int = 12) -> str:
    """``'a0', 'a1'``, sorted, capped (``... (3 more)``), or ``none``: known targets."""
    ordered = sorted(names)
    shown = ", ".join(map(repr, ordered[:limit])) or "none"
    return shown + (f", ... ({len(ordered) - limit} more)" if len(ordered) > limit else "")


class InProcessTransport:
    """A transport to another kernel in this process (the reference ``Transport``)."""

    def __init__(self, remote: Kernel, name: str | None = None) -> None:
        self.remote = remote
        self.name = name or f"in-process:{remote.name}"

    async def invoke(self, handler: str, params: Mapping[str, Any] | None) -> Any:
        remote_bus = self.remote.bus
        home = remote_bus.home_loop()
        if home is not None and home.is_running() and home is not asyncio.get_running_loop():
            future = asyncio.run_coroutine_threadsafe(
                remote_bus.invoke_local(handler, params), home
            )
            return await asyncio.wrap_future(future)
        return await remote_bus.invoke_local(handler, params)

    def handler_names(self) -> Iterable[str]:
        return self.remote.bus.names()

    def targets(self, routed_name: str) -> Iterable[str]:
        return self.remote.bus.targets(routed_name)


class ScopedBus(Sealed):
    """``rt.bus``: call and publish *as* one instance (a sealed handle).

    Two rules, the tenant rule on top (``kernel.policy``):

    * a targeted instance may call untargeted handlers and its own tenant's, never another
      tenant's (by exact name or by routed call), and never through transports;
    * any component may call only its own handlers, those of the components it declared
      (``depends`` / ``@requires``) and what its policy's ``invoke_allow`` grants.

    Events it publishes carry its name and target, set here, must match its policy's
    ``publish_allow``, and reach only its own tenant's subscribers and untargeted ones.
    """

    __slots__ = ()

    async def invoke(self, handler: str, params: Any = None, *,
                     timeout: float | None = None) -> Any:
        """Call a handler on this kernel's bus as this instance (see the class docstring)."""
        bus, consumer = unseal(self, ScopedBus)
        target = consumer.target
        kernel = bus._kernel

        def check(found: Handler) -> None:
            if target is not None and found.target not in (None, target):
                raise TenantIsolationError(
                    f"Instance {consumer.name!r} (target {target!r}) may not call "
                    f"{found.name!r}, which serves target {found.target!r}: an instance never "
                    f"reaches another tenant's instances, whatever it declared."
                )
            if kernel is not None:
                kernel._authorize_call(consumer, handler, found)

        def check_remote(name: str) -> None:
            if kernel is not None:
                kernel._authorize_call(consumer, name, None)

        return await bus._invoke(handler, params, timeout, local_only=target is not None,
                                 allowed=check, remote_allowed=check_remote,
                                 caller=consumer.name)

    def publish(self, topic: str, payload: Any = None) -> int:
        """Publish an event whose source is this instance (its policy permitting)."""
        bus, consumer = unseal(self, ScopedBus)
        if bus._kernel is not None:
            bus._kernel._authorize_publish(consumer, topic)
        return bus.publish(topic, payload, source=consumer.name,  # type: ignore[no-any-return]
                           target=consumer.target)

    def __repr__(self) -> str:
        return f"<bus handle of {unseal(self, ScopedBus)[1].name!r}>"


def issue_scoped_bus(bus: Bus, consumer: Consumer) -> ScopedBus:
    """The kernel's way to make ``rt.bus`` (the class itself cannot be constructed)."""
    return seal(ScopedBus, (bus, consumer))
