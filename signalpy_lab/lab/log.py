"""The event log: one kernel event as one line of text, tied to its cause, cell and command.

The model keeps the raw events (cheap to keep) and describes them only when read (``recent``):
a write with what it marked stale (``; stale: a, b, c and 997 more`` for a key a thousand
tenants read), a run with its outcome and duration, a call with its route, an instance's
changes, a write nobody reads yet.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..kernel.events import (
    Cause,
    ComputedRecomputed,
    ComputedVerified,
    EffectRun,
    Event,
    HandlerInvoked,
    InstanceAdded,
    InstanceRemoved,
    InstanceStateChanged,
    SignalSet,
    TransportStateChanged,
    UnreadWrite,
)
from ..kernel.redaction import redact

__all__ = ["LogEntry", "describe"]


@dataclass(frozen=True)
class LogEntry:
    ts: float
    kind: str
    text: str
    epoch: int | None  # None: a call in a cell that changed nothing reactive
    command: str | None
    cause_id: int | None = None
    node_id: int | None = None
    tenant: str | None = None
    cell: int | None = None  # the prompt number of the cell it happened in


def _command_of(cause: Cause | None, fallback: str | None) -> str | None:
    """The command that wrote the signal behind ``cause``, else the epoch's label."""
    return cause.command if cause is not None and cause.command else fallback


def _stale_text(labels: tuple[str, ...], shown: int = 3) -> str:
    """``; stale: a, b, c and 997 more`` (empty when the write marked nothing)."""
    if not labels:
        return ""
    more = f" and {len(labels) - shown:,} more" if len(labels) > shown else ""
    return f"; stale: {', '.join(labels[:shown])}{more}"


def describe(event: Event, epoch: int | None, label: str | None,
             cell: int | None = None) -> LogEntry:
    """One event as a log line, tied to its cause and to the command or cell behind it."""
    cause = getattr(event, "cause", None)
    command = _command_of(cause, getattr(event, "command", None) or label)
    node_id = getattr(event, "node_id", None)
    if isinstance(event, SignalSet):
        text = f"{event.label} = {event.cause.new} (was {event.cause.old})" + _stale_text(
            event.stale_labels)
    elif isinstance(event, ComputedRecomputed):
        outcome = (f"raised {event.error}" if event.error else
                   f"= {event.value}" if event.changed else "returned an equal value")
        text = f"{event.label} recomputed in {event.duration * 1e6:.0f} µs, {outcome}"
        command = event.command or command
    elif isinstance(event, ComputedVerified):
        text = f"{event.label} checked: no input changed, not re-run"
    elif isinstance(event, EffectRun):
        text = f"effect {event.label} ran" + (f", raised {event.error}" if event.error else "")
        command = event.command or command
    elif isinstance(event, HandlerInvoked):
        arrow = (f"{event.requested}[{event.target}] → {event.handler}"
                 if event.route == "target" else
                 f"{event.requested}[{event.target}]" if event.route == "transport"
                 and event.target else event.handler)
        outcome = f"failed: {event.error}" if event.error else f"→ {event.result}"
        text = f"invoke {arrow} ({event.route}, {event.duration * 1e3:.2f} ms) {outcome}"
        command = event.command or label
    elif isinstance(event, InstanceStateChanged):
        text = f"instance {event.name}: {event.old} → {event.new}" + (
            f" ({event.error})" if event.error else "")
    elif isinstance(event, InstanceAdded):
        text = f"instance {event.name} added (factory {event.factory}" + (
            f", target {event.target})" if event.target else ")")
    elif isinstance(event, InstanceRemoved):
        text = f"instance {event.name} removed"
    elif isinstance(event, TransportStateChanged):
        text = f"transport {event.name}: {event.old} → {event.new}" + (
            f" ({event.detail})" if event.detail else "")
    elif isinstance(event, UnreadWrite):
        text = (f"{event.label} = {event.new} (was {event.old}); " + (
            "no readers yet, nothing recomputes" if event.readers == 0 else
            "equal value, nothing changed"))
    else:
        text = event.kind
    return LogEntry(ts=event.ts, kind=event.kind, text=text, epoch=epoch,
                    command=redact(command) if command else command,
                    cause_id=cause.id if cause is not None else None, node_id=node_id,
                    tenant=getattr(event, "tenant", None), cell=cell)
