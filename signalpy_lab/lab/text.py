"""Plain-text and HTML tables: what the magics show where no widget front end exists.

Terminal IPython and scripts get aligned text; notebooks get the same rows as HTML.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "Table",
    "factories_table",
    "graph_table",
    "instances_table",
    "log_table",
    "routes_table",
]

STATUS_MARK = {
    "recomputed": "●", "unchanged": "◐", "set": "◆", "stale": "○", "verified": "✓",
    "added": "+", "removed": "✕", "untouched": "·",
}


class Table:
    """Rows under headers, printable as text and displayable as HTML."""

    def __init__(self, headers: Sequence[str], rows: Iterable[Sequence[Any]],
                 title: str | None = None, footer: str | None = None) -> None:
        self.headers = list(headers)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]
        self.title = title
        self.footer = footer

    def __str__(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            widths = [max(w, len(v)) for w, v in zip(widths, row)]
        line = "  ".join(h.ljust(w) for h, w in zip(self.headers, widths)).rstrip()
        rule = "  ".join("-" * w for w in widths)
        body = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in self.rows]
        parts = ([self.title] if self.title else []) + [line, rule, *body]
        if not self.rows:
            parts.append("(none)")
        if self.footer:
            parts.append(self.footer)
        return "\n".join(parts)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>"
                       for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>"
                                        for v in row) + "</tr>" for row in self.rows)
        title = f"<b>{html.escape(self.title)}</b>" if self.title else ""
        footer = f"<div><small>{html.escape(self.footer)}</small></div>" if self.footer else ""
        empty = "<tr><td><i>none</i></td></tr>" if not self.rows else ""
        return f"{title}<table><thead><tr>{head}</tr></thead><tbody>{body}{empty}</tbody>" \
               f"</table>{footer}"


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1e3:.2f} ms"


def instances_table(infos: Iterable[Any], transports: Iterable[Any] = ()) -> Table:
    """One row per instance; 'may call' is what it declared, 'granted' its policy's globs.

    'isolation' is where it runs (``inline`` in this process, ``process`` in a worker) and
    'pid' the worker's process id while one runs; a worker that died shows ``failed`` with
    the exit code in 'error'. 'transport' is how a worker is reached (``connected``,
    ``reconnecting``, ``restarting`` while its private server is being restarted), and the
    footer has one line per transport saying why. 'sandbox' is what confines a worker
    (``landlock v7``, or ``none (why)`` where the OS has no Landlock: said, never silent).
    """
    lines = [transport_line(t) for t in transports]
    return Table(
        ["instance", "factory", "target", "state", "isolation", "pid", "transport", "sandbox",
         "handlers", "may call", "granted", "error"],
        [(i.name, i.factory, i.target or "", i.state, getattr(i, "isolation", "inline"),
          getattr(i, "pid", None) or "", getattr(i, "transport", None) or "",
          getattr(i, "sandbox", None) or "", len(i.handlers),
          ", ".join(i.declared), _grant(i.policy), i.error or "") for i in infos],
        title="Instances", footer="; ".join(lines) or None,
    )


def transport_line(info: Any) -> str:
    """``nats:lab connected to nats://…`` or ``nats:lab restarting: <why, what next>``."""
    if info.state == "connected" and info.url:
        return f"{info.name} connected to {info.url}"
    return f"{info.name} {info.state}" + (f": {info.detail}" if info.detail and
                                          info.detail != info.state else "")


def _grant(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return ""
    parts = [", ".join(policy["invoke_allow"]) or "nothing more"]
    if policy["publish_allow"] != ["*"]:
        parts.append("publish " + (", ".join(policy["publish_allow"]) or "nothing"))
    if policy["audit"]:
        parts.append("audited")
    return "; ".join(parts)


def factories_table(infos: Iterable[Any]) -> Table:
    return Table(
        ["factory", "provides", "runnables", "computeds", "depends", "instances"],
        [(f.name, ", ".join(f.provides), ", ".join(f.runnables), ", ".join(f.computeds),
          ", ".join(f.depends), ", ".join(f.instances)) for f in infos],
        title="Factories",
    )


def routes_table(routes: Iterable[Any]) -> Table:
    rows = []
    for r in routes:
        get = r.get if isinstance(r, dict) else lambda k, r=r: getattr(r, k)
        via = (r.get("via") if isinstance(r, dict) else getattr(r, "via", None)) or "local"
        rows.append((get("target"), get("instance"), get("factory"),
                     get("route").rsplit(".", 1)[1],
                     f"{get('route')}[{get('target')}] → {get('handler')}", via, get("state"),
                     get("calls"), get("errors"), _ms(get("last_latency")),
                     get("last_error") or get("last_result") or ""))
    return Table(["target", "instance", "factory", "runnable", "route", "via", "state", "calls",
                  "errors", "last latency", "last result"], rows, title="Bus routes")


def graph_table(snapshot: dict[str, Any], footer: str | None = None) -> Table:
    """The reactive graph as rows grouped by instance, with this epoch's status marks."""
    labels = {n["id"]: n["label"] for n in snapshot["nodes"]}
    reads: dict[int, list[str]] = {}
    for edge in snapshot["edges"]:
        reads.setdefault(edge["target"], []).append(labels.get(edge["source"], "?"))
    nodes = sorted(snapshot["nodes"], key=lambda n: (n["instance"] or "", n["kind"] != "signal",
                                                      n["label"]))
    rows = [(f"{STATUS_MARK.get(n['status'], '?')} {n['status']}", n["instance"] or "",
             n["tenant"] or "", n["kind"], n["label"], n["runs"],
             n["error"] or (f"no readers, {n['value']}" if n.get("unread") else n["value"]),
             ", ".join(sorted(reads.get(n["id"], [])))) for n in nodes]
    epoch = snapshot["epoch"]
    title = f"Reactive graph — epoch {epoch['number']}" + (
        f" ({epoch['label']})" if epoch.get("label") else "")
    legend = "  ".join(f"{mark} {name}" for name, mark in STATUS_MARK.items())
    return Table(["status", "instance", "tenant", "kind", "node", "runs", "value", "reads"],
                 rows, title=title, footer="\n".join(filter(None, [legend, footer])))


def log_table(entries: Iterable[Any]) -> Table:
    return Table(["epoch", "command", "event"],
                 [(e.epoch, e.command or "", e.text) for e in entries],
                 title="Events (newest first)")
