"""The graph of a past epoch, as it was: its nodes and edges, statuses, values and run counts.

The model keeps only what each epoch changed (``epochs.py``), so the past is worked out
backwards from the present:

* **structure**: start from the current graph and undo every later epoch's
  ``StructureDelta`` (drop the nodes and edges it added, put back the ones it removed, as
  their rows were). What is left is the graph at the end of epoch N: an instance added later
  is absent, one removed later is present, one removed *in* N is put back with the status
  ``removed`` (drawn struck out);
* **run counts**: today's count minus the runs every later epoch recorded;
* **values**: the value the node had at the end of N (its own step, else the latest earlier
  epoch that recorded one), else the value before the first later change, else (nothing
  changed it since) today's value. Where none is known any more (it changed later, and what
  it was before fell out of the timeline), ``value_then`` is False and today's value is shown.

A signal of an on-demand provider (a config key) that no node read at N is ``unread`` then,
exactly as a ghost is today.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .epochs import EpochRecord, EpochTimeline

__all__ = ["as_of", "structure_at"]


def structure_at(rows: Mapping[int, Mapping[str, Any]], edges: Iterable[tuple[int, int]],
                 record: EpochRecord, later: list[EpochRecord],
                 ) -> tuple[dict[int, Mapping[str, Any]], set[tuple[int, int]]]:
    """The nodes (id -> row) and edges at the end of ``record``'s epoch, from the current
    ``rows`` and ``edges`` and the epochs after it (``later``, oldest first, the current one
    last)."""
    nodes = dict(rows)
    pairs = set(edges)
    for newer in reversed(later):
        newer.structure.undo(nodes, pairs)
    # Removed in this very epoch: shown, struck out, with the edges it had.
    nodes.update(record.structure.nodes_removed)
    pairs |= record.structure.edges_removed
    return nodes, pairs


def as_of(rows: Mapping[int, Mapping[str, Any]], edges: set[tuple[int, int]],
          record: EpochRecord, later: list[EpochRecord], timeline: EpochTimeline,
          on_demand: frozenset[str]) -> dict[int, dict[str, Any]]:
    """``rows`` (the graph of ``record``'s epoch) restyled as they were at its end: status,
    value (``value_then``), runs, readers, and the values it had up to then (``history``)."""
    runs_after: dict[int, int] = {}
    before_later: dict[int, str | None] = {}  # the value before its first later change
    for newer in later:
        for node_id, step in newer.nodes.items():
            runs_after[node_id] = runs_after.get(node_id, 0) + step.runs
            if node_id not in before_later and not step.carried:
                before_later[node_id] = step.before
    # Values up to then: its own step, then older epochs, newest first (the walk stops as
    # soon as every node is settled; a record holds only what it touched).
    history: dict[int, list[str]] = {}
    value_then: dict[int, str] = {}
    earlier = [r for r in reversed(timeline) if r.number < record.number]
    for older in [record, *earlier]:
        for node_id, step in older.nodes.items():
            if step.value is None or node_id not in rows:
                continue
            seen = history.setdefault(node_id, [])
            if len(seen) < 5 and (not seen or seen[0] != step.value):
                seen.insert(0, step.value)
            value_then.setdefault(node_id, step.value)
    readers: dict[int, int] = {}
    for source, _target in edges:
        readers[source] = readers.get(source, 0) + 1
    out: dict[int, dict[str, Any]] = {}
    for node_id, row in rows.items():
        step = record.nodes.get(node_id)
        if node_id in value_then:
            value, known = value_then[node_id], True
        elif before_later.get(node_id) is not None:
            value, known = before_later[node_id], True
        elif node_id not in runs_after:  # nothing changed it since
            value, known = row["value"], True
        else:
            value, known = row["value"], False
        count = readers.get(node_id, 0)
        owner = (row.get("instance") or "").partition("@")[0]
        past = {**row, "status": step.status if step is not None else "untouched",
                "runs": max(0, row["runs"] - runs_after.get(node_id, 0)),
                "readers": count if row["kind"] == "signal" else row.get("readers", 0),
                "unread": row["kind"] == "signal" and count == 0 and owner in on_demand,
                "history": history.get(node_id, []), "value_then": known}
        if known and row["kind"] != "effect":
            past["value"] = value
        out[node_id] = past
    return out
