"""A state-changing magic's own epoch, small, under its cell.

``%config set``, ``%invoke``, ``%instantiate`` and ``%remove`` end by showing the current
epoch as a small static picture: the nodes it touched and their direct neighbours (what they
read and what reads them), styled with that epoch's statuses. Static HTML rather than a live
widget, on purpose: it stays true to its own epoch when later cells change things, it costs
nothing after it is drawn (no subscription to the model), and it is saved in the notebook, so
each cell of the tour carries its own picture even where widgets do not render (GitHub,
nbviewer). ``%lab --inline off`` turns it off; in a terminal it is off unless turned on, and
then a one-line summary stands in for the picture.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from .model import LabModel
from .render import STATUSES, GraphvizNotFoundError, LayoutError, render_svg, to_dot

__all__ = ["INLINE_MAX_NODES", "epoch_picture", "epoch_summary", "epoch_subgraph"]

#: Nodes drawn at most in an inline picture (touched ones first).
INLINE_MAX_NODES = 24

_log = logging.getLogger("signalpy_lab.lab")


def epoch_subgraph(model: LabModel, epoch: int | None = None) -> dict[str, Any] | None:
    """The snapshot cut down to epoch ``epoch``'s touched nodes and their neighbours."""
    snapshot = model.snapshot(epoch=epoch, live_routes=False)
    touched = {n["id"] for n in snapshot["nodes"] if n["status"] != "untouched"}
    if not touched:
        return None
    keep = set(touched)
    for edge in snapshot["edges"]:
        if edge["source"] in touched or edge["target"] in touched:
            keep.update((edge["source"], edge["target"]))
    return {**snapshot, "nodes": [n for n in snapshot["nodes"] if n["id"] in keep],
            "edges": [e for e in snapshot["edges"]
                      if e["source"] in keep and e["target"] in keep]}


def epoch_summary(model: LabModel, epoch: int | None = None) -> str:
    """``epoch 12: set tenants.globex.db_url; recomputed tenant-db-globex.db_url`` or ""."""
    record = model.epoch_record(epoch)
    labels = {n["id"]: n["label"] for n in model.snapshot(include_providers=True,
                                                          live_routes=False)["nodes"]}
    parts = []
    for status in STATUSES[:-1]:
        names = sorted(labels[i] for i, step in record.nodes.items()
                       if step.status == status and i in labels)
        if names:
            parts.append(f"{status} {', '.join(names)}")
    return f"epoch {record.number}: {'; '.join(parts)}" if parts else ""


def epoch_picture(model: LabModel, epoch: int | None = None) -> str | None:
    """HTML: a caption and the small SVG of the epoch (None if it touched nothing or no
    layout binary is available)."""
    small = epoch_subgraph(model, epoch)
    if small is None:
        return None
    graph = to_dot(small, max_nodes=INLINE_MAX_NODES)
    try:
        svg = render_svg(graph, embed_style=True)
    except (GraphvizNotFoundError, LayoutError) as exc:
        _log.info("inline epoch picture skipped: %s", exc)
        return None
    svg = svg[svg.find("<svg"):]
    info = small["epoch"]
    title = f"[{info['number']}] {info['label'] or 'epoch'}"
    return (f'<div class="signalpy-lab signalpy-inline-epoch" data-epoch="{info["number"]}" '
            f'title="{html.escape(title)}" style="max-width: 40em">'
            f'<div style="font-size: 11px; color: #6b7280">{html.escape(title)}</div>'
            f"{svg}</div>")
