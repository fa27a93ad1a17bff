"""Structured kernel events and the hub that delivers them to listeners.

Observability is an API of the kernel, not a patch on it: the kernel and the reactive engine
emit immutable records (``record.Record``: named fields, each with a ``kind``) to whoever
subscribed to ``kernel.events``. With no listener anywhere, the engine's hook is uninstalled
and each emission site costs one ``is None`` / boolean test; with one, an event costs one
tuple, not a frozen dataclass's field-by-field stores.

Causes: every signal write that happens while someone listens gets a ``Cause`` (a sequence
number, the signal's label, and the *command* that was running, set with ``caused_by``). The
nodes it marks stale remember it, so a later recompute reports which write it answers to.
Runs, instance changes and calls carry the command that was running when they happened too,
so a lazy recompute is told apart from the write it answers to.

Where no ``caused_by`` is in force, an *origin resolver* may name the command instead: the
lab installs one (``set_origin_resolver``) that names the line of the running notebook cell
(``config.set(...)``), so a write from plain Python is labelled like a magic's.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import field
from typing import Any

from . import graph
from .graph import DerivedNode, GraphHooks, ReactiveNode, SourceNode
from .record import Record
from .redaction import MASK, redact

__all__ = [
    "Cause",
    "ComputedRecomputed",
    "ComputedVerified",
    "EdgeChanged",
    "EffectRun",
    "Event",
    "EventHub",
    "HandlerInvoked",
    "InstanceAdded",
    "InstanceRemoved",
    "InstanceStateChanged",
    "PolicyChanged",
    "SignalSet",
    "UnreadWrite",
    "caused_by",
    "current_command",
    "node_error_repr",
    "node_value_repr",
    "resolved_origin",
    "set_origin_resolver",
    "short_repr",
]

_log = logging.getLogger("signalpy_lab.events")
_command: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signalpy_lab_command", default=None
)
_cause_ids = itertools.count(1)
_resolver: Callable[[], str | None] | None = None


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, secrets masked, for event logs and tables."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break observability
        text = f"<unrepresentable {type(value).__name__}: {exc}>"
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def node_value_repr(node: ReactiveNode, value: Any, limit: int = 60) -> str:
    """A node's value for people: ``MASK`` for a secret node or one whose dependencies
    reached a secret at any depth (``node.secret``, kept by the engine), stale or not."""
    if node.secret:
        return MASK
    return short_repr(value, limit)


def node_error_repr(node: ReactiveNode, error: BaseException) -> str:
    """A node's error for people: ``Type: message``, secrets masked; for a secret node the
    message is masked whole (it is as much built from the secret as a value would be)."""
    if node.secret:
        return f"{type(error).__name__}: {MASK}"
    return redact(f"{type(error).__name__}: {error}")


@contextmanager
def caused_by(command: str) -> Iterator[None]:
    """Label every write inside the block with ``command`` (e.g. ``'%config set ...'``)."""
    token = _command.set(command)
    try:
        yield
    finally:
        _command.reset(token)


def current_command() -> str | None:
    """The command label set by the innermost ``caused_by``, else what the origin resolver
    names (see ``set_origin_resolver``), else None."""
    command = _command.get()
    if command is None and _resolver is not None:
        command = _resolver()
    return command


def resolved_origin() -> str | None:
    """What the origin resolver names, where no ``caused_by`` is in force (else None)."""
    if _resolver is None or _command.get() is not None:
        return None
    return _resolver()


def set_origin_resolver(resolver: Callable[[], str | None] | None) -> None:
    """Install (or with ``None`` remove) the function that names a command where no
    ``caused_by`` is in force. It runs in the thread that writes, calls or runs, so it can
    look at that thread's stack; it must be cheap and return None when it has nothing to say
    (the lab's returns None outside a notebook cell)."""
    global _resolver
    _resolver = resolver



class Cause(Record, kw_only=False):
    """One signal write that started a cascade."""

    id: int
    signal_id: int
    signal: str
    command: str | None
    old: str
    new: str


class Event(Record):
    """Base of every kernel event."""

    kind: str = ""
    ts: float = field(default_factory=time.time)


class _NodeEvent(Event):
    node_id: int
    label: str
    instance: str | None
    tenant: str | None


class SignalSet(_NodeEvent):
    """A signal was written. ``stale`` (ids) and ``stale_labels`` are the computeds the write
    marked possibly stale, in marking order: one event per write, whatever its fan-out."""

    kind: str = "signal.set"
    cause: Cause
    stale: tuple[int, ...] = ()
    stale_labels: tuple[str, ...] = ()


class ComputedRecomputed(_NodeEvent):
    """A computed ran. ``changed`` is False when it produced an equal value (cascade stops).
    ``cause`` is the write it answers to; ``command`` what was running when it ran (the read
    that pulled it, which may come cells after the write)."""

    kind: str = "computed.recomputed"
    duration: float
    changed: bool
    value: str
    error: str | None
    cause: Cause | None
    command: str | None = None


class ComputedVerified(_NodeEvent):
    """A possibly-stale computed proved clean without running: none of its inputs changed."""

    kind: str = "computed.verified"
    cause: Cause | None
    command: str | None = None


class EffectRun(_NodeEvent):
    kind: str = "effect.run"
    duration: float
    error: str | None
    cause: Cause | None
    command: str | None = None


class EdgeChanged(Event):
    """``kind`` is ``edge.added`` or ``edge.removed``; ``source`` is read by ``target``."""

    source_id: int
    target_id: int
    source: str
    target: str


class HandlerInvoked(Event):
    """A bus call finished. ``route`` is ``exact``, ``target`` or ``transport``."""

    kind: str = "handler.invoked"
    requested: str
    handler: str
    route: str
    instance: str | None
    target: str | None
    duration: float
    error: str | None
    result: str
    command: str | None = None


class InstanceAdded(Event):
    kind: str = "instance.added"
    name: str
    factory: str
    target: str | None
    command: str | None = None


class InstanceStateChanged(Event):
    kind: str = "instance.state"
    name: str
    old: str
    new: str
    error: str | None = None
    command: str | None = None


class InstanceRemoved(Event):
    kind: str = "instance.removed"
    name: str
    command: str | None = None


class UnreadWrite(Event):
    """A keyed value was written and no reactive node changed: nobody reads that key yet
    (``readers == 0``), or its readers' value stayed equal. Emitted by providers that keep
    per-key signals (the config keyspace), so a write is never invisible to the lab."""

    kind: str = "write.unread"
    label: str
    instance: str | None
    tenant: str | None
    old: str
    new: str
    readers: int = 0
    command: str | None = None


class PolicyChanged(Event):
    """The host set (``policy`` a dict) or removed (``None``) the policy of ``name``."""

    kind: str = "policy.changed"
    name: str
    policy: dict[str, Any] | None


Listener = Callable[[Event], None]


class EventHub:
    """Delivers events to listeners; a listener that raises is logged and skipped.

    ``active`` is the cheap test emitters use before building an event at all.
    """

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.active = False

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event; returns the function that unsubscribes."""
        self._listeners = [*self._listeners, listener]
        self._set_active()

        def unsubscribe() -> None:
            self._listeners = [fn for fn in self._listeners if fn is not listener]
            self._set_active()

        return unsubscribe

    def emit(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                _log.exception("event listener %r failed on %s", listener, event.kind)

    def _set_active(self) -> None:
        was, self.active = self.active, bool(self._listeners)
        if was != self.active:
            _dispatcher.hub_toggled(self.active)


def _hub_of(node: ReactiveNode) -> EventHub | None:
    hub = getattr(node.owner, "hub", None)
    return hub if hub is not None and hub.active else None


def _where(node: ReactiveNode) -> tuple[str | None, str | None]:
    owner = node.owner
    return (owner.name if owner is not None else None), node.tenant


class _Dispatcher(GraphHooks):
    """The engine hook: turns engine callbacks into events on the owning scope's hub."""

    def __init__(self) -> None:
        self._active_hubs = 0
        self._lock = threading.Lock()

    def hub_toggled(self, active: bool) -> None:
        with self._lock:
            self._active_hubs += 1 if active else -1
            graph.set_hooks(self if self._active_hubs > 0 else None)

    # The methods below run on the engine's hot path whenever someone listens: each builds
    # its event once, positionally (``Record._make``), with no second lookup.

    def on_set(self, node: SourceNode, old: Any, new: Any) -> Any:
        command = _command.get()
        if command is None and _resolver is not None:
            command = _resolver()
        return _cause(next(_cause_ids), node.uid, node.describe(),
                      redact(command) if command else None,
                      node_value_repr(node, old), node_value_repr(node, new))

    def on_marked(self, node: SourceNode, cause: Any, marked: list[DerivedNode]) -> None:
        # The write's one event, on the signal's hub (or, for a signal no kernel owns, on
        # the hub of a computed it marked).
        hub = _hub_of(node)
        if hub is None:
            hub = next((h for h in map(_hub_of, marked) if h is not None), None)
            if hub is None:
                return
        ids: list[int] = []
        labels: list[str] = []
        for stale in marked:  # a plain loop: most writes mark one or two
            if not stale.is_effect:
                ids.append(stale.uid)
                labels.append(stale.describe())
        owner = node.owner
        hub.emit(_signal_set(node.uid, cause.signal, owner.name if owner is not None else None,
                             node.tenant, cause, stale=tuple(ids), stale_labels=tuple(labels)))

    def on_run(self, node: DerivedNode, seconds: float, changed: bool,
               error: BaseException | None) -> None:
        hub = _hub_of(node)
        if hub is None:
            return
        owner = node.owner
        instance = owner.name if owner is not None else None
        error_text = node_error_repr(node, error) if error is not None else None
        command = _command.get()
        if command is None and _resolver is not None:
            command = _resolver()
        if node.is_effect:
            hub.emit(EffectRun(node_id=node.uid, label=node.describe(), instance=instance,
                               tenant=node.tenant, duration=seconds, error=error_text,
                               cause=node.cause, command=command))
        else:
            hub.emit(_computed_recomputed(
                node.uid, node.describe(), instance, node.tenant, seconds, changed,
                node_value_repr(node, node.value), error_text, node.cause, command=command))

    def on_verified(self, node: DerivedNode) -> None:
        hub = _hub_of(node)
        if hub is not None and not node.is_effect:
            instance, tenant = _where(node)
            hub.emit(ComputedVerified(node_id=node.uid, label=node.describe(),
                                      instance=instance, tenant=tenant, cause=node.cause,
                                      command=current_command()))

    def on_edge(self, source: ReactiveNode, target: DerivedNode, added: bool) -> None:
        hub = _hub_of(target) or _hub_of(source)
        if hub is not None:
            hub.emit(EdgeChanged(
                kind="edge.added" if added else "edge.removed", source_id=source.uid,
                target_id=target.uid, source=source.describe(), target=target.describe(),
            ))


# The hot paths' positional constructors (fields in declaration order, see Record._make).
_cause = Cause._make
_signal_set = SignalSet._make
_computed_recomputed = ComputedRecomputed._make
_dispatcher = _Dispatcher()
