"""A cell's own epoch, small, under the cell: the one picture of what that cell did.

At the end of a cell that did something reactive (``cells.CellTracker``), the lab shows that
cell's epoch: the nodes it touched (written, recomputed with a new or an equal value, marked
stale, checked, added, removed) with their direct neighbours (what they read and what reads
them) for context, faded, and the config keys it wrote that nobody reads yet, said in words
("no readers yet, nothing recomputes"). Static HTML rather than a live widget, on purpose: it
stays true to its own epoch when later cells change things, it costs nothing after it is drawn
(no subscription to the model), and it is saved in the notebook, so each cell of a tour
carries its own picture even where widgets do not render (GitHub, nbviewer, VS Code).

Legible at a notebook's width: a chain deeper than a few levels is stacked top to bottom
(``render.best_rankdir``), and the picture may shrink to fit the output only down to
``MIN_SCALE`` of its natural size (10 pt Graphviz text at 3/4 scale is 10 px); past that the
output scrolls sideways. Under it, one line of legend.

``%lab --inline off`` turns it off; in a terminal it is off unless turned on, and then a
one-line summary stands in for the picture.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from .epochs import EpochRecord
from .model import LabModel
from .render import (
    LEGEND,
    STATUSES,
    GraphvizNotFoundError,
    LayoutError,
    natural_key,
    render_svg,
    to_dot,
)

__all__ = ["INLINE_MAX_NODES", "MIN_SCALE", "epoch_picture", "epoch_subgraph",
           "epoch_summary", "inline_enabled", "legend_html", "show_cell_epoch"]

#: Nodes drawn at most in an inline picture (touched ones first), and instances expanded.
INLINE_MAX_NODES = 24
INLINE_MAX_CLUSTERS = 6
#: The smallest a picture is drawn, as a share of its natural size (10 pt text -> 10 px).
MIN_SCALE = 0.75
#: Node ids given to config writes that no node reads (they have no node of their own).
UNREAD_IDS = 1 << 60

_log = logging.getLogger("signalpy_lab.lab")
_SIZE_RE = re.compile(r'<svg\b([^>]*?)\swidth="([\d.]+)pt"\s+height="([\d.]+)pt"')
_SWATCH = {  # the legend's colours: lab.css's fills and strokes
    "set": ("#fde68a", "#b45309", "solid"), "recomputed": ("#bbf7d0", "#15803d", "solid"),
    "unchanged": ("#e0f2fe", "#0369a1", "solid"), "stale": ("#fee2e2", "#dc2626", "dashed"),
    "verified": ("#ede9fe", "#6d28d9", "solid"), "added": ("#ecfccb", "#4d7c0f", "dotted"),
    "removed": ("#e5e7eb", "#6b7280", "dashed"), "untouched": ("#f3f4f6", "#9ca3af", "solid"),
}


def has_widget_frontend(shell: Any) -> bool:
    """Jupyter (ipykernel) renders widgets and HTML; terminal IPython and scripts get text."""
    return getattr(shell, "kernel", None) is not None


def inline_enabled(shell: Any, setting: str) -> bool:
    """``%lab --inline``: ``on``, ``off``, or ``auto`` (on in Jupyter, off in a terminal)."""
    return setting == "on" or (setting == "auto" and has_widget_frontend(shell))


def show_cell_epoch(shell: Any, session: Any, record: EpochRecord) -> None:
    """Show what a cell did (its epoch ``record``) under it, if inline pictures are on."""
    if not record.did_something or not inline_enabled(shell, session.inline):
        return
    if has_widget_frontend(shell):
        picture = epoch_picture(session.model, record.number)
        if picture is not None:
            from IPython.display import HTML, display

            display(HTML(picture))
    else:
        summary = epoch_summary(session.model, record.number)
        if summary:
            print(summary)


def _write_rows(record: EpochRecord, present: dict[str, dict[str, Any]]) -> list[dict]:
    """Rows for the config keys the epoch wrote that no node read: a real node if the key
    has one by now (read later in the same cell), else a node of its own."""
    rows = []
    for index, write in enumerate(record.writes):
        if write.readers:
            continue
        detail = f"no readers yet, = {write.new}"
        node = present.get(write.key)
        if node is not None:  # read later in the same cell: it has a node by now
            rows.append({**node, "status": "set",
                         "detail": f"set before its first read, = {write.new}"})
            continue
        rows.append({"id": UNREAD_IDS + index, "label": write.key, "kind": "signal",
                     "instance": "config", "tenant": write.tenant, "value": write.new,
                     "runs": 0, "readers": 0, "state": "clean", "error": None,
                     "unread": False, "status": "set", "detail": detail, "history": []})
    return rows


def epoch_subgraph(model: LabModel, epoch: int | None = None) -> dict[str, Any] | None:
    """Epoch ``epoch``'s graph cut down to what it did: its touched nodes (statuses of that
    epoch), their neighbours (faded, as context) and its writes nobody reads; None if it did
    nothing."""
    record = model.epoch_record(epoch)
    if not record.did_something:
        return None
    snapshot = model.snapshot(epoch=record.number, live_routes=False)
    touched = record.touched()
    by_id = {n["id"]: n for n in snapshot["nodes"]}
    keep = {i for i in touched if i in by_id}
    for edge in snapshot["edges"]:
        if edge["source"] in touched or edge["target"] in touched:
            keep.update((edge["source"], edge["target"]))
    nodes = []
    for node_id in keep:
        node = by_id[node_id]
        if node_id not in touched and node["status"] != "untouched":
            node = {**node, "status": "untouched"}  # still stale from before: context only
        nodes.append(node)
    writes = _write_rows(record, {n["label"]: n for n in snapshot["nodes"]
                                  if n["kind"] == "signal"})
    written = {row["id"] for row in writes}
    nodes = [n for n in nodes if n["id"] not in written] + writes
    kept = {n["id"] for n in nodes}
    return {**snapshot, "nodes": nodes,
            "edges": [e for e in snapshot["edges"]
                      if e["source"] in kept and e["target"] in kept],
            "record": record}


def epoch_summary(model: LabModel, epoch: int | None = None) -> str:
    """``In [9]: %config set … — set tenants.globex.db_url; stale tenant-db-globex.db_url``
    (one line; "" if the epoch did nothing)."""
    record = model.epoch_record(epoch)
    if not record.did_something:
        return ""
    labels = {n["id"]: n["label"] for n in model.snapshot(
        include_providers=True, live_routes=False, epoch=record.number)["nodes"]}
    parts = []
    for status in STATUSES[:-1]:
        names = sorted((labels[i] for i, step in record.touched().items()
                        if step.status == status and i in labels), key=natural_key)
        if names:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more"
                                            if len(names) > 4 else "")
            parts.append(f"{status} {shown}")
    parts.extend(w.sentence() for w in record.writes)
    return f"{record.title()} — {'; '.join(parts)}" if parts else ""


def legend_html(statuses: set[str] | None = None) -> str:
    """One line of legend: a swatch and a word per status (only ``statuses`` if given)."""
    items = []
    for status in STATUSES:
        if statuses is not None and status not in statuses:
            continue
        fill, stroke, line = _SWATCH[status]
        items.append(
            f'<span class="signalpy-legend-item" style="display:inline-flex;'
            f'align-items:center;gap:3px;margin-right:10px">'
            f'<span style="display:inline-block;width:14px;height:9px;background:{fill};'
            f'border:1.5px {line} {stroke};border-radius:3px"></span>'
            f"{html.escape(LEGEND[status])}</span>")
    return ('<div class="signalpy-legend" style="font-size:11px;color:#4b5563;'
            f'margin-top:2px;line-height:1.6">{"".join(items)}</div>')


def _sized(svg: str) -> tuple[str, float]:
    """The SVG sized by CSS: as wide as the output, at most its natural size and at least
    ``MIN_SCALE`` of it (the wrapper scrolls past that); returns it and its natural width in
    px."""
    match = _SIZE_RE.search(svg)
    if match is None:
        return svg, 0.0
    width = float(match[2]) * 4 / 3  # Graphviz sizes in pt; CSS px are 3/4 pt
    style = (f'style="width:100%;max-width:{width:.0f}px;min-width:{width * MIN_SCALE:.0f}px;'
             'height:auto;display:block"')
    sized = svg[:match.start()] + f"<svg{match[1]} {style}" + svg[match.end():]
    return re.sub(r'(<svg\b[^>]*?)\sstyle="max-width: 100%; height: auto"', r"\1", sized,
                  count=1), width


def epoch_picture(model: LabModel, epoch: int | None = None) -> str | None:
    """HTML: a caption, the small SVG of the epoch, the sentences for its writes nobody
    reads, and a legend (None if it did nothing or no layout binary is available)."""
    small = epoch_subgraph(model, epoch)
    if small is None:
        return None
    record: EpochRecord = small["record"]
    graph = to_dot(small, max_nodes=INLINE_MAX_NODES, max_clusters=INLINE_MAX_CLUSTERS)
    try:
        svg = render_svg(graph, embed_style=True)
    except (GraphvizNotFoundError, LayoutError) as exc:
        _log.info("inline epoch picture skipped: %s", exc)
        return None
    svg, _width = _sized(svg[svg.find("<svg"):])
    title = record.title()
    counts = record.summary(STATUSES)
    shown = {n["status"] for n in small["nodes"]}
    notes = "".join(f'<div class="signalpy-write">{html.escape(w.sentence())}</div>'
                    for w in record.writes)
    cell = f' data-cell="{record.cell}"' if record.cell is not None else ""
    return (f'<div class="signalpy-lab signalpy-inline-epoch" data-epoch="{record.number}"'
            f'{cell} title="{html.escape(title)}">'
            f'<div class="signalpy-inline-caption" style="font-size:12px;color:#374151;'
            f'margin-bottom:2px"><b>{html.escape(title)}</b> · epoch {record.number} · '
            f"{html.escape(counts)}"
            + (f" · {html.escape(graph.omitted)}" if graph.omitted else "") + "</div>"
            f'<div class="signalpy-inline-canvas" style="overflow-x:auto;max-width:100%">'
            f"{svg}</div>"
            f'<div style="font-size:12px;color:#374151">{notes}</div>'
            f"{legend_html(shown | {'untouched'})}</div>")
