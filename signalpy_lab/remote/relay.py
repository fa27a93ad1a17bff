"""What a worker relays, as the host takes it in: stamped with who relayed it, never as claimed.

A process-isolated tenant's worker sends its kernel's events and its instance's graph on its
own events subject (``spl.v1.events.w-<name>``; the server lets it publish nothing else). The
worker runs the tenant's code, so everything in those messages is the tenant's word: a hostile
worker can send a node labelled ``tenant-db-globex.db_url`` with ``"tenant": "globex"``. The
host therefore believes only what it knows itself, the worker the message came from
(``Relayer``), and stamps every node and event with it:

* **tenant**: the worker's instance's target, whatever the payload says.
* **instance**: the worker's instance name; or ``<provider>@w-<name>`` when the payload names
  one of the providers every worker boots (``WORKER_PROVIDERS``: config, logging,
  credentials, storage), the worker's own copies of them. Any other owner a payload names
  (another instance, ``config@w-<another worker>``, nothing) is the worker's instance.
* **labels** (a node's, a cause's signal, an edge's ends, a write's stale nodes): believed
  when they name something of the worker's own: its instance's nodes (``<name>.…``), keys of
  its own config view (``tenants.<its target>.…``, ``apps.<its name>.…``, shared keys), or
  anything else whose first dotted part is not ``tenants``, ``apps`` or the name of another
  instance of the host. A label that names another instance or tenant
  (``tenant-db-globex.db_url``, ``tenants.globex.db_url``, ``apps.tenant-db-globex.password``)
  is shown prefixed with the worker's node, ``w-<name>:tenant-db-globex.db_url``: kept, so
  the forgery is visible and attributed, but never equal to a real node's label, so no
  lookup by label (``%why``, the graph's tenant box) finds it as another's. Other instances
  are those the host has when the relay arrives; every relay re-stamps the worker's graph.
  An untargeted worker has no tenant section of its own: its ``tenants.`` labels are all
  shown under its node (a display cost for a rare set-up, never a wrong attribution).
* **ids** (nodes, edges, causes, stale lists) must lie in ``[0, ID_SPACE)``, the worker's own
  id space, before they are shifted into the host's (by ``offset``): a node or event with an
  id outside it (one aimed at a host node's id, or another worker's) is dropped, so a relay
  can never touch another node's recorded activity.
* **commands** (what an event says was running): believed only if the host itself sent it to
  this worker with a config change (``commands``: the worker runs the change under it, and
  the lab files the echo under that command's epoch) or is the worker's ``HOST_CHANGE``;
  any other is dropped (None), so a relay can never title an epoch
  ``%config set tenants.globex...``: it is a background change of the worker's.
* **text** (values, errors, a cause's old and new values and command) passes through the
  host's redactor too: the host knows the secrets it shipped to the worker.

Malformed parts (not a mapping, a field of the wrong type, a kind the host does not relay)
are dropped one by one; a relay never raises into the transport.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kernel.events import (
    Cause,
    ComputedRecomputed,
    ComputedVerified,
    EdgeChanged,
    EffectRun,
    Event,
    SignalSet,
)
from ..kernel.introspection import GraphEdge, GraphNode, GraphSnapshot
from ..kernel.metadata import meta_of
from ..kernel.redaction import redact
from .worker import HOST_CHANGE, PROVIDERS

__all__ = ["ID_SPACE", "WORKER_PROVIDERS", "Relayer", "stamp_event", "stamp_graph"]

_log = logging.getLogger("signalpy_lab.remote.relay")

#: Relayed ids are shifted by a multiple of this, one multiple per worker started; an id a
#: worker sends must be below it.
ID_SPACE = 10**9

#: The instance names of the providers every worker boots (``worker.PROVIDERS``).
WORKER_PROVIDERS = frozenset(meta.factory_name for meta in map(meta_of, PROVIDERS)
                             if meta is not None)

_EVENT_TYPES: dict[str, type[Event]] = {
    "signal.set": SignalSet,
    "computed.recomputed": ComputedRecomputed, "computed.verified": ComputedVerified,
    "effect.run": EffectRun, "edge.added": EdgeChanged, "edge.removed": EdgeChanged,
}  # not handler.invoked: the host's bus records each call to a worker itself (route kind
#    'transport'), so a relayed copy would count it twice

_KINDS = frozenset({"signal", "computed", "effect"})
_STATES = frozenset({"clean", "stale", "dirty"})


class _Dropped(Exception):
    """A relayed part the host does not take in (logged, never raised to the transport)."""


@dataclass(frozen=True, slots=True)
class Relayer:
    """What the host knows of the worker a relay came from (the message's own word is not).

    ``others``: the names of the host's other instances when the relay arrived;
    ``commands``: the commands the host sent it lately with config changes (as sent, and as
    the redactor showed them then: the worker masks the secrets it knows before relaying).
    """

    name: str
    node: str
    target: str | None
    offset: int
    others: frozenset[str] = frozenset()
    commands: frozenset[str] = frozenset()

    def owner(self, claimed: object) -> str:
        """The instance a relayed node or event is shown under (see the module docstring)."""
        if isinstance(claimed, str) and claimed in WORKER_PROVIDERS and claimed != self.name:
            return f"{claimed}@{self.node}"
        return self.name

    def label(self, claimed: object) -> str:
        """``claimed`` if it names something of the worker's own, else ``w-<name>:claimed``."""
        if not isinstance(claimed, str):
            raise _Dropped(f"a label must be a string, got {claimed!r}")
        first, _, rest = claimed.partition(".")
        if first == self.name:
            return claimed
        if first == "tenants":
            own = self.target is not None and rest.partition(".")[0] == self.target
        elif first == "apps":
            own = rest.partition(".")[0] == self.name
        else:
            own = first not in self.others
        return claimed if own else f"{self.node}:{claimed}"

    def id(self, claimed: object) -> int:
        """A relayed id shifted into the host's id space; outside the worker's: dropped."""
        if type(claimed) is not int or not 0 <= claimed < ID_SPACE:
            raise _Dropped(f"an id must be an int in [0, {ID_SPACE}), got {claimed!r}")
        return claimed + self.offset

    def command(self, claimed: object) -> str | None:
        """``claimed`` (masked) if the host sent it to this worker, else None."""
        if not isinstance(claimed, str):
            return None
        shown = redact(claimed)
        if claimed == HOST_CHANGE or claimed in self.commands or shown in self.commands:
            return shown
        return None

    def cause(self, claimed: object) -> Cause | None:
        if claimed is None:
            return None
        if not isinstance(claimed, Mapping):
            raise _Dropped(f"a cause must be a mapping, got {claimed!r}")
        return Cause(id=self.id(claimed.get("id")), signal_id=self.id(claimed.get("signal_id")),
                     signal=self.label(claimed.get("signal")),
                     command=self.command(claimed.get("command")),
                     old=_text(claimed.get("old")), new=_text(claimed.get("new")))


def stamp_graph(graph: object, who: Relayer) -> GraphSnapshot:
    """The graph a worker relayed, every node stamped as ``who``'s (malformed ones dropped)."""
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    if isinstance(graph, Mapping):
        for raw in _items(graph.get("nodes")):
            try:
                nodes.append(_node(raw, who))
            except _Dropped as why:
                _log.warning("dropped a node relayed by %s: %s", who.node, why)
        for raw in _items(graph.get("edges")):
            try:
                if not isinstance(raw, Mapping):
                    raise _Dropped(f"an edge must be a mapping, got {raw!r}")
                edges.append(GraphEdge(who.id(raw.get("source")), who.id(raw.get("target"))))
            except _Dropped as why:
                _log.warning("dropped an edge relayed by %s: %s", who.node, why)
    return GraphSnapshot(nodes=nodes, edges=edges)


def stamp_event(raw: object, who: Relayer) -> Event | None:
    """One relayed event stamped as ``who``'s, or None (a kind the host does not relay, or
    malformed: logged)."""
    if not isinstance(raw, Mapping):
        _log.warning("dropped an event relayed by %s: not a mapping", who.node)
        return None
    kind = raw.get("kind")
    cls = _EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    fields = dict(raw)
    try:
        for key in ("node_id", "source_id", "target_id"):
            if key in fields:
                fields[key] = who.id(fields[key])
        for key in ("label", "source", "target"):  # an edge's source and target are labels
            if key in fields:
                fields[key] = who.label(fields[key])
        if "instance" in fields or "tenant" in fields:
            fields["instance"], fields["tenant"] = who.owner(fields.get("instance")), who.target
        if "cause" in fields:
            fields["cause"] = who.cause(fields["cause"])
        if "stale" in fields:  # JSON lists; a record's fields are tuples
            fields["stale"] = tuple(who.id(i) for i in _items(fields["stale"]))
            fields["stale_labels"] = tuple(who.label(s)
                                           for s in _items(fields.get("stale_labels")))
        if "value" in fields:
            fields["value"] = _text(fields["value"])
        if fields.get("error") is not None:
            fields["error"] = _text(fields["error"])
        if "command" in fields:
            fields["command"] = who.command(fields["command"])
        if not isinstance(fields.get("ts"), (int, float)):
            fields["ts"] = time.time()
        return cls(**fields)
    except (_Dropped, TypeError) as why:
        _log.warning("dropped a relayed %s event from %s: %s", kind, who.node, why)
        return None


def _node(raw: object, who: Relayer) -> GraphNode:
    if not isinstance(raw, Mapping):
        raise _Dropped(f"a node must be a mapping, got {raw!r}")
    kind, state, error = raw.get("kind"), raw.get("state"), raw.get("error")
    if not isinstance(kind, str) or kind not in _KINDS:
        raise _Dropped(f"a node's kind is one of {sorted(_KINDS)}, got {kind!r}")
    return GraphNode(
        id=who.id(raw.get("id")), kind=kind, label=who.label(raw.get("label")),
        instance=who.owner(raw.get("instance")), tenant=who.target,
        state=state if isinstance(state, str) and state in _STATES else "stale",
        runs=_count(raw.get("runs")), value=_text(raw.get("value")),
        error=None if error is None else _text(error), readers=_count(raw.get("readers")),
    )


def _items(value: object) -> Iterable[Any]:
    return value if isinstance(value, list) else ()


def _text(value: object) -> str:
    """A relayed string as the host shows it: a string, secrets the host knows masked."""
    return redact(value if isinstance(value, str) else repr(value))


def _count(value: object) -> int:
    return value if type(value) is int and value >= 0 else 0
