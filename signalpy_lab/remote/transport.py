"""``NatsTransport``: the bus's remote transport, over a real NATS server.

    transport = await NatsTransport(kernel, "nats://127.0.0.1:4222", user=..., password=...).start()
    await kernel.bus.invoke("tenant-db.query", {"target": "globex"})   # served by another kernel

One transport per kernel. It *serves* the kernel's handlers on ``spl.v1.call.<node>.>`` and
*advertises* them (exact names and target routes) on ``spl.v1.routes.announce``, again
whenever they change and after every reconnect; a kernel that joins late asks
``spl.v1.routes.query`` and every node answers with its table. A node that stops withdraws its
table. As a ``Transport`` it resolves, after the bus found nothing local, exact handler names
and ``routed name`` + ``target`` against the remote tables, and sends one request (subjects
and messages: ``wire.py``).

Rules that hold across kernels:

* **every call has a timeout** (``timeout``, default 10 s): ``InvokeTimeoutError`` names the
  handler and the node;
* **nobody serving is an error at once**: NATS answers "no responders" when no subscription
  matches (a worker that died, a kernel that left), so the call fails with
  ``TransportError`` immediately, not after the timeout;
* **remote errors come back as the same types**, naming the remote handler (``wire.py``);
* **a host's calls to its workers carry the config revision they were made at**
  (``revisions``, kept by ``ProcessHost``), and a worker's transport waits for it before it
  serves one (``before_serve``, set by the worker): read-your-writes (``wire.py``);
* **no collision is resolved silently**: a handler name or (route, target) advertised by two
  nodes is a ``RouteConflictError`` naming both, and one a remote node advertises while this
  kernel serves it too is reported in ``conflicts()`` and logged (the local one serves, as
  the bus's order says: exact, target, then transports).

The transport must be started on the kernel's loop (``start`` hops there), because the
handlers it serves run on it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import nats
from nats import errors as nats_errors
from nats.aio.msg import Msg

from ..errors import (
    InvokeTimeoutError,
    RouteConflictError,
    TransportError,
    UnknownHandlerError,
    UnknownTargetError,
    WireFormatError,
)
from ..kernel.loop import hop_if_needed
from . import wire

if TYPE_CHECKING:
    from ..kernel import Kernel

__all__ = ["NatsTransport", "RemoteRoute"]

_log = logging.getLogger("signalpy_lab.remote")

#: How long a starting transport waits for other nodes to answer a routes query.
DISCOVERY_SECONDS = 0.3


@dataclass(frozen=True)
class RemoteRoute:
    """One remote entry: ``route[target] -> handler``, served on ``node``'s subject."""

    route: str
    target: str | None  # None for an exact handler name
    handler: str
    node: str  # the node whose subject serves the handler (a worker's for isolated tenants)
    advertised_by: str


@dataclass
class _Table:
    """What one node advertised."""

    node: str
    seq: int = 0
    handlers: dict[str, str] = field(default_factory=dict)  # handler -> serving node
    routes: dict[str, dict[str, str]] = field(default_factory=dict)  # routed -> target -> handler
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)


class NatsTransport:
    """The kernel's endpoint on a NATS server: serves, advertises, and calls (module doc)."""

    takes_timeout = True

    def __init__(self, kernel: Kernel, url: str, *, user: str | None = None,
                 password: str | None = None, node: str | None = None, timeout: float = 10.0,
                 serve: bool = True, announce: bool = True,
                 inbox_prefix: str | None = None) -> None:
        self.kernel = kernel
        self.url = url
        self.node = node or kernel.name
        wire.serve_subject(self.node)  # a node name is one subject token: checked now
        self.name = f"nats:{self.node}"
        self.timeout = timeout
        self._user, self._password = user, password
        self._serve, self._announce = serve, announce
        self._inbox_prefix = inbox_prefix
        self._nc: Any = None
        self._seq = itertools.count(1)
        self._tables: dict[str, _Table] = {}
        self._static = _Table(self.node)  # what hosts here serve on other nodes (workers)
        self._merged: tuple[dict[str, list[tuple[str, str]]],
                            dict[str, dict[str, list[tuple[str, str, str]]]]] | None = None
        self._resolved: dict[tuple[str, str | None], tuple[str, str]] = {}  # of _merged
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unwatch: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reported: set[str] = set()
        self.down: dict[str, str] = {}  # serving node -> why it is known to be down
        self._inflight: dict[str, set[asyncio.Task[Any]]] = {}  # serving node -> callers
        self._cut: set[asyncio.Task[Any]] = set()  # callers mark_down cancelled
        # Read-your-writes with workers (ProcessHost keeps both; wire.py, "Config revisions"):
        # serving node -> the config revision a call to it carries, and on a worker's own
        # transport what runs before each call it serves (waits for that revision).
        self.revisions: dict[str, int] = {}
        self.before_serve: Callable[[Mapping[str, Any], str], Any] | None = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else "not connected"
        return f"<NatsTransport {self.node!r} {state} to {self.url}: {len(self._tables)} peers>"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def settle(self) -> None:
        """Return once the server has every subscription made so far.

        nats-py's ``flush()`` writes its PING ahead of commands still queued for its flusher,
        so one flush can return before a fresh SUB reached the server (measured: a call right
        after was answered 'no responders' 5-11 times in 150); a second flush closes that gap.
        """
        await self._nc.flush()
        await self._nc.flush()

    def start(self) -> Any:
        """Connect, serve, advertise and learn the other nodes' routes (on the kernel's loop)."""
        return hop_if_needed(self.kernel.home_loop(), self._start())

    async def _start(self) -> NatsTransport:
        self._loop = asyncio.get_running_loop()
        options: dict[str, Any] = {
            "servers": [self.url], "name": self.node, "user": self._user,
            "password": self._password, "error_cb": self._on_error,
            "reconnected_cb": self._on_reconnected, "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.2, "connect_timeout": 5,
        }
        if self._inbox_prefix is not None:
            options["inbox_prefix"] = self._inbox_prefix
        client = nats.NATS()
        try:
            await client.connect(**options)
        except Exception as exc:
            await client.close()  # a failed connect leaves its socket open otherwise
            raise TransportError(f"Cannot connect to NATS at {self.url} as node "
                                 f"{self.node!r}: {type(exc).__name__}: {exc}") from None
        self._nc = client
        if self._serve:
            await self._nc.subscribe(wire.serve_subject(self.node), cb=self._on_call)
            await self.settle()
        if self._announce:
            await self._nc.subscribe(wire.ANNOUNCE, cb=self._on_announce)
            await self._nc.subscribe(wire.QUERY, cb=self._on_query)
            self._unwatch = self.kernel.watch_routes(self._schedule_announce)
            await self._publish_table()
            await self._discover()
        self.kernel.bus.add_transport(self)
        return self

    def stop(self) -> Any:
        """Withdraw this node's routes, stop serving and disconnect."""
        return hop_if_needed(self._loop if self._loop and self._loop.is_running() else None,
                             self._stop())

    async def _stop(self) -> None:
        self.kernel.bus.remove_transport(self)
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        nc, self._nc = self._nc, None
        if nc is None:
            return
        try:
            if self._announce and nc.is_connected:
                await nc.publish(wire.ANNOUNCE, wire.encode({"node": self.node, "gone": True}))
            await nc.drain()
        except Exception as exc:  # the server may be gone already: closing is all that is left
            _log.debug("closing %s: %s", self.node, exc)
            await nc.close()
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> NatsTransport:
        return await self.start()  # type: ignore[no-any-return]

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- advertising ---------------------------------------------------------------------

    def serve_static(self, node: str, handlers: Iterable[str],
                     routes: Mapping[str, Mapping[str, str]],
                     instances: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Advertise handlers that ``node`` serves on this kernel's behalf (a worker's)."""
        for handler in handlers:
            wire.call_subject(node, handler)  # checks the names
            self._static.handlers[handler] = node
        for routed, targets in routes.items():
            self._static.routes.setdefault(routed, {}).update(targets)
        self._static.instances.update(instances or {})
        self.down.pop(node, None)
        self._invalidate()
        self._schedule_announce()

    def withdraw_static(self, node: str) -> None:
        """Stop advertising what ``node`` served (its worker was removed)."""
        gone = {h for h, n in self._static.handlers.items() if n == node}
        for handler in gone:
            del self._static.handlers[handler]
        for routed in list(self._static.routes):
            targets = self._static.routes[routed]
            for target in [t for t, h in targets.items() if h in gone]:
                del targets[target]
            if not targets:
                del self._static.routes[routed]
        for name in {h.rpartition(".")[0] for h in gone}:
            self._static.instances.pop(name, None)
        self._invalidate()
        self._schedule_announce()

    def mark_down(self, node: str, why: str) -> None:
        """Calls to ``node`` fail at once with ``why`` until it serves again, in-flight ones too.

        Call it on the transport's loop (a host learns of a death there).
        """
        self.down[node] = why
        for caller in list(self._inflight.get(node, ())):
            self._cut.add(caller)
            caller.cancel()

    def own_table(self) -> dict[str, Any]:
        """What this node advertises: its local handlers and routes, and its workers'."""
        bus = self.kernel.bus
        handlers = dict.fromkeys(bus.handlers(), self.node)
        handlers.update(self._static.handlers)
        routes: dict[str, dict[str, str]] = {r: dict(t) for r, t in bus.routes().items()}
        for routed, targets in self._static.routes.items():
            routes.setdefault(routed, {}).update(targets)
        instances = {i.name: {"factory": i.factory, "target": i.target, "state": i.state}
                     for i in self.kernel.instances() if any(
                         h.startswith(f"{i.name}.") for h in handlers)}
        return {"node": self.node, "seq": next(self._seq), "handlers": handlers,
                "routes": routes, "instances": instances}

    def _schedule_announce(self) -> None:
        if not self._announce or self._nc is None or self._loop is None:
            return
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._spawn(self._publish_table())
        else:
            self._loop.call_soon_threadsafe(lambda: self._spawn(self._publish_table()))

    async def _publish_table(self) -> None:
        if self._nc is None or not self._nc.is_connected:
            return
        try:
            await self._nc.publish(wire.ANNOUNCE, wire.encode(self.own_table()))
        except Exception as exc:
            _log.warning("node %r could not advertise its routes: %s", self.node, exc)

    async def _discover(self) -> None:
        """Ask every node for its table and take the answers that come within a short window."""
        inbox = self._nc.new_inbox()
        sub = await self._nc.subscribe(inbox, cb=self._on_announce)
        await self._nc.publish(wire.QUERY, wire.encode({"node": self.node}), reply=inbox)
        await asyncio.sleep(DISCOVERY_SECONDS)
        await sub.unsubscribe()

    async def _on_query(self, msg: Msg) -> None:
        if msg.reply:
            try:
                asker = wire.decode(msg.data).get("node")
            except WireFormatError:
                return
            if asker != self.node:
                await self._nc.publish(msg.reply, wire.encode(self.own_table()))

    async def _on_announce(self, msg: Msg) -> None:
        try:
            data = wire.decode(msg.data)
        except WireFormatError as exc:
            _log.warning("ignored a route table: %s", exc)
            return
        node = data.get("node")
        if not isinstance(node, str) or node == self.node:
            return
        if data.get("gone"):
            if self._tables.pop(node, None) is not None:
                self._invalidate()
            return
        current = self._tables.get(node)
        seq = int(data.get("seq", 0))
        if current is not None and seq <= current.seq:
            return  # an answer to a query, older than an announcement already seen
        self._tables[node] = _Table(node, seq, dict(data.get("handlers", {})),
                                    {r: dict(t) for r, t in data.get("routes", {}).items()},
                                    dict(data.get("instances", {})))
        self._invalidate()

    async def _on_reconnected(self) -> None:
        _log.info("node %r reconnected to %s", self.node, self.url)
        await self._publish_table()

    async def _on_error(self, exc: Exception) -> None:
        _log.warning("NATS error on node %r: %s", self.node, exc)

    # -- the merged remote view ----------------------------------------------------------

    def _invalidate(self) -> None:
        self._merged = None
        self._resolved = {}

    def _merge(self) -> tuple[dict[str, list[tuple[str, str]]],
                              dict[str, dict[str, list[tuple[str, str, str]]]]]:
        merged = self._merged
        if merged is not None:
            return merged
        exact: dict[str, list[tuple[str, str]]] = {}  # handler -> [(serving node, advertiser)]
        routed: dict[str, dict[str, list[tuple[str, str, str]]]] = {}
        tables = [*self._tables.values()]
        if self._static.handlers:
            tables.append(self._static)
        for table in tables:
            for handler, node in table.handlers.items():
                exact.setdefault(handler, []).append((node, table.node))
            for name, targets in table.routes.items():
                for target, handler in targets.items():
                    node = table.handlers.get(handler, table.node)
                    routed.setdefault(name, {}).setdefault(target, []).append(
                        (handler, node, table.node))
        self._merged = merged = (exact, routed)
        self._report_conflicts(exact, routed)
        return merged

    def _report_conflicts(self, exact: dict[str, list[tuple[str, str]]],
                          routed: dict[str, dict[str, list[tuple[str, str, str]]]]) -> None:
        for text in self._conflicts(exact, routed):
            if text not in self._reported:
                self._reported.add(text)
                _log.warning("route conflict: %s", text)

    def _conflicts(self, exact: dict[str, list[tuple[str, str]]],
                   routed: dict[str, dict[str, list[tuple[str, str, str]]]]) -> list[str]:
        found = []
        local_handlers = self.kernel.bus.handlers()
        local_routes = self.kernel.bus.routes()
        for handler, servers in sorted(exact.items()):
            nodes = sorted({n for n, _ in servers})
            if len(nodes) > 1:
                found.append(f"{handler!r} is advertised by {', '.join(map(repr, nodes))}")
            if handler in local_handlers and any(n != self.node for n in nodes):
                found.append(f"{handler!r} is served here and advertised by "
                             f"{', '.join(map(repr, nodes))}; the local one serves")
        for name, targets in sorted(routed.items()):
            for target, servers in sorted(targets.items()):
                handlers = sorted({f"{h}@{n}" for h, n, _ in servers})
                if len(handlers) > 1:
                    found.append(f"{name!r}[{target!r}] is advertised as "
                                 f"{', '.join(map(repr, handlers))}")
                if target in local_routes.get(name, {}):
                    found.append(f"{name!r}[{target!r}] is served here and advertised as "
                                 f"{', '.join(map(repr, handlers))}; the local one serves")
        return found

    def conflicts(self) -> list[str]:
        """Every route collision between nodes (and between this kernel and a node)."""
        exact, routed = self._merge()
        return self._conflicts(exact, routed)

    def remote_routes(self) -> list[RemoteRoute]:
        """Everything reachable through this transport, one row per (route, target)."""
        exact, routed = self._merge()
        rows = [RemoteRoute(h, None, h, node, by) for h, servers in exact.items()
                for node, by in servers]
        rows += [RemoteRoute(name, target, h, node, by) for name, targets in routed.items()
                 for target, servers in targets.items() for h, node, by in servers]
        return sorted(rows, key=lambda r: (r.route, r.target or "", r.node))

    def peers(self) -> dict[str, dict[str, Any]]:
        """Each remote node's advertised instances."""
        return {node: dict(t.instances) for node, t in sorted(self._tables.items())}

    def handler_names(self) -> Iterable[str]:
        exact, routed = self._merge()
        return [*exact, *routed]

    def targets(self, routed_name: str) -> list[str]:
        """The targets other nodes serve for ``routed_name`` (named in the bus's errors)."""
        return sorted(self._merge()[1].get(routed_name, ()))

    def resolve(self, name: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
        """``(serving node, handler)`` for a call, or a ``RoutingError`` (try the next one).

        A resolution is kept until the tables change (every call resolves; errors are not
        kept, so a conflict is raised on every call).
        """
        target = params.get("target") if params else None
        key = (name, target if isinstance(target, str) else None)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(name, params)
        return found

    def _resolve(self, name: str, params: Mapping[str, Any] | None) -> tuple[str, str]:
        exact, routed = self._merge()
        servers = exact.get(name)
        target = (params or {}).get("target")
        # A call naming a target of a routed name goes by route, never to an exact handler
        # of that name (another kernel's default instance): the target's instance answers.
        if servers is not None and (target is None or name not in routed):
            nodes = sorted({n for n, _ in servers})
            if len(nodes) > 1:
                raise RouteConflictError(
                    f"{name!r} is advertised by {len(nodes)} nodes "
                    f"({', '.join(map(repr, nodes))}); routes are never chosen silently: "
                    f"remove one of them.")
            return nodes[0], name
        targets = routed.get(name)
        if targets is None:
            raise UnknownHandlerError(f"No node advertises {name!r}.")
        entries = targets.get(target) if isinstance(target, str) else None
        if not entries:
            known = ", ".join(map(repr, sorted(targets))) or "none"
            raise UnknownTargetError(f"No node serves {name!r} for target {target!r}. "
                                     f"Known remote targets: {known}.")
        choices = sorted({(h, n) for h, n, _ in entries})
        if len(choices) > 1:
            raise RouteConflictError(
                f"{name!r} for target {target!r} is advertised as "
                f"{', '.join(f'{h!r} on {n!r}' for h, n in choices)}; routes are never chosen "
                f"silently: remove one of them.")
        handler, node = choices[0]
        return node, handler

    # -- calling -------------------------------------------------------------------------

    async def invoke(self, handler: str, params: Mapping[str, Any] | None,
                     timeout: float | None = None) -> Any:
        """Send one call to the node that serves ``handler`` (the bus's ``Transport``)."""
        node, resolved = self.resolve(handler, params)
        return await self.call(node, resolved, params, requested=handler, timeout=timeout)

    async def call(self, node: str, handler: str, params: Any, *, requested: str | None = None,
                   timeout: float | None = None) -> Any:
        """One request to ``handler`` on ``node``'s subject; the reply's result or its error."""
        why_down = self.down.get(node)
        if why_down is not None:
            raise TransportError(f"{handler!r} cannot be called: {why_down}")
        nc = self._nc
        if nc is None or not nc.is_connected:
            raise TransportError(f"{handler!r} cannot be called: node {self.node!r} is not "
                                 f"connected to NATS at {self.url} (it reconnects by itself).")
        limit = self.timeout if timeout is None else timeout
        message = {"handler": handler, "requested": requested or handler,
                   "params": wire.jsonable_params(params), "caller": self.node, "timeout": limit}
        revision = self.revisions.get(node)
        if revision is not None:
            message["config_rev"] = revision
        payload = wire.encode(message)
        subject = wire.call_subject(node, handler)
        # mark_down cancels the calling task itself (and uncancels it here), rather than a
        # task wrapped around the request: one task and one loop hop less per call.
        caller = asyncio.current_task()
        inflight = self._inflight.setdefault(node, set())
        if caller is not None:
            inflight.add(caller)
        try:
            reply = await nc.request(subject, payload, timeout=limit)
        except asyncio.CancelledError:
            if caller in self._cut and caller is not None and caller.uncancel() == 0:
                why = self.down.get(node, f"node {node!r} went down")
                raise TransportError(f"{handler!r} was cut off: {why}.") from None
            raise
        except nats_errors.NoRespondersError:
            why = self.down.get(node) or (f"nobody serves {subject} (node {node!r} is gone "
                                          f"or not started)")
            raise TransportError(f"{handler!r} cannot be called: {why}.") from None
        except nats_errors.TimeoutError:
            raise InvokeTimeoutError(f"{handler!r} on node {node!r} did not answer within "
                                     f"{limit:g}s.") from None
        except (nats_errors.ConnectionClosedError, nats_errors.ConnectionReconnectingError,
                nats_errors.StaleConnectionError) as exc:
            raise TransportError(f"{handler!r} on node {node!r}: the connection to NATS "
                                 f"was lost ({type(exc).__name__}); it reconnects by "
                                 f"itself, try again.") from None
        finally:
            if caller is not None:
                inflight.discard(caller)
                self._cut.discard(caller)
        message = wire.decode(reply.data)
        if message.get("ok"):
            return message.get("result")
        wire.raise_remote_error(message.get("error") or {})
        return None  # pragma: no cover (raise_remote_error always raises)

    # -- serving -------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_call(self, msg: Msg) -> None:
        self._spawn(self._serve_call(msg))  # calls run concurrently, not one at a time

    async def _serve_call(self, msg: Msg) -> None:
        handler = "?"
        try:
            handler = wire.handler_of(msg.subject)
            request = wire.decode(msg.data)
            timeout = request.get("timeout")
            limit = float(timeout) if isinstance(timeout, (int, float)) else None
            # The caller's limit bounds this task itself: the bus's timeout= would wrap the
            # handler in asyncio.wait_for, one more task and timer per call.
            deadline = asyncio.timeout(limit)
            try:
                async with deadline:
                    if self.before_serve is not None:
                        waiting = self.before_serve(request, handler)
                        if waiting is not None:
                            await waiting
                    result = await self.kernel.bus.invoke_local(
                        handler, request.get("params") or {})
            except TimeoutError:
                if not deadline.expired():
                    raise  # the handler's own TimeoutError
                raise InvokeTimeoutError(f"{handler} did not finish within {limit:g}s; it "
                                         f"was cancelled.") from None
            data = wire.encode({"ok": True, "result": result})
        except Exception as exc:
            data = wire.encode_error(exc, handler, self.node)
        if msg.reply:
            try:
                await msg.respond(data)
            except Exception as exc:
                _log.warning("node %r could not answer %s: %s", self.node, handler, exc)
