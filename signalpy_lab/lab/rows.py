"""The model's snapshot rows: the kernel's description of each node plus what the lab saw,
refreshed incrementally, and the bus routes with the calls seen through transports.

``RowCache`` is the half of ``LabModel`` that reads the kernel: it keeps the last snapshot's
node rows and, between two snapshots, the ids the model's events named (``_dirty``). The next
read asks the kernel to describe only those (``Kernel.graph_nodes``) and rebuilds only their
rows; a structural event (an edge, an instance) makes it take a whole ``Kernel.graph()``
again. Rows are never mutated once handed out (a changed node gets a new dict), so a view can
tell what changed since its last snapshot by identity.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from ..kernel.introspection import plain

__all__ = ["ON_DEMAND_INSTANCES", "PROVIDER_INSTANCES", "RemoteCalls", "RowCache",
           "provider_of"]

#: Providers whose nodes are hidden unless asked for (their config signals stay visible).
PROVIDER_INSTANCES = frozenset({"logging", "credentials", "storage"})
#: Providers whose signals exist because someone read a key: once nobody reads one (its
#: readers were removed), it is a ghost, hidden unless providers are asked for.
ON_DEMAND_INSTANCES = PROVIDER_INSTANCES | {"config"}


@dataclass
class RemoteCalls:
    """Calls made through the transport under one (routed or exact name, target)."""

    calls: int = 0
    ts: float = 0.0
    seq: int = 0
    latency: float | None = None
    result: str | None = None


def provider_of(instance: str | None) -> str | None:
    """``"config@w-tenant-db-hooli"`` (a worker's own provider) -> ``"config"``."""
    return instance.partition("@")[0] if instance else instance



class RowCache:
    """Incrementally refreshed snapshot rows and routes (the model's reading half)."""

    # Set by LabModel: what this half reads and guards.
    kernel: Any
    _lock: Any
    _activities: dict[int, Any]
    _remote_calls: dict[tuple[str, str], RemoteCalls]
    _last_calls: dict[str, tuple[float, int]]
    _structure_version: int

    def _init_rows(self) -> None:
        self._cache_lock = threading.Lock()
        self._dirty: set[int] = set()
        self._rows: dict[int, dict[str, Any]] = {}
        self._edges: list[dict[str, Any]] = []
        self._instances: list[dict[str, Any]] = []
        self._routes: list[dict[str, Any]] = []
        self._cached_structure = -1
        self.full_snapshots = 0  # how many snapshots needed a whole Kernel.graph()

    def _apply_pending(self, *, wait: bool = True) -> None:  # pragma: no cover (LabModel's)
        raise NotImplementedError

    def _graph_rows(self) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]],
                                   list[dict[str, Any]], list[dict[str, Any]]]:
        """Node rows (id -> row), edges, instances and routes: incrementally refreshed.

        A whole ``Kernel.graph()`` only after a structural change; otherwise only the nodes
        that events named since the last call are described again.
        """
        with self._cache_lock:
            with self._lock:
                structure = self._structure_version
                # A worker's relay replaces its whole graph: with one about, read it all.
                full = structure != self._cached_structure or any(
                    i["isolation"] != "inline" for i in self._instances)
                dirty, self._dirty = self._dirty, set()
            if full:
                graph = self.kernel.graph()
                fresh = {n.id: n for n in graph.nodes}
                edges = [plain(e) for e in graph.edges]
                self._instances = [
                    {"name": i.name, "factory": i.factory, "target": i.target,
                     "state": i.state, "isolation": i.isolation, "pid": i.pid,
                     "transport": i.transport,
                     "error": i.error} for i in self.kernel.instances()]
                self._routes = [plain(r) for r in self.kernel.routes()]
                self.full_snapshots += 1
            else:
                fresh = {n.id: n for n in self.kernel.graph_nodes(dirty)} if dirty else {}
                edges = self._edges
            with self._lock:
                if full:
                    self._rows = {i: self._row(node) for i, node in fresh.items()}
                    self._edges = edges
                    self._cached_structure = structure
                else:
                    rows = self._rows
                    for node_id in dirty:
                        node = fresh.get(node_id)
                        if node is not None:
                            rows[node_id] = self._row(node)
                        elif node_id in rows:  # gone (its kernel data is unchanged): restyle
                            rows[node_id] = self._restyled(rows[node_id])
            return dict(self._rows), self._edges, self._instances, self._routes

    def _row(self, node: Any) -> dict[str, Any]:
        """A snapshot row: the kernel's description of the node plus what the lab saw."""
        owner = provider_of(node.instance)
        data = plain(node)
        data["unread"] = (node.kind == "signal" and node.readers == 0
                          and owner in ON_DEMAND_INSTANCES)
        return self._restyled(data)

    def _restyled(self, data: dict[str, Any]) -> dict[str, Any]:
        activity = self._activities.get(data["id"])
        return {**data, "status": activity.status if activity else "untouched",
                "recomputes": activity.recomputes if activity else 0,
                "history": [v for _, v in activity.history] if activity else []}

    def routes(self) -> list[dict[str, Any]]:
        """The bus's tenant routes as plain rows (cheap: no graph walk).

        A route served through a transport (``via == "transport"``) carries the calls this
        model saw go through it, under any of its handler's names, and the handler's latest
        call time joins ``last_calls`` (so "most recent first" ranks it too).
        """
        self._apply_pending()
        rows = [plain(r) for r in self.kernel.routes()]
        with self._lock:
            if self._remote_calls:
                self._fill_remote(rows)
        return rows

    def _fill_remote(self, rows: list[dict[str, Any]]) -> None:
        """Sum ``remote_calls`` per (handler, target) into every transport row of it."""
        keys: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for row in rows:
            if row.get("via") == "transport":
                keys.setdefault((row["handler"], row["target"]), set()).update(
                    {(row["route"], row["target"]), (row["handler"], "")})
        totals: dict[tuple[str, str], RemoteCalls] = {}
        for handler, names in keys.items():
            found = [c for c in map(self._remote_calls.get, names) if c is not None]
            if not found:
                continue
            latest = max(found, key=lambda c: c.seq)
            totals[handler] = RemoteCalls(sum(c.calls for c in found), latest.ts, latest.seq,
                                          latest.latency, latest.result)
            self._last_calls[handler[0]] = (latest.ts, latest.seq)
        for row in rows:
            total = totals.get((row["handler"], row["target"]))
            if total is not None and row.get("via") == "transport":
                row.update(calls=total.calls, last_latency=total.latency,
                           last_result=total.result)

