"""``%why INSTANCE.COMPUTED``: why a node did (or did not) recompute, from recorded causes.

Devtools usually show which edges *could* carry a change. The lab records what *did*: the
write that marked a node stale (signal, old and new value, the command or cell that wrote
it), the chain of nodes it travelled through, and, when a node did not recompute, which of its
inputs did not change or which upstream recompute returned an equal value and stopped it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..errors import choices
from .model import LabModel

__all__ = ["Explanation", "explain"]


@dataclass
class Explanation:
    """A verdict line and supporting lines; ``str()`` renders it as text."""

    label: str
    verdict: str
    status: str
    lines: list[str] = field(default_factory=list)
    chain: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"{self.label}: {self.verdict}", *(f"  {line}" for line in self.lines)])

    __repr__ = __str__  # `%why` returns it; IPython shows it once, as text


def _index(snapshot: dict[str, Any]) -> tuple[dict[int, dict[str, Any]], dict[int, list[int]],
                                              dict[str, dict[str, Any]]]:
    by_id = {n["id"]: n for n in snapshot["nodes"]}
    inputs: dict[int, list[int]] = {}
    for edge in snapshot["edges"]:
        inputs.setdefault(edge["target"], []).append(edge["source"])
    by_label = {n["label"]: n for n in snapshot["nodes"]}
    return by_id, inputs, by_label


def _chain(inputs: dict[int, list[int]], start: int, goal: int,
           by_id: dict[int, dict[str, Any]]) -> list[str]:
    """Labels on a dependency path from ``goal`` (a signal) down to ``start`` (BFS upward)."""
    parents: dict[int, int | None] = {start: None}
    queue = deque([start])
    while queue:
        current = queue.popleft()
        if current == goal:
            path = []
            node: int | None = current
            while node is not None:
                path.append(by_id[node]["label"])
                node = parents[node]
            return path
        for source in inputs.get(current, ()):
            if source not in parents:
                parents[source] = current
                queue.append(source)
    return []


def _upstream_signals(inputs: dict[int, list[int]], start: int,
                      by_id: dict[int, dict[str, Any]]) -> list[str]:
    seen, stack, found = {start}, [start], []
    while stack:
        for source in inputs.get(stack.pop(), ()):
            if source in seen:
                continue
            seen.add(source)
            stack.append(source)
            if by_id[source]["kind"] == "signal":
                found.append(by_id[source]["label"])
    return sorted(found)


def _describe_cause(cause: Any, model: LabModel | None = None, shown: int | None = None
                    ) -> str:
    """``tenants.globex.db_url changed from 'a' to 'b' by `%config set …` in epoch 3 (In
    [9])``: the epoch of the write is named when it is not the epoch shown (a lazy recompute
    answers to a write cells earlier)."""
    by = f" by `{cause.command}`" if cause.command else ""
    when = ""
    written = model.epoch_of_cause(cause) if model is not None else None
    if written is not None and written.number != shown:
        cell = f" (In [{written.cell}])" if written.cell is not None else ""
        when = f" in epoch {written.number}{cell}"
    return f"{cause.signal} changed from {cause.old} to {cause.new}{by}{when}"


def _latest_write(model: LabModel, before: int, by_id: dict[int, dict[str, Any]],
                  upstream: list[str]) -> str:
    """What the latest write before now had to do with the node (the question a learner
    asks of a node that did not recompute): ``the latest write, tenants.globex.db_url in
    epoch 4 (In [9]), is not among its inputs``, or that one of its inputs was written then
    and it has been up to date since; "" without a kept write."""
    for record in reversed(model.epochs()):
        if record.number > before:
            continue
        keys = sorted(by_id[i]["label"] for i, step in record.touched().items()
                      if step.status == "set" and i in by_id)
        keys += [w.key for w in record.writes if w.readers == 0]
        if not keys:
            continue
        cell = f" (In [{record.cell}])" if record.cell is not None else ""
        mine = [k for k in keys if k in upstream]
        if mine:
            return (f"its input {', '.join(mine)} was last written in epoch "
                    f"{record.number}{cell}; it has been up to date since")
        return (f"the latest write, {', '.join(keys)} in epoch {record.number}{cell}, is not "
                "among its inputs")
    return ""


def explain(model: LabModel, label: str, epoch: int | None = None) -> Explanation:
    """Explain the current epoch's outcome for the node labelled ``label`` (or epoch N's).

    A past epoch is explained from what the timeline kept: each node's status and cause then.
    """
    snapshot = model.snapshot(include_providers=True, epoch=epoch)
    by_id, inputs, by_label = _index(snapshot)
    node = by_label.get(label)
    if node is None:
        derived = [n["label"] for n in snapshot["nodes"] if n["kind"] != "signal"]
        raise LookupError(f"No reactive node {label!r}. {choices(label, derived)}")
    past = None if snapshot["epoch"]["live"] else model.epoch_record(snapshot["epoch"]["number"])

    def status_of(node_id: int) -> str:
        if past is not None:
            return past.status_of(node_id)
        activity = model.activity.get(node_id)
        return activity.status if activity else "untouched"

    status = status_of(node["id"])
    activity = model.activity.get(node["id"])
    epoch_info = snapshot["epoch"]
    shown = epoch_info["number"]
    cell = f"In [{epoch_info['cell']}]: " if epoch_info.get("cell") is not None else ""
    where = f"in epoch {shown}" + (
        f" ({cell}{epoch_info['label']})" if epoch_info["label"] else "")
    lines: list[str] = []
    chain: list[str] = []
    if past is not None:
        step = past.nodes.get(node["id"])
        cause = step.cause if step is not None else None  # a later cause would mislead
    else:
        cause = activity.last_cause if activity else None

    if status in ("recomputed", "unchanged", "stale") and cause is not None:
        chain = _chain(inputs, node["id"], cause.signal_id, by_id)
        if status == "stale":
            verdict = (f"stale {where}, not yet recomputed: computeds are lazy and re-run on "
                       "their next read")
        elif status == "unchanged":
            verdict = (f"recomputed {where} but returned an equal value, so the cascade "
                       "stopped here")
        else:
            verdict = f"recomputed {where}"
        lines.append(f"because {_describe_cause(cause, model, shown)}")
        if chain:
            lines.append("through " + " → ".join(chain))
    elif status in ("recomputed", "unchanged"):  # no write behind it: its first run
        upstream = _upstream_signals(inputs, node["id"], by_id)
        verdict = f"ran for the first time {where}: its first read (computeds are lazy)"
        lines.append(f"it reads {', '.join(upstream) if upstream else 'no signal'}")
    elif status == "added":
        verdict = (f"new {where}, not run yet: a computed runs on its first read, so nothing "
                   "it depends on is known yet")
    elif status == "removed":
        verdict = f"removed {where}: its instance was removed, and the node with it"
    elif status == "verified":
        verdict = f"did NOT recompute {where}: it was checked and none of its inputs changed"
        for source in inputs.get(node["id"], ()):
            source_status = status_of(source)
            reason = {
                "unchanged": "recomputed but returned an equal value (stopped the cascade)",
                "verified": "checked, unchanged",
                "untouched": "did not change",
            }.get(source_status, source_status)
            lines.append(f"input {by_id[source]['label']}: {reason}")
        if cause is not None:
            lines.append(f"it was marked stale because {_describe_cause(cause, model, shown)}")
    elif node["runs"] == 0 and node["kind"] != "signal":
        # Dependencies are recorded by running: a computed that never ran has read nothing,
        # so "none of the written signals is among its inputs" would be true but misleading.
        verdict = "has not run yet, so it has read nothing and has no dependencies yet" + (
            " (computeds are lazy: its first read runs it)" if node["kind"] == "computed" else "")
    else:
        written = [n["label"] for n in snapshot["nodes"] if status_of(n["id"]) == "set"]
        upstream = _upstream_signals(inputs, node["id"], by_id)
        if written:
            verdict = (f"did NOT recompute {where}: none of the signals written "
                       f"({', '.join(sorted(written))}) is among its inputs")
        else:
            verdict = f"did NOT recompute {where}: no signal was written"
        lines.append(f"it reads {', '.join(upstream) if upstream else 'no signal'}")
        if not written:
            latest = _latest_write(model, shown, by_id, upstream)
            if latest:
                lines.append(latest)
        if cause is not None:
            lines.append(f"last recomputed because {_describe_cause(cause, model, shown)}")
    if node["history"]:
        lines.append("recent values: " + " → ".join(node["history"]))
    lines.append(f"runs so far: {node['runs']}")
    if node.get("error"):
        lines.append(f"current error: {node['error']}")
    return Explanation(label=label, verdict=verdict, status=status, lines=lines, chain=chain)
