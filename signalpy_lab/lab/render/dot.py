"""The lab's graph as Graphviz DOT: clusters per instance, one node per reactive node.

A snapshot (``LabModel.snapshot()``) becomes two DOT texts and two maps:

* ``structure``: what determines the layout (clusters, nodes, names, shapes, edges, summary
  nodes), with a fixed-width placeholder where the value line goes, so a new value or status
  never moves anything;
* ``classes`` / ``details``: per drawn node, its class string (``"<kind> <status>"``) and its
  value line. The browser toggles these on the laid-out SVG; ``render.svg.apply_state`` does
  the same in Python for exports;
* ``source``: the complete DOT (classes, statuses, values, fill colours) for anyone who wants
  to run ``dot`` on it themselves.

Big graphs are collapsed before they reach the layout engine (``dot`` is superlinear in nodes
and clusters): nodes of instances with no activity in the current epoch are folded into summary
nodes, one per instance, or one per factory when even that is too many; what was left out is
said in ``DotGraph.omitted``. Everything is sorted, so the same graph gives the same text and
the layout does not jump around between redraws.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DETAIL_WIDTH", "LEGEND", "STATUSES", "DotGraph", "best_rankdir", "class_of",
           "detail_of", "natural_key", "short_name", "to_dot"]

#: Epoch statuses, from the most to the least interesting (the order of the legend).
STATUSES = ("set", "recomputed", "unchanged", "stale", "verified", "added", "removed",
            "untouched")
#: What each status means, as the legends say it (widget, inline pictures, text tables).
LEGEND = {
    "set": "written",
    "recomputed": "recomputed, new value",
    "unchanged": "recomputed, equal value",
    "stale": "stale, not re-run yet",
    "verified": "checked, not re-run",
    "added": "new, not run yet",
    "removed": "removed",
    "untouched": "untouched",
}
#: Characters of the value line; the layout reserves this width for every node.
DETAIL_WIDTH = 34
# Reserved text in the laid-out label: roughly the width of an average line of that length.
_PLACEHOLDER = "n" * DETAIL_WIDTH
_SHAPES = {
    "signal": 'shape=box, style="rounded,filled"',
    "computed": 'shape=ellipse, style="filled"',
    "effect": 'shape=hexagon, style="filled"',
}
# Fill colours for the complete ``source`` only (so a plain ``dot -Tpng`` shows the epoch);
# the widget and exports style the same nodes with CSS (static/lab.css).
_FILLS = {
    "set": "#fde68a",
    "recomputed": "#bbf7d0",
    "unchanged": "#e0f2fe",
    "stale": "#fee2e2",
    "verified": "#ede9fe",
    "added": "#ecfccb",
    "removed": "#e5e7eb",
    "untouched": "#f3f4f6",
}
_HINT = "filter with --tenant/--instance"
#: Idle instances of one factory drawn as separate summaries; more share one summary.
GROUP_AT = 3


@dataclass(frozen=True)
class DotGraph:
    """A rendered graph: DOT texts, per-node state, and what was left out.

    ``classes`` and ``details`` are keyed by the DOT id of each drawn node (``"n<uid>"`` for a
    reactive node, ``"s<hash>"`` for a summary); ``drawn_as`` maps every snapshot node uid to
    the DOT id that draws it (itself or its summary).
    """

    source: str
    structure: str
    classes: dict[str, str]
    details: dict[str, str]
    shown: tuple[int, ...]
    omitted: str
    total: int
    drawn_as: dict[int, str] = field(default_factory=dict)
    #: DOT id -> the node's label (``tenant-db-globex.db_url``) or a summary's name
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def structure_key(self) -> str:
        """A hash of ``structure``: equal keys mean the same layout."""
        return hashlib.sha256(self.structure.encode()).hexdigest()

    def ids_for(self, *, instances: Iterable[str] = (), tenant: str | None = None,
                nodes: Iterable[Mapping[str, Any]] = ()) -> list[str]:
        """DOT ids drawing any of ``nodes`` owned by ``instances`` or belonging to ``tenant``."""
        wanted = set(instances)
        ids = {self.drawn_as[n["id"]] for n in nodes
               if n["id"] in self.drawn_as
               and (n["instance"] in wanted or (tenant is not None and n["tenant"] == tenant))}
        return sorted(ids)


def natural_key(text: str | None) -> tuple[Any, ...]:
    """Sort key that orders ``t2`` before ``t10`` (digits compare as numbers)."""
    parts = re.split(r"(\d+)", text or "")
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def short_name(node: Mapping[str, Any]) -> str:
    """``tenant-db-acme.db_url`` owned by ``tenant-db-acme`` -> ``db_url`` (config keys stay)."""
    label, instance = node["label"], node["instance"]
    if instance and label.startswith(f"{instance}."):
        return label[len(instance) + 1:]
    return label


def detail_of(node: Mapping[str, Any]) -> str:
    """The value line: ``2x = 'postgres://...'`` (computed), ``= 1`` (signal), ``ran 3x``."""
    kind, runs = node["kind"], node["runs"]
    label = node["label"]
    if node.get("detail"):  # said by whoever made the row (a write nobody reads yet)
        text = node["detail"]
    elif kind == "signal" and label.endswith(".*"):  # a subtree watch: a change counter
        count = str(node["value"])
        text = f"any key below: {count} change{'' if count == '1' else 's'}"
    elif kind == "signal" and label.endswith("(top-level keys)"):
        sections = sorted(re.findall(r"'([^']+)'", str(node["value"])))
        text = f"sections: {', '.join(sections) or 'none'}"
    elif kind == "effect" and label.endswith("(config view → worker)"):
        text = f"sent to its worker {runs}x"
    elif node.get("error"):
        text = f"{runs}x raised {node['error']}"
    elif kind == "effect":
        text = f"ran {runs}x"
    elif kind == "computed":
        text = f"{runs}x = {node['value']}" if runs else "not run yet"
    elif node.get("unread"):
        text = f"no readers, = {node['value']}"
    else:
        text = f"= {node['value']}"
    return text if len(text) <= DETAIL_WIDTH else text[: DETAIL_WIDTH - 3] + "..."


def class_of(node: Mapping[str, Any]) -> str:
    """A drawn node's class: ``"computed recomputed"`` (+ ``error``, ``unread``)."""
    status = node["status"] if node["status"] in STATUSES else "untouched"
    return (f"{node['kind']} {status}" + (" error" if node.get("error") else "")
            + (" unread" if node.get("unread") else ""))


def _quote(text: str) -> str:
    """A DOT double-quoted string (backslashes and quotes escaped, newlines as ``\\n``)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _factories(instances: Iterable[str], tenants: set[str],
               routes: list[Mapping[str, Any]]) -> dict[str, str]:
    """Each instance's factory: from the routes, else its name without a ``-<tenant>`` suffix."""
    known = {str(r["instance"]): str(r["factory"]) for r in routes}
    out = {}
    for instance in instances:
        factory = known.get(instance)
        if factory is None:
            head, _, tail = instance.rpartition("-")
            factory = head if head and tail in tenants else instance
        out[instance] = factory
    return out


def _summary_id(key: tuple[str, str]) -> str:
    return "s" + hashlib.sha1("\0".join(key).encode()).hexdigest()[:10]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


@dataclass
class _Summary:
    """Nodes folded into one box: an idle instance, the idle rest of one, or a factory's."""

    id: str
    name: str
    cluster: str | None
    members: list[Mapping[str, Any]] = field(default_factory=list)
    instances: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        return any(m["status"] != "untouched" for m in self.members)

    def label(self) -> str:
        state = "more" if self.active else "idle"
        title = f"{self.name}: {state}" if self.cluster else f"{self.name} ({state})"
        what = _plural(len(self.members), "node")
        if len(self.instances) > 1:
            what = f"{_plural(len(self.instances), 'instance')}, {what}"
        counts: dict[str, int] = {}
        for member in self.members:
            if member["status"] != "untouched":
                counts[member["status"]] = counts.get(member["status"], 0) + 1
        doing = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))
        return f"{title}\n({what})" + (f"\n{doing}" if doing else "")


def _focused(node: Mapping[str, Any], focus: set[str]) -> bool:
    return bool(focus) and (node["instance"] in focus or node["tenant"] in focus
                            or str(node["id"]) in focus or f"n{node['id']}" in focus)


def to_dot(snapshot: Mapping[str, Any], *, max_nodes: int = 150,
           focus: str | Iterable[str | int] | None = None, rankdir: str | None = None,
           max_clusters: int = 12) -> DotGraph:
    """Render a ``LabModel.snapshot()`` as DOT, collapsing idle instances past ``max_nodes``.

    ``focus`` names instances, tenants or node ids that always stay expanded. At most
    ``max_clusters`` instances are drawn expanded (the most interesting first): a hundred
    tenants that all recomputed show a dozen, and one summary per factory says what the
    others did, instead of a column a hundred clusters tall. ``rankdir``
    (``LR``: dependencies flow left to right; ``TB``: top to bottom) defaults to
    ``best_rankdir``: a long chain is stacked, so it stays readable at a notebook's width.

    >>> graph = to_dot(model.snapshot())                       # doctest: +SKIP
    >>> graph.classes["n3"]                                    # doctest: +SKIP
    'computed recomputed'
    """
    if max_nodes < 1:
        raise ValueError(f"max_nodes must be at least 1, got {max_nodes!r}")
    focus_set = ({focus} if isinstance(focus, str)
                 else {str(f) for f in focus} if focus is not None else set())
    routes: list[Mapping[str, Any]] = list(snapshot.get("routes", ()))
    nodes = sorted(snapshot["nodes"], key=lambda n: (natural_key(n["instance"]),
                                                      natural_key(n["label"]), n["id"]))
    by_id = {n["id"]: n for n in nodes}
    tenants_of: dict[str, set[str]] = {}
    for node in nodes:
        if node["instance"] is not None and not node.get("unread"):  # a ghost shares nothing
            tenants_of.setdefault(node["instance"], set()).add(node["tenant"])
    all_tenants = {t for ts in tenants_of.values() for t in ts if t}

    expanded, summaries, note = _collapse(nodes, routes, all_tenants, max_nodes, focus_set,
                                          max_clusters)
    drawn_as = {n["id"]: f"n{n['id']}" for n in expanded}
    for summary in summaries:
        for member in summary.members:
            drawn_as[member["id"]] = summary.id

    edges: dict[tuple[str, str], int] = {}
    for edge in snapshot["edges"]:
        if edge["source"] in by_id and edge["target"] in by_id:
            pair = (drawn_as[edge["source"]], drawn_as[edge["target"]])
            if pair[0] != pair[1]:
                edges[pair] = edges.get(pair, 0) + 1

    if rankdir is None:
        rankdir = best_rankdir(expanded, snapshot["edges"])
    classes = {f"n{n['id']}": class_of(n) for n in expanded}
    details = {f"n{n['id']}": detail_of(n) for n in expanded}
    for summary in summaries:
        classes[summary.id] = "summary " + ("active" if summary.active else "idle")

    def emit(with_state: bool) -> str:
        lines = [
            "digraph lab {",
            f'  graph [rankdir={rankdir}, fontname="Helvetica", fontsize=11, nodesep=0.25, '
            'ranksep=0.6, class="signalpy-graph"];',
            '  node [fontname="Helvetica", fontsize=10, color="#6b7280", fillcolor="#ffffff"];',
            '  edge [color="#6b7280", arrowsize=0.7];',
        ]

        def node_line(node: Mapping[str, Any], indent: str) -> str:
            dot_id = f"n{node['id']}"
            detail = details[dot_id] if with_state else _PLACEHOLDER
            attrs = [f'id="{dot_id}"', _SHAPES.get(node["kind"], _SHAPES["signal"]),
                     f"label={_quote(short_name(node) + chr(10) + detail)}",
                     f"class={_quote(classes[dot_id] if with_state else node['kind'])}"]
            if with_state:
                attrs.append(f'fillcolor="{_FILLS.get(node["status"], "#ffffff")}"')
            return f"{indent}{dot_id} [{', '.join(attrs)}];"

        def summary_line(summary: _Summary, indent: str) -> str:
            cls = classes[summary.id] if with_state else "summary"
            return (f'{indent}{summary.id} [id="{summary.id}", shape=box3d, '
                    f'style="filled,dashed", label={_quote(summary.label())}, '
                    f"class={_quote(cls)}];")

        by_cluster: dict[str | None, list[Mapping[str, Any]]] = {}
        for node in expanded:
            by_cluster.setdefault(node["instance"], []).append(node)
        summaries_in: dict[str | None, list[_Summary]] = {}
        for summary in summaries:
            summaries_in.setdefault(summary.cluster, []).append(summary)
        clusters = sorted((k for k in set(by_cluster) | set(summaries_in) if k is not None),
                          key=natural_key)
        for index, instance in enumerate(clusters):
            tenants = sorted(t for t in tenants_of.get(instance, ()) if t)
            if len(tenants) == 1:
                where = f"tenant {tenants[0]}"
            elif tenants:
                where = f"shared by {_plural(len(tenants), 'tenant')}"
            else:
                where = "no tenant"
            lines.append(f"  subgraph cluster_{index} {{")
            lines.append(f'    label={_quote(f"{instance}{chr(10)}{where}")}; '
                         'class="instance"; style="rounded"; color="#9ca3af";')
            lines.extend(node_line(n, "    ") for n in by_cluster.get(instance, ()))
            lines.extend(summary_line(s, "    ") for s in summaries_in.get(instance, ()))
            lines.append("  }")
        lines.extend(node_line(n, "  ") for n in by_cluster.get(None, ()))
        lines.extend(summary_line(s, "  ") for s in summaries_in.get(None, ()))
        for (source, target), count in sorted(edges.items()):
            folded = source.startswith("s") or target.startswith("s")
            style = f', style=dashed, penwidth={min(1 + count / 50, 4):.1f}' if folded else ""
            lines.append(f'  {source} -> {target} [class="{"dep folded" if folded else "dep"}"'
                         f"{style}];")
        lines.extend(f"  {a} -> {b} [style=invis];" for a, b in _grid(
            clusters, by_cluster, summaries_in, tenants_of, edges, rankdir))
        lines.append("}")
        return "\n".join(lines) + "\n"

    shown = tuple(sorted(n["id"] for n in expanded))
    omitted = ""
    if summaries:
        omitted = "; ".join([*note, f"showing {len(shown)} of {len(nodes)} nodes", _HINT])
    labels = {f"n{n['id']}": n["label"] for n in expanded}
    labels.update({summary.id: summary.name for summary in summaries})
    return DotGraph(source=emit(True), structure=emit(False), classes=classes,
                    details=details, shown=shown, omitted=omitted, total=len(nodes),
                    drawn_as=drawn_as, labels=labels)


#: Clusters per column at most, before a grid wraps to the next one (two columns until then).
GRID_ROWS = 6


def _grid(clusters: list[str], by_cluster: Mapping[str | None, list[Mapping[str, Any]]],
          summaries_in: Mapping[str | None, list[_Summary]], tenants_of: Mapping[str, set],
          edges: Mapping[tuple[str, str], int], rankdir: str) -> list[tuple[str, str]]:
    """Invisible edges that wrap many one-tenant clusters into a grid: Graphviz puts the
    clusters of one rank in a single column (LR), a hundred tenants a column a hundred
    clusters tall; an invisible edge from a cluster to the one a column's length after it
    moves that one a rank on, so they fill two columns (more once each has ``GRID_ROWS``).
    Only one-tenant clusters that feed nothing drawn are moved (no real edge gets longer)."""
    if rankdir != "LR":
        return []
    leaves = []
    for instance in clusters:
        members = [f"n{n['id']}" for n in by_cluster.get(instance, ())] + [
            s.id for s in summaries_in.get(instance, ())]
        tenants = {t for t in tenants_of.get(instance, ()) if t}
        feeds = any(source in members for source, _target in edges)
        if members and len(tenants) == 1 and not feeds:
            leaves.append(members[0])
    if len(leaves) <= 4:
        return []
    rows = min(GRID_ROWS, -(-len(leaves) // 2))
    return [(leaves[i - rows], leaves[i]) for i in range(rows, len(leaves))]


#: Dependency levels past which a graph is stacked top to bottom instead of left to right.
STACK_DEPTH = 3


def best_rankdir(nodes: Iterable[Mapping[str, Any]], edges: Iterable[Mapping[str, Any]]
                 ) -> str:
    """``LR`` while the longest dependency chain among ``nodes`` has at most ``STACK_DEPTH``
    levels (config key -> computed), else ``TB``: a chain drawn left to right grows one node
    width per level and shrinks below readable at a notebook's width; stacked, it grows
    down, which the output scrolls."""
    ids = {n["id"] for n in nodes}
    inputs: dict[int, list[int]] = {}
    for edge in edges:
        if edge["source"] in ids and edge["target"] in ids:
            inputs.setdefault(edge["target"], []).append(edge["source"])
    depth: dict[int, int] = {}
    for start in ids:  # iterative longest path (the graph is acyclic)
        stack = [(start, False)]
        while stack:
            node, done = stack.pop()
            if node in depth:
                continue
            if done:
                depth[node] = 1 + max((depth.get(i, 0) for i in inputs.get(node, ())),
                                      default=0)
                continue
            stack.append((node, True))
            stack.extend((i, False) for i in inputs.get(node, ()) if i not in depth)
    return "TB" if max(depth.values(), default=0) > STACK_DEPTH else "LR"


def _collapse(nodes: list[Mapping[str, Any]], routes: list[Mapping[str, Any]],
              all_tenants: set[str], max_nodes: int, focus: set[str],
              max_clusters: int = 12,
              ) -> tuple[list[Mapping[str, Any]], list[_Summary], list[str]]:
    """Which nodes stay expanded, which summaries hold the rest, and the sentence parts.

    The unit of activity is (instance, tenant): a shared instance such as ``config`` keeps
    the keys of active tenants and folds the keys of idle ones into one summary in its cluster.
    """
    if len(nodes) <= max_nodes and len({n["instance"] for n in nodes}) <= max_clusters:
        return nodes, [], []

    units: dict[tuple[str | None, str | None], list[Mapping[str, Any]]] = {}
    for node in nodes:
        units.setdefault((node["instance"], node["tenant"]), []).append(node)
    live = {key for key, members in units.items()
            if any(n["status"] != "untouched" or _focused(n, focus) for n in members)}
    candidates = [n for key in sorted(live, key=_unit_order) for n in units[key]]

    # Keep room for summaries; past that, the most interesting active nodes win.
    budget = max(1, max_nodes - max(1, min(20, max_nodes // 5)))
    rank = {status: i for i, status in enumerate(STATUSES)}
    ordered = sorted(candidates, key=lambda n: (not _focused(n, focus),
                                                rank.get(n["status"], len(rank)),
                                                natural_key(n["instance"]),
                                                natural_key(n["label"]), n["id"]))
    expanded_ids = {n["id"] for n in ordered[:budget]}
    # At most max_clusters instances expanded: the first ones in interest order.
    clusters = list(dict.fromkeys(n["instance"] for n in ordered if n["id"] in expanded_ids))
    if len(clusters) > max_clusters:
        kept = set(clusters[:max_clusters])
        expanded_ids = {n["id"] for n in ordered
                        if n["id"] in expanded_ids and n["instance"] in kept}
    expanded = [n for n in nodes if n["id"] in expanded_ids]
    folded_active = len(candidates) - len(expanded)
    rest = [n for n in nodes if n["id"] not in expanded_ids]

    expanded_instances = {n["instance"] for n in expanded}
    # Idle rest of an instance that is on screen: one summary inside its cluster.
    inside: dict[str, _Summary] = {}
    # Wholly idle instances: one summary each, or one per factory if that is still too many.
    idle: dict[str, list[Mapping[str, Any]]] = {}
    loose: list[Mapping[str, Any]] = []
    for node in rest:
        instance = node["instance"]
        if instance is None:
            loose.append(node)
        elif instance in expanded_instances:
            summary = inside.get(instance)
            if summary is None:
                summary = inside[instance] = _Summary(
                    _summary_id(("rest", instance)), instance, instance)
            summary.members.append(node)
            summary.instances.add(instance)
        else:
            idle.setdefault(instance, []).append(node)

    summaries = list(inside.values())
    # One summary per idle instance while they are few; a factory with many idle instances
    # (the usual case: one instance per tenant) gets one summary for all of them.
    factory_of = _factories(idle, all_tenants, routes)
    idle_per_factory: dict[str, int] = {}
    for factory in factory_of.values():
        idle_per_factory[factory] = idle_per_factory.get(factory, 0) + 1
    fits = len(expanded) + len(summaries) + len(idle) + bool(loose) <= max_nodes
    groups: dict[tuple[str, str], _Summary] = {}
    for instance, members in idle.items():
        factory = factory_of[instance]
        key = (("instance", instance) if fits and idle_per_factory[factory] <= GROUP_AT
               else ("factory", factory))
        summary = groups.get(key)
        if summary is None:
            summary = groups[key] = _Summary(_summary_id(key), key[1], None)
        summary.members.extend(members)
        summary.instances.add(instance)
    summaries.extend(groups[key] for key in sorted(groups))
    if loose:
        summary = _Summary(_summary_id(("loose", "")), "unowned nodes", None, loose)
        summaries.append(summary)
    for summary in summaries:
        summary.members.sort(key=lambda n: n["id"])

    note = []
    idle_instances = sum(1 for members in idle.values()
                         if all(n["status"] == "untouched" for n in members))
    idle_nodes = sum(1 for n in rest if n["status"] == "untouched") - sum(
        len(members) for members in idle.values()
        if all(n["status"] == "untouched" for n in members))
    if idle_instances or idle_nodes:
        parts = [_plural(idle_instances, "idle instance")] if idle_instances else []
        if idle_nodes:
            parts.append(_plural(idle_nodes, "idle node") + (
                " of active instances" if idle_instances else ""))
        note.append(f"collapsed {' and '.join(parts)} into "
                    f"{_plural(len(summaries), 'summary node')}")
    if folded_active:
        note.append(f"folded {_plural(folded_active, 'active node')} past "
                    f"max_nodes={max_nodes} / max_clusters={max_clusters} into summaries")
    return expanded, summaries, note


def _unit_order(key: tuple[str | None, str | None]) -> tuple[Any, ...]:
    return (natural_key(key[0]), natural_key(key[1]))
