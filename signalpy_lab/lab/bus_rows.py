"""The bus table as a pure model: one row per served handler, natural sort, filter, window.

The ``BusTable`` widget only renders what this computes and sends back what the user clicked
or typed, so every rule below is testable without a browser:

* **One row per instance runnable and target.** A tenant instance is reachable under its
  factory's routed name *and* each contract's (``postgres-db.query`` and ``tenant-db.query``
  both reach ``postgres-db-acme.query`` for ``acme``): one row, listing both names.
* **Natural order**: ``t2`` before ``t10``, in every text column; numbers sort as numbers.
* **Filter**: every word must match; a plain word matches inside the tenant, instance,
  runnable or a routed name; ``tenant:t1`` (also ``instance:``, ``runnable:``, ``via:``)
  matches one column exactly.
* **Route kind** (``via``): ``local`` for this kernel's bus, ``transport`` for a handler
  served by a process-isolated instance's worker (``RouteInfo.via``).
* **Most recently called first**, as an option: called rows newest first, the rest after.
* **A window** of at most ``limit`` rows, and a sentence saying how many are hidden and why.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import choices

__all__ = [
    "DEFAULT_LIMIT",
    "FILTER_FIELDS",
    "SORT_COLUMNS",
    "BusView",
    "bus_view",
    "merge_routes",
    "natural_key",
]

#: Rows sent to the browser at most (the table scrolls within them).
DEFAULT_LIMIT = 200
#: Columns the table sorts by (the keys of a row).
SORT_COLUMNS = ("target", "instance", "factory", "runnable", "via", "state", "calls",
                "errors", "latency", "last_call")
#: ``field:value`` filter words, and the row key each one matches.
FILTER_FIELDS = {"tenant": "target", "target": "target", "instance": "instance",
                 "runnable": "runnable", "via": "via"}
_NUMERIC = frozenset({"calls", "errors", "latency", "last_call"})
_DIGITS = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=65536)  # the same few thousand names, sorted at every flush
def natural_key(text: object) -> tuple[Any, ...]:
    """A sort key where digit runs compare as numbers: ``t2`` < ``t10``; case-insensitive.

    >>> sorted(["t10", "t2", "t1"], key=natural_key)
    ['t1', 't2', 't10']
    """
    parts = _DIGITS.split("" if text is None else str(text).lower())
    # re.split with a group alternates text (even) and digits (odd), so positions compare
    # like with like.
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def _short(text: str | None, limit: int = 48) -> str:
    if text is None:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def merge_routes(routes: Iterable[Mapping[str, Any]],
                 last_calls: Mapping[str, tuple[float, int]] | None = None,
                 ) -> list[dict[str, Any]]:
    """Plain route rows (``RouteInfo``) merged per (handler, target), as table rows.

    ``last_calls`` maps a handler name to ``(timestamp, sequence)`` of its latest call
    (``LabModel.last_calls``). The routed names of a row come factory name first.
    """
    last_calls = last_calls or {}
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for route in routes:
        key = (route["handler"], route["target"])
        row = merged.get(key)
        if row is None:
            latency = route["last_latency"]
            called = last_calls.get(route["handler"])
            row = merged[key] = {
                "key": f"{route['handler']}[{route['target']}]",
                "routes": [],
                "target": route["target"],
                "instance": route["instance"],
                "factory": route["factory"],
                "runnable": route["handler"].rsplit(".", 1)[-1],
                "handler": route["handler"],
                "via": route.get("via") or "local",
                "state": route["state"],
                "calls": route["calls"],
                "errors": route["errors"],
                "latency_s": latency,
                "latency": f"{latency * 1e3:.2f} ms" if latency is not None else "",
                "last_call": called[0] if called else None,
                "last_call_seq": called[1] if called else 0,
                "result": _short(f"failed: {route['last_error']}" if route["last_error"]
                                 else route["last_result"]),
                "error": route["last_error"],
            }
        row["routes"].append(route["route"])
    for row in merged.values():
        prefix = f"{row['factory']}."
        row["routes"].sort(key=lambda name, p=prefix: (not name.startswith(p), natural_key(name)))
        row["route"] = row["routes"][0]
        row["arrow"] = (", ".join(f"{name}[{row['target']}]" for name in row["routes"])
                        + f" → {row['handler']}")
    return list(merged.values())


@dataclass(frozen=True)
class BusView:
    """What the table shows: the window of rows, and how many the filter or limit hid."""

    rows: list[dict[str, Any]]
    total: int
    matched: int

    @property
    def hidden(self) -> int:
        return self.total - len(self.rows)

    def summary(self, filter: str = "") -> str:
        """``200 routes · 12 match 'acme' · all shown`` / ``… · 188 hidden``."""
        parts = [f"{self.total} route{'' if self.total == 1 else 's'}"]
        if filter.strip():
            parts.append(f"{self.matched} match {filter.strip()!r}")
        beyond = self.matched - len(self.rows)
        if not self.hidden:
            parts.append("all shown")
        else:
            why = []
            if self.total - self.matched:
                why.append(f"{self.total - self.matched} by the filter")
            if beyond:
                why.append(f"{beyond} past the first {len(self.rows)}: narrow the filter")
            parts.append(f"showing {len(self.rows)}, {self.hidden} hidden ({'; '.join(why)})")
        return " · ".join(parts)


def _matches(row: Mapping[str, Any], words: list[str]) -> bool:
    for word in words:
        field, sep, value = word.partition(":")
        if sep and field in FILTER_FIELDS:
            if str(row[FILTER_FIELDS[field]]).lower() != value:
                return False
            continue
        haystack = (row["target"], row["instance"], row["runnable"], *row["routes"])
        if not any(word in str(text).lower() for text in haystack):
            return False
    return True


def bus_view(rows: list[dict[str, Any]], *, sort_by: str = "target", descending: bool = False,
             filter: str = "", recent_first: bool = False,
             limit: int = DEFAULT_LIMIT) -> BusView:
    """Filter, sort and cut ``merge_routes`` rows for the table.

    Ties in the sort column keep the natural (target, instance, runnable) order.
    """
    if sort_by not in SORT_COLUMNS:
        raise ValueError(f"Cannot sort the bus table by {sort_by!r}. "
                         f"{choices(sort_by, SORT_COLUMNS)}")
    words = filter.lower().split()
    kept = [row for row in rows if _matches(row, words)] if words else list(rows)
    kept.sort(key=lambda r: (natural_key(r["target"]), natural_key(r["instance"]),
                             natural_key(r["runnable"])))
    if sort_by in _NUMERIC:
        field, sign = _field(sort_by), -1 if descending else 1
        # never called (None) sorts after every number, in either direction
        kept.sort(key=lambda r: (r[field] is None, sign * (r[field] or 0)))
    elif sort_by != "target" or descending:
        kept.sort(key=lambda r: natural_key(r[sort_by]), reverse=descending)
    if recent_first:
        kept.sort(key=lambda r: -r["last_call_seq"])  # stable: uncalled rows keep their order
    return BusView(rows=kept[:max(0, limit)], total=len(rows), matched=len(kept))


def _field(column: str) -> str:
    return "latency_s" if column == "latency" else column
