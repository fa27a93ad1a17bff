"""The epoch timeline: what each past epoch did, kept sparse and bounded.

An epoch is one cell, one magic or one background burst that changed something (see
``LabModel``). When the next one begins, the model freezes what the closing one did into an
``EpochRecord``: for each node that did something (written, recomputed with a new or an equal
value, verified, stale) its status, its value at the end of the epoch and the cause it
recorded. Nodes that did nothing are not stored: "untouched" is the absence of an entry, so a
record costs in proportion to what the epoch touched, not to the size of the graph (a
``%config set`` of one tenant's key is about the same few hundred bytes at 10 tenants or
at 1,000). ``EPOCHS`` records are kept; older ones are dropped.

Values are the strings the kernel's events carried, so secrets are masked already, and the
labels are the model's own (masked when a cell named a secret).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..kernel.events import Cause

__all__ = ["EPOCHS", "EpochRecord", "EpochTimeline", "NodeStep"]

#: Past epochs kept. 200 covers a long tutorial notebook (the tour has about 40 changes) and
#: a few minutes of background writes; at a few hundred bytes each it stays well under 1 MB.
EPOCHS = 200


@dataclass(frozen=True, slots=True)
class NodeStep:
    """What one node did in one epoch: its status, its value at the end, the recorded cause."""

    status: str
    value: str | None
    cause: Cause | None


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """One epoch as it ended (or, for the current one, as it is so far)."""

    number: int
    label: str | None
    started: float
    ended: float | None  # None: the current epoch
    nodes: Mapping[int, NodeStep] = field(default_factory=dict)

    def status_of(self, node_id: int) -> str:
        step = self.nodes.get(node_id)
        return step.status if step is not None else "untouched"

    def counts(self) -> dict[str, int]:
        """How many nodes had each status (untouched ones are not counted)."""
        out: dict[str, int] = {}
        for step in self.nodes.values():
            out[step.status] = out.get(step.status, 0) + 1
        return out

    def title(self) -> str:
        """``[10] %config set tenants.globex.db_url …`` (the strip's step label)."""
        return f"[{self.number}] {self.label or ('start' if self.number == 0 else 'epoch')}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the epoch and, per touched node id, its status, value and cause."""
        return {
            "number": self.number, "label": self.label, "started": self.started,
            "ended": self.ended, "counts": self.counts(),
            "nodes": {str(node_id): {
                "status": step.status, "value": step.value,
                "cause": None if step.cause is None else {
                    "signal": step.cause.signal, "command": step.cause.command,
                    "old": step.cause.old, "new": step.cause.new},
            } for node_id, step in sorted(self.nodes.items())},
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

    def numbers(self) -> list[int]:
        return [r.number for r in self._records]
