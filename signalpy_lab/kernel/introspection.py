"""Plain, JSON-able views of the kernel: instances, factories, routes, the reactive graph.

The lab renders these; tests assert on them. Nothing here holds a live reference to a
component object, so a snapshot can be kept, diffed and serialised freely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .events import node_error_repr, node_value_repr
from .graph import CLEAN, DIRTY, DerivedNode, ReactiveNode, context
from .reactive import Scope
from .redaction import redact, redact_tree
from .runtime import thaw

if TYPE_CHECKING:
    from .bus import Handler
    from .lifecycle import ComponentInstance
    from .metadata import ComponentMeta
    from .policy import Policy

__all__ = [
    "FactoryInfo",
    "plain",
    "GraphEdge",
    "GraphNode",
    "GraphSnapshot",
    "InstanceInfo",
    "RouteInfo",
    "TransportInfo",
    "describe_nodes",
    "snapshot_graph",
]


def plain(record: Any) -> dict[str, Any]:
    """A flat record (the dataclasses here, all of scalar fields) as a dict.

    ``dataclasses.asdict`` recurses and deep-copies every field; for flat records that is
    pure overhead, and it dominated a lab refresh at 1,000 tenants.
    """
    return dict(vars(record))


@dataclass(frozen=True)
class InstanceInfo:
    name: str
    factory: str
    target: str | None
    state: str
    error: str | None
    handlers: tuple[str, ...]
    properties: dict[str, Any]
    depends_on: tuple[str, ...]
    effect_errors: int
    #: What it may call: its own handlers plus these factory, contract or instance names.
    declared: tuple[str, ...] = ()
    #: The host's grant beyond ``declared`` (``Policy.to_dict()``), if one applies.
    policy: dict[str, Any] | None = None
    #: ``inline`` (in this process) or ``process`` (a worker); its pid and node when isolated.
    isolation: str = "inline"
    pid: int | None = None
    #: For an active isolated instance, the state of the transport that reaches it:
    #: ``connected``, ``reconnecting``, ``restarting`` (its private server died and is being
    #: restarted) or ``stopped``; ``kernel.transports()`` says why. None for an inline one
    #: and for one not active (a failed worker's ``error`` says why).
    transport: str | None = None
    #: For an active isolated instance, what confines its worker, in the host's words:
    #: ``landlock v7``, or ``none (why)`` where the OS has no Landlock (it runs all the
    #: same, and says so). None for an inline one and one not active.
    sandbox: str | None = None

    @classmethod
    def of(cls, inst: ComponentInstance, policy: Policy | None = None,
           transport: str | None = None, sandbox: str | None = None) -> InstanceInfo:
        error = inst.error
        meta = inst.meta
        return cls(
            name=inst.name, factory=inst.factory, target=inst.target, state=inst.state.value,
            error=redact(f"{type(error).__name__}: {error}") if error is not None else None,
            handlers=tuple(inst.handlers), properties=redact_tree(thaw(inst.properties)),
            depends_on=inst.depends_on, effect_errors=inst.effect_errors,
            declared=tuple(dict.fromkeys((*meta.depends, *meta.requires.values()))),
            policy=policy.to_dict() if policy is not None else None,
            isolation=inst.isolation, pid=inst.pid, transport=transport, sandbox=sandbox,
        )


@dataclass(frozen=True)
class TransportInfo:
    """Where one of the bus's transports stands (``kernel.transports()``).

    ``state`` is ``connected``, ``reconnecting``, ``restarting`` or ``stopped``; ``url`` the
    server in use while connected; ``servers`` every server it may use; ``since`` the time of
    the last change (``time.time()``); ``detail`` one line: why, and what happens next.
    """

    name: str
    state: str
    url: str | None = None
    servers: tuple[str, ...] = ()
    since: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class FactoryInfo:
    name: str
    cls: str
    version: str
    depends: tuple[str, ...]
    provides: tuple[str, ...]
    requires: dict[str, str]
    runnables: tuple[str, ...]
    computeds: tuple[str, ...]
    effects: tuple[str, ...]
    instances: tuple[str, ...]

    @classmethod
    def of(cls, meta: ComponentMeta, instances: list[str]) -> FactoryInfo:
        return cls(
            name=meta.factory_name, cls=f"{meta.cls.__module__}.{meta.cls.__qualname__}",
            version=meta.version, depends=meta.depends, provides=meta.provides,
            requires=dict(meta.requires), runnables=tuple(r.name for r in meta.runnables),
            computeds=meta.computeds, effects=meta.effects, instances=tuple(instances),
        )


@dataclass(frozen=True)
class RouteInfo:
    """``route[target] -> handler``, with the serving instance's state and call statistics."""

    route: str
    target: str
    handler: str
    instance: str
    factory: str
    state: str
    calls: int
    errors: int
    last_latency: float | None
    last_result: str | None
    last_error: str | None
    #: ``local`` (this kernel's bus) or ``transport`` (a process-isolated instance's worker).
    via: str = "local"

    @classmethod
    def of(cls, route: str, target: str, handler: Handler,
           inst: ComponentInstance | None) -> RouteInfo:
        return cls(
            route=route, target=target, handler=handler.name, instance=handler.instance,
            factory=handler.factory, state=inst.state.value if inst is not None else "removed",
            calls=handler.calls, errors=handler.errors, last_latency=handler.last_latency,
            last_result=handler.last_result, last_error=handler.last_error,
        )

    @classmethod
    def remote(cls, route: str, target: str, handler: str,
               inst: ComponentInstance) -> RouteInfo:
        """A route served by an isolated instance's worker (its statistics live there)."""
        return cls(route=route, target=target, handler=handler, instance=inst.name,
                   factory=inst.factory, state=inst.state.value, calls=0, errors=0,
                   last_latency=None, last_result=None, last_error=None, via="transport")

    @property
    def arrow(self) -> str:
        return f"{self.route}[{self.target}] → {self.handler}"


@dataclass(frozen=True)
class GraphNode:
    id: int
    kind: str  # "signal" | "computed" | "effect"
    label: str
    instance: str | None
    tenant: str | None
    state: str  # "clean" | "stale" (maybe) | "dirty"
    runs: int
    value: str
    error: str | None
    # How many computeds and effects read it now. A provider's per-key signal outlives its
    # readers (its owner is the provider's scope): 0 says nobody depends on it any more.
    readers: int = 0


@dataclass(frozen=True)
class GraphEdge:
    source: int  # the node that is read
    target: int  # the node that reads it


@dataclass(frozen=True)
class GraphSnapshot:
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [plain(n) for n in self.nodes], "edges": [plain(e) for e in self.edges]}

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def node(self, label: str) -> GraphNode:
        """The node labelled ``label`` (raises ``KeyError`` listing the labels)."""
        for node in self.nodes:
            if node.label == label:
                return node
        raise KeyError(f"No node {label!r}; labels: {sorted(n.label for n in self.nodes)[:10]}")


_STATES = {CLEAN: "clean", DIRTY: "dirty"}


def _describe(node: ReactiveNode) -> GraphNode:
    owner = node.owner
    if isinstance(node, DerivedNode):
        kind = "effect" if node.is_effect else "computed"
        runs, error = node.runs, node.error
        value = "" if node.is_effect or node.runs == 0 else node_value_repr(node, node.value, 40)
    else:
        kind, runs, error = "signal", node.version, None
        value = node_value_repr(node, getattr(node, "value", None), 40)
    return GraphNode(
        id=node.uid, kind=kind, label=node.describe(),
        instance=owner.name if owner is not None else None, tenant=node.tenant,
        state=_STATES.get(node.state, "stale"), runs=runs, value=value,
        error=node_error_repr(node, error) if error is not None else None,
        readers=len(node.subs),
    )


def snapshot_graph(scopes: list[Scope], *, tenant: str | None = None,
                   instance: str | None = None,
                   remote: list[GraphSnapshot] | None = None) -> GraphSnapshot:
    """Nodes owned by ``scopes`` plus the nodes they link to; optionally one tenant/instance.

    With a filter, a node is kept if it matches or is directly linked to one that matches,
    so a tenant's view still shows the config keys its computeds read. ``remote`` are the
    graphs of process-isolated instances (relayed by their workers, ids already distinct).
    """
    with context.lock:  # a consistent view while another thread may be writing
        local = _snapshot(scopes, tenant, instance)
    for graph in remote or ():
        part = _filtered(graph, tenant, instance)
        local.nodes.extend(part.nodes)
        local.edges.extend(part.edges)
    return local


def describe_nodes(scopes: list[Scope], uids: set[int], *,
                   remote: list[GraphSnapshot] | None = None) -> list[GraphNode]:
    """The nodes with ``uids`` that still exist, described as ``snapshot_graph`` would.

    For a view that already holds a snapshot and heard events naming a few nodes: refreshing
    those costs a walk of the scopes' node lists (no description, no edges) instead of a whole
    snapshot, so the engine lock is held for a fraction of the time.
    """
    wanted = set(uids)
    found: list[GraphNode] = []
    with context.lock:
        for scope in scopes:
            for node in scope.nodes:
                if node.uid in wanted:
                    wanted.discard(node.uid)
                    found.append(_describe(node))
            if not wanted:
                return found
        for scope in scopes:  # nodes no scope owns, reached as an owned node's input
            for node in scope.nodes:
                for dep in node.deps if isinstance(node, DerivedNode) else ():
                    if dep.uid in wanted:
                        wanted.discard(dep.uid)
                        found.append(_describe(dep))
            if not wanted:
                return found
    for graph in remote or ():
        found.extend(n for n in graph.nodes if n.id in wanted)
    return found


def _filtered(graph: GraphSnapshot, tenant: str | None, instance: str | None) -> GraphSnapshot:
    """``graph`` with the same tenant/instance filter ``_snapshot`` applies."""
    if tenant is None and instance is None:
        return graph
    keep = {n.id for n in graph.nodes
            if (instance is None or n.instance == instance)
            and (tenant is None or n.tenant == tenant)}
    keep |= {e.source for e in graph.edges if e.target in keep} | {
        e.target for e in graph.edges if e.source in keep}
    return GraphSnapshot(nodes=[n for n in graph.nodes if n.id in keep],
                         edges=[e for e in graph.edges if e.source in keep and e.target in keep])


def _snapshot(scopes: list[Scope], tenant: str | None, instance: str | None) -> GraphSnapshot:
    nodes: dict[int, ReactiveNode] = {}
    for scope in scopes:
        for node in scope.nodes:
            nodes[node.uid] = node
    for node in list(nodes.values()):
        if isinstance(node, DerivedNode):
            for dep in node.deps:
                nodes.setdefault(dep.uid, dep)

    def matches(node: ReactiveNode) -> bool:
        owner = node.owner
        if instance is not None and (owner is None or owner.name != instance):
            return False
        return tenant is None or node.tenant == tenant

    edges = [GraphEdge(dep.uid, node.uid) for node in nodes.values()
             if isinstance(node, DerivedNode) for dep in node.deps if dep.uid in nodes]
    if tenant is not None or instance is not None:
        keep = {uid for uid, node in nodes.items() if matches(node)}
        linked = {e.source for e in edges if e.target in keep} | {
            e.target for e in edges if e.source in keep}
        keep |= linked
        nodes = {uid: node for uid, node in nodes.items() if uid in keep}
        edges = [e for e in edges if e.source in keep and e.target in keep]
    return GraphSnapshot(nodes=[_describe(n) for n in nodes.values()], edges=edges)
