"""The epoch timeline: what each past epoch did, and enough to draw the graph as it was.

An epoch is one notebook cell (or one background burst) that did something reactive: wrote a
key, recomputed, ran an effect, added or removed an instance (see ``LabModel``). When the next
one begins, the model freezes what the closing one did into an ``EpochRecord``:

* for each node that did something (written, recomputed with a new or an equal value,
  verified, marked stale, added, removed) its status, its value at the end of the epoch, the
  value before it, how many times it ran, and the cause it recorded. Nodes that did nothing
  are not stored: "untouched" is the absence of an entry, so a record costs in proportion to
  what the epoch touched, not to the size of the graph (a ``%config set`` of one tenant's key
  is about the same few hundred bytes at 10 tenants or at 1,000);
* the config writes nobody reads yet (``writes``): the key had no signal, so no node moved,
  and the lab says so instead of showing nothing;
* the structure it changed (``StructureDelta``): the node ids that appeared, the rows of the
  nodes that went (as they were), the edges added and removed. Walking these back from the
  current graph gives the graph of any kept epoch: nodes that did not exist yet are absent,
  instances removed later are present (``LabModel.snapshot(epoch=N)``);
* the notebook cell's prompt number (``In [9]``) and the commands that made the changes (a
  magic's line, or the Python line that wrote: ``config.set(...)``), for its title.

``EPOCHS`` records are kept; older ones are dropped. Values are the strings the kernel's events
carried, so secrets are masked already, and the labels are the model's own (masked too).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..kernel.events import Cause

__all__ = ["EPOCHS", "EpochRecord", "EpochTimeline", "NodeStep", "StructureDelta", "Write",
           "title_of"]

#: Past epochs kept. 200 covers a long tutorial notebook (the tour has about 30 changes) and
#: a few minutes of background writes; at a few hundred bytes each it stays well under 1 MB.
EPOCHS = 200

#: How long a command may be in a title before it is cut (the full text is in ``commands``).
TITLE_WIDTH = 72


@dataclass(frozen=True, slots=True)
class NodeStep:
    """What one node did in one epoch.

    ``carried``: stale since an earlier epoch and left alone in this one (the graph of the
    epoch shows it stale; the cell's own picture does not count it as something it did).
    """

    status: str
    value: str | None  # at the end of the epoch (None: not known)
    cause: Cause | None
    runs: int = 0  # body runs in this epoch
    before: str | None = None  # the value before the epoch's first change, if known
    carried: bool = False


@dataclass(frozen=True, slots=True)
class Write:
    """A config write that moved no node: nobody reads ``key`` yet (``readers == 0``), or
    its readers' value stayed equal."""

    key: str
    old: str
    new: str
    readers: int
    command: str | None
    tenant: str | None = None

    def sentence(self) -> str:
        """``tenants.umbrella.db_url = 'pg://...' (was <unset>): no readers yet, nothing
        recomputes``."""
        why = ("no readers yet, nothing recomputes" if self.readers == 0 else
               "equal value, nothing changed")
        return f"{self.key} = {self.new} (was {self.old}): {why}"


@dataclass(frozen=True, slots=True)
class StructureDelta:
    """How an epoch changed the graph's structure (node ids are the kernel's uids)."""

    nodes_added: frozenset[int] = frozenset()
    #: the nodes that went, as their snapshot rows were when last seen
    nodes_removed: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    edges_added: frozenset[tuple[int, int]] = frozenset()
    edges_removed: frozenset[tuple[int, int]] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.nodes_added or self.nodes_removed or self.edges_added
                    or self.edges_removed)

    def then(self, later: StructureDelta) -> StructureDelta:
        """This delta followed by ``later``: one delta (a node added then removed is gone)."""
        if not later:
            return self
        if not self:
            return later
        removed = {**self.nodes_removed, **later.nodes_removed}
        added = (self.nodes_added - later.nodes_removed.keys()) | later.nodes_added
        for node_id in self.nodes_added & later.nodes_removed.keys():
            removed.pop(node_id, None)  # born and gone within: never part of either end
        for node_id in later.nodes_added & self.nodes_removed.keys():
            removed.pop(node_id, None)  # ids are never reused; kept for symmetry
        edges_added = (self.edges_added - later.edges_removed) | (
            later.edges_added - self.edges_removed)
        edges_removed = (self.edges_removed - later.edges_added) | (
            later.edges_removed - self.edges_added)
        return StructureDelta(frozenset(added), removed, frozenset(edges_added),
                              frozenset(edges_removed))

    def undo(self, rows: dict[int, Mapping[str, Any]], edges: set[tuple[int, int]]) -> None:
        """Turn the graph after this delta (``rows``, ``edges``, changed in place) into the
        graph before it."""
        for node_id in self.nodes_added:
            rows.pop(node_id, None)
        rows.update(self.nodes_removed)
        edges -= self.edges_added
        edges |= self.edges_removed


EMPTY = StructureDelta()


def title_of(number: int, label: str | None, cell: int | None) -> str:
    """``In [9]: %config set tenants.globex.db_url …`` (a cell's epoch), ``background:
    …`` (no cell), ``start`` (epoch 0)."""
    text = label or ("start" if number == 0 else "nothing named")
    if len(text) > TITLE_WIDTH:
        text = text[: TITLE_WIDTH - 1] + "…"
    return f"In [{cell}]: {text}" if cell is not None else text


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One epoch as it ended (or, for the current one, as it is so far)."""

    number: int
    label: str | None
    started: float
    ended: float | None  # None: the current epoch
    nodes: Mapping[int, NodeStep] = field(default_factory=dict)
    #: the prompt number of the notebook cell that made it (``In [9]``), None outside cells
    cell: int | None = None
    #: the distinct commands behind its changes, in order (magic lines, Python lines)
    commands: tuple[str, ...] = ()
    writes: tuple[Write, ...] = ()
    structure: StructureDelta = EMPTY

    def status_of(self, node_id: int) -> str:
        step = self.nodes.get(node_id)
        return step.status if step is not None else "untouched"

    def touched(self) -> dict[int, NodeStep]:
        """The nodes this epoch did something to (not those merely still stale)."""
        return {i: s for i, s in self.nodes.items() if not s.carried}

    def counts(self) -> dict[str, int]:
        """How many nodes this epoch gave each status (untouched and carried-stale ones are
        not counted)."""
        out: dict[str, int] = {}
        for step in self.nodes.values():
            if not step.carried:
                out[step.status] = out.get(step.status, 0) + 1
        return out

    @property
    def did_something(self) -> bool:
        """Whether it touched a node or wrote a key (a cell's picture is drawn only then)."""
        return bool(self.writes) or any(not s.carried for s in self.nodes.values())

    def title(self) -> str:
        """``In [9]: %config set tenants.globex.db_url …`` (the timeline step's label)."""
        return title_of(self.number, self.label, self.cell)

    def summary(self, order: tuple[str, ...]) -> str:
        """``1 set, 1 recomputed`` (+ ``1 write nobody reads``), in ``order``."""
        counts = self.counts()
        parts = [f"{counts[s]} {s}" for s in order if counts.get(s)]
        unread = sum(1 for w in self.writes if w.readers == 0)
        if unread:
            parts.append(f"{unread} write{'s' if unread > 1 else ''} nobody reads yet")
        return ", ".join(parts) or "nothing touched"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the epoch, its touched nodes (status, value, runs, cause), its writes
        nobody read, and how it changed the structure."""
        structure = self.structure
        return {
            "number": self.number, "label": self.label, "title": self.title(),
            "cell": self.cell, "commands": list(self.commands), "started": self.started,
            "ended": self.ended, "counts": self.counts(),
            "nodes": {str(node_id): {
                "status": step.status, "value": step.value, "runs": step.runs,
                "carried": step.carried,
                "cause": None if step.cause is None else {
                    "signal": step.cause.signal, "command": step.cause.command,
                    "old": step.cause.old, "new": step.cause.new},
            } for node_id, step in sorted(self.nodes.items())},
            "writes": [{"key": w.key, "old": w.old, "new": w.new, "readers": w.readers,
                        "command": w.command} for w in self.writes],
            "structure": {
                "nodes_added": sorted(structure.nodes_added),
                "nodes_removed": sorted(structure.nodes_removed),
                "edges_added": sorted(structure.edges_added),
                "edges_removed": sorted(structure.edges_removed),
            },
        }


class EpochTimeline:
    """The last ``limit`` closed epochs, oldest first, looked up by number."""

    def __init__(self, limit: int = EPOCHS) -> None:
        if limit < 1:
            raise ValueError(f"an epoch timeline keeps at least 1 epoch, got {limit!r}")
        self.limit = limit
        self._records: deque[EpochRecord] = deque(maxlen=limit)

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[EpochRecord]:
        return iter(list(self._records))

    def __reversed__(self) -> Iterator[EpochRecord]:
        return iter(list(reversed(self._records)))

    def append(self, record: EpochRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()

    def get(self, number: int) -> EpochRecord | None:
        """The closed epoch ``number``, if still kept (numbers are consecutive)."""
        records = self._records
        if not records:
            return None
        index = number - records[0].number
        if 0 <= index < len(records) and records[index].number == number:
            return records[index]
        return next((r for r in records if r.number == number), None)

    def after(self, number: int) -> list[EpochRecord]:
        """The kept epochs newer than ``number``, oldest first."""
        return [r for r in self._records if r.number > number]

    def numbers(self) -> list[int]:
        return [r.number for r in self._records]

    def oldest(self) -> int | None:
        return self._records[0].number if self._records else None
