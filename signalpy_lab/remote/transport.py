"""``NatsTransport``: the bus's remote transport, over a real NATS server.

    transport = await NatsTransport(kernel, "nats://127.0.0.1:4222", nkeys_seed=...).start()
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
  the bus's order says: exact, target, then transports);
* **a cluster is a list of servers**: ``url`` is one URL, a list, or a comma-separated
  string (``"nats://a:4222,nats://b:4222"``, the nats CLI's convention); ``start()`` tries
  them for at most ``connect_timeout`` seconds and fails with one error naming every URL and
  why each failed; once connected the client moves to another server of the list by itself
  when its own dies, and ``url`` names the server actually in use;
* **a lost connection fails its calls at once, not at the timeout**: when this node's
  connection drops, every call in flight ends with a ``TransportError`` saying so and that
  the call may have run; a call unanswered for ``PROBE_SECONDS`` makes this node ask the
  serving node which of its calls it still serves (``wire.probe_subject``), and a call it
  no longer has (its own connection dropped with the request or the reply) or a node that
  stays unreachable for ``GONE_SECONDS`` ends the same way, about a second after the loss.

The transport must be started on the kernel's loop (``start`` hops there), because the
handlers it serves run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from ..kernel.events import TransportStateChanged
from ..kernel.introspection import TransportInfo
from ..kernel.loop import hop_if_needed
from . import wire

if TYPE_CHECKING:
    from ..kernel import Kernel

__all__ = ["NatsTransport", "RemoteRoute", "server_list"]

_log = logging.getLogger("signalpy_lab.remote")

#: How long a starting transport waits for other nodes to answer a routes query.
DISCOVERY_SECONDS = 0.3
#: How long ``start()`` tries the servers of its list before it gives up (the default).
CONNECT_SECONDS = 5.0
#: How long a refused login is retried before ``start()`` gives up. nats-server refuses valid
#: logins (or drops the half-open connection) while it reloads its users: measured here, 16 of
#: 150 connects of an existing user failed while other users were being added, so a worker
#: starting beside others would fail now and then. A wrong credential still fails in about
#: this long, not after the whole ``connect_timeout``.
LOGIN_GRACE_SECONDS = 1.0
#: The client pings its server this often; two unanswered pings mean the connection is dead,
#: so a server that hangs without closing its sockets is noticed in about three intervals
#: (a killed one closes them: that is noticed at once).
PING_SECONDS = 2.0
#: A call unanswered this long makes the caller ask its node whether it still serves it.
PROBE_SECONDS = 0.5
#: A node with calls in flight that has had no responders this long is gone: they fail.
GONE_SECONDS = 0.5
#: ``stop()`` drains at most this long, then closes.
STOP_SECONDS = 2.0


def server_list(urls: str | Sequence[str]) -> tuple[str, ...]:
    """The servers of a URL, a comma-separated string of them, or a list, in order.

    Example::

        server_list("nats://a:4222, nats://b:4222") == ("nats://a:4222", "nats://b:4222")
    """
    if isinstance(urls, str):
        parts = urls.split(",")
    elif isinstance(urls, Sequence) and all(isinstance(u, str) for u in urls):
        parts = list(urls)
    else:
        raise TypeError(f"NATS servers are a URL, a comma-separated string of URLs or a list "
                        f"of URLs, got {urls!r}")
    servers = tuple(p.strip() for p in parts)
    if not servers or any(not s or any(c.isspace() for c in s) for s in servers):
        raise ValueError(f"NATS servers must be non-empty URLs without spaces (like "
                         f"'nats://127.0.0.1:4222,nats://127.0.0.1:4223'), got {urls!r}")
    return servers


def _plain_url(uri: Any) -> str:
    """``nats://host:port`` of a parsed server URL, without any credentials in it."""
    return f"{uri.scheme}://{uri.hostname}:{uri.port}"


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

    def __init__(self, kernel: Kernel, url: str | Sequence[str], *, user: str | None = None,
                 password: str | None = None, nkeys_seed: str | None = None,
                 node: str | None = None, timeout: float = 10.0,
                 serve: bool = True, announce: bool = True, inbox_prefix: str | None = None,
                 connect_timeout: float = CONNECT_SECONDS) -> None:
        self.kernel = kernel
        #: Every server this transport may use, in the order given.
        self.servers = server_list(url)
        self.connect_timeout = connect_timeout
        self.node = node or kernel.name
        wire.serve_subject(self.node)  # a node name is one subject token: checked now
        self.name = f"nats:{self.node}"
        self.timeout = timeout
        # An NKey seed (``NatsServer``'s users) or a user and password (a server of yours):
        # kept in memory only, never logged (``repr`` shows neither).
        self._user, self._password, self._nkeys_seed = user, password, nkeys_seed
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
        # serving node -> call id -> (calling task, loop time sent)
        self._inflight: dict[str, dict[int, tuple[asyncio.Task[Any], float]]] = {}
        self._cut: dict[asyncio.Task[Any], str] = {}  # callers cancelled on purpose -> why
        self._ids = itertools.count(1)
        # caller node -> call id -> (its task here, loop time of its deadline)
        self._serving: dict[str, dict[int, tuple[asyncio.Task[Any], float]]] = {}
        self._anonymous: set[asyncio.Task[Any]] = set()  # calls served without an id
        self._expired: set[asyncio.Task[Any]] = set()  # served calls cancelled at deadline
        self._probing: set[str] = set()
        self._unreachable: dict[str, float] = {}  # node -> loop time of its first no-responders
        self._probe_subject = wire.probe_subject(self.node)
        #: ``not started``, ``connected``, ``reconnecting`` or ``stopped``.
        self.state = "not started"
        self._since = time.time()
        self._last_url: str | None = None  # the server used last (for errors once it is gone)
        self._last_error: str | None = None
        self._announced_state = self.state  # the state last announced with TransportStateChanged
        #: Who keeps the server alive says how it is here, ``(state, detail)`` (a supervised
        #: ``NatsServer``: ``running``, ``down``, ``restarting``); while the connection is
        #: down, ``status()`` shows ``restarting`` and errors quote the detail.
        self.server_state: Callable[[], tuple[str, str] | None] | None = None
        # Read-your-writes with workers (ProcessHost keeps both; wire.py, "Config revisions"):
        # serving node -> the config revision a call to it carries, and on a worker's own
        # transport what runs before each call it serves (waits for that revision).
        self.revisions: dict[str, int] = {}
        self.before_serve: Callable[[Mapping[str, Any], str], Any] | None = None
        #: The shared config (``shared_config.SharedConfig``), when this kernel's config is
        #: shared: calls carry ``kv_rev`` and served calls wait for it (read-your-writes
        #: across kernels).
        self.shared_config: Any = None

    def __repr__(self) -> str:
        return f"<NatsTransport {self.node!r} {self.state} to {self.url}: " \
               f"{len(self._tables)} peers>"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def url(self) -> str:
        """The server in use while connected, else every server of the list (comma-separated)."""
        nc = self._nc
        uri = nc.connected_url if nc is not None else None
        return _plain_url(uri) if uri is not None else ",".join(self.servers)

    def status(self) -> TransportInfo:
        """Where this transport stands: its state, the server in use, and why (one line)."""
        return TransportInfo(name=self.name, state=self._outward_state(),
                             url=self.url if self.connected else None,
                             servers=self.servers, since=self._since, detail=self._detail())

    def _detail(self) -> str:
        if self.state == "connected":
            return f"connected to {self.url}"
        if self.state == "reconnecting":
            server = self._server()
            note = server[1] if server is not None and server[0] != "running" else None
            text = (f"lost its connection to {self._last_url or 'NATS'} "
                    f"{time.time() - self._since:.1f}s ago; reconnecting to "
                    f"{', '.join(self.servers)}")
            if note:
                text += f"; {note}"
            elif self._last_error:
                text += f" (last attempt: {self._last_error}); it connects again once one of "\
                        "them answers"
            return text
        return self.state

    def _server(self) -> tuple[str, str] | None:
        return self.server_state() if self.server_state is not None else None

    def _outward_state(self) -> str:
        """The state shown outside: ``restarting`` while down because the server is."""
        if self.state == "reconnecting":
            server = self._server()
            if server is not None and server[0] in ("down", "restarting"):
                return "restarting"
        return self.state

    def _set_state(self, new: str) -> None:
        if new != self.state:
            self.state, self._since = new, time.time()
        self.changed()

    def changed(self) -> None:
        """Emit ``TransportStateChanged`` on the kernel's hub if the outward state changed.

        The transport calls it itself; a host that keeps the server calls it when the
        server's state changes (on the kernel's loop).
        """
        old, new = self._announced_state, self._outward_state()
        if old == new:
            return
        self._announced_state = new
        hub = self.kernel.events
        if hub.active:
            hub.emit(TransportStateChanged(name=self.name, old=old, new=new,
                                           url=self.url if self.connected else None,
                                           detail=self._detail()))

    def _not_connected(self) -> str:
        """Why this node cannot call now, and what happens next (for errors)."""
        if self.state == "reconnecting":
            return f"node {self.node!r} {self._detail()}. Try again once it is back."
        return f"the transport of node {self.node!r} is {self.state}."

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
        self._nc = await self._connect()
        self._last_url = self.url
        self._set_state("connected")
        _log.info("node %r connected to NATS at %s", self.node, self.url)
        if self._serve:
            await self._nc.subscribe(wire.serve_subject(self.node), cb=self._on_call)
            await self.settle()
        if self._announce:
            await self._nc.subscribe(wire.ANNOUNCE, cb=self._on_announce)
            await self._nc.subscribe(wire.QUERY, cb=self._on_query)
            self._unwatch = self.kernel.watch_routes(self._schedule_announce)
            await self._publish_table()
            await self._discover()
        self._spawn(self._probe_loop())
        self.kernel.bus.add_transport(self)
        return self

    async def _connect(self) -> Any:
        """A connected client, trying every server for at most ``connect_timeout`` seconds.

        nats-py's own first connect retries forever when reconnecting is unlimited, and a
        failure's cleanup can raise a second error that hides the first: so the attempt runs
        as a task with a deadline, the reasons are collected from ``error_cb``, and a
        refused login ends it after ``LOGIN_GRACE_SECONDS`` of further tries (a server
        reloading its users refuses valid logins for a moment; retrying cannot fix wrong
        credentials).
        """
        reasons: list[str] = []
        refused = asyncio.Event()
        connecting = [True]

        async def on_error(exc: Exception) -> None:
            if connecting[0]:
                reasons.append(f"{type(exc).__name__}: {exc}")
                if isinstance(exc, nats_errors.AuthorizationError) or \
                        "Authorization Violation" in str(exc):
                    refused.set()
            else:
                await self._on_error(exc)

        options: dict[str, Any] = {
            "servers": list(self.servers), "name": self.node, "error_cb": on_error,
            "disconnected_cb": self._on_disconnected, "reconnected_cb": self._on_reconnected,
            "closed_cb": self._on_closed, "max_reconnect_attempts": -1,
            "reconnect_time_wait": 0.2, "connect_timeout": min(2.0, self.connect_timeout),
            "ping_interval": PING_SECONDS, "max_outstanding_pings": 2,
        }
        if self._nkeys_seed is not None:
            options["nkeys_seed_str"] = self._nkeys_seed
        else:
            options.update(user=self._user, password=self._password)
        if self._inbox_prefix is not None:
            options["inbox_prefix"] = self._inbox_prefix
        client = nats.NATS()
        attempt = asyncio.ensure_future(client.connect(**options))
        async def refused_for_good() -> None:
            await refused.wait()
            await asyncio.sleep(LOGIN_GRACE_SECONDS)  # nats-py keeps trying meanwhile

        stop = asyncio.ensure_future(refused_for_good())
        try:
            await asyncio.wait({attempt, stop}, timeout=self.connect_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
            connecting[0] = False
            return client
        if attempt.done() and not attempt.cancelled():
            exc = attempt.exception()
            reasons.append(f"{type(exc).__name__}: {exc}")
        else:
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await attempt
        try:  # a failed connect leaves its socket open otherwise
            await asyncio.wait_for(client.close(), STOP_SECONDS)
        except Exception as exc:  # never hide the reasons above behind a cleanup failure
            _log.debug("closing the failed connection of %r: %r", self.node, exc)
        why = "; ".join(dict.fromkeys(reasons[-6:])) or "no server answered"
        raise TransportError(
            f"Cannot connect node {self.node!r} to NATS within {self.connect_timeout:g}s; "
            f"tried {', '.join(self.servers)}: {why}. Check that a server listens there and "
            f"the credentials (NKey seed, or user and password), or give other URLs (a list "
            f"or a comma-separated string).") from None

    def stop(self) -> Any:
        """Withdraw this node's routes, stop serving and disconnect."""
        return hop_if_needed(self._loop if self._loop and self._loop.is_running() else None,
                             self._stop())

    async def _stop(self) -> None:
        self.kernel.bus.remove_transport(self)
        if self.shared_config is not None:  # the config keeps its values, and is ours again
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.shared_config.stop(), STOP_SECONDS)
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        nc, self._nc = self._nc, None
        if nc is None:
            return
        self._set_state("stopped")
        self._cut_off(None, f"the transport of node {self.node!r} was stopped while the "
                            f"call was in flight; it may have run.")
        try:  # bounded: a client whose server is gone would drain (reconnect) forever
            if nc.is_connected:
                if self._announce:
                    await nc.publish(wire.ANNOUNCE,
                                     wire.encode({"node": self.node, "gone": True}))
                await asyncio.wait_for(nc.drain(), STOP_SECONDS)
            else:
                await asyncio.wait_for(nc.close(), STOP_SECONDS)
        except Exception as exc:  # the server may be gone already: closing is all that is left
            _log.debug("closing %s: %r", self.node, exc)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), STOP_SECONDS)
        for task in [*self._tasks, *self._anonymous,
                     *(t for calls in self._serving.values() for t, _ in calls.values())]:
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
        self._cut_off(node, f"{why}.")

    def _cut_off(self, node: str | None, why: str, ids: Iterable[int] | None = None) -> None:
        """End calls in flight (to ``node``, or to every node) with ``why``, now.

        The calling task itself is cancelled (and uncancelled in ``call``), rather than a task
        wrapped around each request: one task and one loop hop less per call.
        """
        nodes = [node] if node is not None else list(self._inflight)
        for name in nodes:
            calls = self._inflight.get(name)
            if not calls:
                continue
            for call_id in list(calls) if ids is None else [i for i in ids if i in calls]:
                caller = calls[call_id][0]
                if caller not in self._cut and not caller.done():
                    self._cut[caller] = why
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

    async def _on_disconnected(self) -> None:
        """This node's connection dropped: every call in flight fails now, saying so."""
        if self.state != "connected":
            return  # stopping, or a reconnect attempt that failed again
        self._set_state("reconnecting")
        _log.warning("node %r lost its connection to NATS at %s; reconnecting to %s",
                     self.node, self._last_url, ", ".join(self.servers))
        self._cut_off(None, f"node {self.node!r} lost its connection to NATS at "
                            f"{self._last_url} while the call was in flight; it may have run "
                            f"(retry only if it is safe to repeat).")

    async def _on_reconnected(self) -> None:
        self._last_url = self.url
        self._last_error = None
        self._set_state("connected")
        _log.warning("node %r reconnected to NATS at %s", self.node, self.url)
        await self._publish_table()
        if self.shared_config is not None:  # watch the bucket again, from what it missed
            await self.shared_config.resume()

    async def _on_closed(self) -> None:
        if self.state != "stopped":
            self._set_state("stopped")

    async def _on_error(self, exc: Exception) -> None:
        text = f"{type(exc).__name__}: {exc}"
        if self.state == "reconnecting":  # one attempt of many: status() and errors say it
            self._last_error = text
            _log.debug("node %r: reconnect attempt failed: %s", self.node, text)
        else:
            _log.warning("NATS error on node %r (at %s): %s", self.node, self.url, text)

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
            raise TransportError(f"{handler!r} cannot be called: {self._not_connected()}")
        limit = self.timeout if timeout is None else timeout
        call_id = next(self._ids)
        message = {"handler": handler, "requested": requested or handler,
                   "params": wire.jsonable_params(params), "caller": self.node, "id": call_id,
                   "timeout": limit}
        revision = self.revisions.get(node)
        if revision is not None:
            message["config_rev"] = revision
        shared = self.shared_config
        if shared is not None:
            message["kv_rev"] = await shared.barrier()
        payload = wire.encode(message)
        subject = wire.call_subject(node, handler)
        caller = asyncio.current_task()
        calls = self._inflight.get(node)
        if calls is None:
            calls = self._inflight[node] = {}
        if caller is not None:
            calls[call_id] = (caller, self._loop.time() if self._loop else 0.0)
        try:
            reply = await nc.request(subject, payload, timeout=limit)
        except asyncio.CancelledError:
            why = self._cut.pop(caller, None) if caller is not None else None
            if why is not None and caller is not None and caller.uncancel() == 0:
                raise TransportError(f"{handler!r} on node {node!r} was cut off: "
                                     f"{why}") from None
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
                                 f"was lost ({type(exc).__name__}); it may have run. "
                                 f"{self._not_connected()}") from None
        finally:
            calls.pop(call_id, None)
            if caller is not None:
                self._cut.pop(caller, None)
        message = wire.decode(reply.data)
        if message.get("ok"):
            return message.get("result")
        wire.raise_remote_error(message.get("error") or {})
        return None  # pragma: no cover (raise_remote_error always raises)

    # -- finding calls whose connection was lost -------------------------------------------

    async def _probe_loop(self) -> None:
        """Every ``PROBE_SECONDS``: ask the nodes of calls unanswered that long about them."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            now = loop.time()
            for served in self._serving.values():  # calls served here past their deadline
                for task, deadline in list(served.values()):
                    if deadline < now and task not in self._expired and not task.done():
                        self._expired.add(task)
                        task.cancel()
            for node, calls in list(self._inflight.items()):
                old = [i for i, (_, sent) in calls.items() if now - sent >= PROBE_SECONDS]
                if old and node not in self._probing and self.connected:
                    self._probing.add(node)
                    self._spawn(self._probe(node, old))

    async def _probe(self, node: str, ids: list[int]) -> None:
        """Which of ``ids`` does ``node`` still serve? End the others: they are lost.

        The question travels behind the calls it asks about (one publisher, one subscriber:
        NATS keeps their order) and the answer comes back behind any reply sent before it, on
        the same reply subscription: a call the node does not have, whose reply has not come
        either, lost its request or its reply with a connection that dropped.
        """
        loop = asyncio.get_running_loop()
        try:
            try:
                reply = await self._nc.request(
                    wire.probe_subject(node), wire.encode({"caller": self.node, "ids": ids}),
                    timeout=max(1.0, 2 * PROBE_SECONDS))
            except nats_errors.NoRespondersError:
                first = self._unreachable.setdefault(node, loop.time())
                if loop.time() - first >= GONE_SECONDS:
                    self._cut_off(node, f"node {node!r} stopped answering on NATS (nobody "
                                        f"serves its subject: its process or its connection "
                                        f"is gone) while the call was in flight; it may have "
                                        f"run.", ids)
                return
            except Exception:  # busy, timed out, or this node's own connection dropped
                return
            self._unreachable.pop(node, None)
            try:
                answer = wire.decode(reply.data)
            except WireFormatError:
                return
            if not isinstance(answer.get("serving"), list):
                return  # a node that does not answer this question (an error reply): no news
            serving = set(answer["serving"])
            lost = [i for i in ids if i not in serving]
            if lost:
                self._cut_off(node, f"node {node!r} no longer has this call: a connection to "
                                    f"NATS dropped with its request or its reply (a server "
                                    f"died); it may have run.", lost)
        finally:
            self._probing.discard(node)

    # -- serving -------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_call(self, msg: Msg) -> None:
        if msg.subject == self._probe_subject:
            await self._answer_probe(msg)
            return
        try:
            request: dict[str, Any] | Exception = wire.decode(msg.data)
        except WireFormatError as exc:
            request = exc
        caller = call_id = None
        limit = None
        if isinstance(request, dict):
            caller, call_id = request.get("caller"), request.get("id")
            timeout = request.get("timeout")
            limit = float(timeout) if isinstance(timeout, (int, float)) else None
        # Calls run concurrently, one task each. Its deadline is the caller's limit, enforced
        # by the sweep in _probe_loop (a timer per call was a quarter of serving one).
        loop = self._loop or asyncio.get_running_loop()
        task = loop.create_task(self._serve_call(msg, request, caller, call_id, limit))
        if isinstance(caller, str) and isinstance(call_id, int):
            # Known before the next message: a probe behind this call sees it.
            serving = self._serving.get(caller)
            if serving is None:
                serving = self._serving[caller] = {}
            serving[call_id] = (task, loop.time() + limit if limit else float("inf"))
        else:
            self._anonymous.add(task)
            task.add_done_callback(self._anonymous.discard)

    async def _answer_probe(self, msg: Msg) -> None:
        try:
            asked = wire.decode(msg.data)
        except WireFormatError:
            return
        serving = self._serving.get(asked.get("caller")) or {}
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(wire.encode({"serving": [
                    i for i in asked.get("ids") or () if i in serving]}))

    async def _serve_call(self, msg: Msg, request: dict[str, Any] | Exception,
                          caller: Any, call_id: Any, limit: float | None) -> None:
        handler = "?"
        try:
            try:
                handler = wire.handler_of(msg.subject)
                if isinstance(request, Exception):
                    raise request
                shared = self.shared_config
                if shared is not None and isinstance(request.get("kv_rev"), int):
                    await shared.reach(request["kv_rev"], handler)
                if self.before_serve is not None:
                    waiting = self.before_serve(request, handler)
                    if waiting is not None:
                        await waiting
                result = await self.kernel.bus.invoke_local(handler,
                                                            request.get("params") or {})
                data = wire.encode({"ok": True, "result": result})
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task not in self._expired:
                    raise
                self._expired.discard(task)
                if task is not None:
                    task.uncancel()
                data = wire.encode_error(InvokeTimeoutError(
                    f"{handler} did not finish within {limit:g}s; it was cancelled."),
                    handler, self.node)
            except Exception as exc:
                data = wire.encode_error(exc, handler, self.node)
            if msg.reply:
                try:
                    await msg.respond(data)
                except Exception as exc:
                    _log.warning("node %r could not answer %s: %s", self.node, handler, exc)
        finally:
            serving = self._serving.get(caller) if isinstance(caller, str) else None
            if serving is not None:
                serving.pop(call_id, None)
