"""Live notebook views of a ``LabModel``: the graph, the bus table, the event log.

Each widget is an anywidget (a plain ES module in ``static/``, no npm build) whose synced
traits are computed in Python from the model's plain-data snapshot, so everything a test wants
to know is asserted on traits without a browser.

Live updates: a widget subscribes to ``model.on_change``, which fires on whatever thread the
kernel emitted from (the kernel's loop thread, a background task, plain Python). The callback
only marks the widget dirty and arms its ``Throttle``; the lab's one flush thread then re-reads
the model and pushes all trait changes in one message (``hold_sync``), at most once per
``interval`` (100 ms, longer while redraws are slow), so a burst of writes costs one redraw.
``flush()`` does the same immediately (a notebook's last cell, a test), ``refresh()`` redraws
even when nothing changed, ``close()`` unsubscribes.

The graph is laid out only when its structure changes: ``svg`` is replaced then, while every
epoch's statuses and values travel as ``classes`` / ``details`` maps that the ES module applies
to the SVG already on the page. A flush is incremental: when neither the graph's structure nor
the set of active nodes changed (so the collapse is the same), only the rows the model changed
since the last flush (new row objects) are restyled, instead of a whole ``to_dot``.

The epoch timeline: ``epochs`` is the strip of kept epochs (``[10] %config set ...``), and
``epoch`` the one shown (None: live, following the newest). ``show_epoch(N)`` is what a
click on a step does; ``show_epoch(None)`` goes back to live.
"""

from __future__ import annotations

import dataclasses
import heapq
import html
import itertools
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import anywidget
import ipywidgets
import traitlets

from ..errors import ExportFormatError, choices
from ..kernel._engine import describe as engine_line
from ..kernel.introspection import plain
from .bus_rows import DEFAULT_LIMIT, SORT_COLUMNS, bus_view, merge_routes
from .epochs import EpochRecord
from .model import LabModel, LogEntry
from .render import (
    STATUSES,
    DotGraph,
    GraphvizNotFoundError,
    LayoutError,
    apply_state,
    class_of,
    detail_of,
    natural_key,
    render_svg,
    to_dot,
)
from .text import transport_line

__all__ = [
    "EXPORT_FORMATS",
    "FLUSH_INTERVAL",
    "REDRAW_SHARE",
    "BusTable",
    "EventLog",
    "ExportFormatError",
    "GraphWidget",
    "LabPanel",
    "Throttle",
    "stop_flush_thread",
]

#: Seconds between two throttled flushes of one widget.
FLUSH_INTERVAL = 0.1
#: The most of the time a widget's throttled flushes may take (see ``Throttle``).
REDRAW_SHARE = 0.05
#: What ``export()`` can produce.
EXPORT_FORMATS = ("dot", "json", "svg")

_STATIC = Path(__file__).parent / "static"
_log = logging.getLogger("signalpy_lab.lab")
T = TypeVar("T")


class _Scheduler:
    """One daemon thread that runs every ``Throttle``'s due runs, in time order.

    Why not a ``threading.Timer`` per run: that starts an OS thread for every redraw of every
    view (ten a second each while a burst lasts), and starting one costs the kernel's thread
    a GIL hand-off each time. One thread, started on first use, waits on a condition instead.
    """

    #: Seconds the thread waits with nothing scheduled before it ends (the next run starts
    #: it again), so an idle lab holds no thread.
    IDLE = 10.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Throttle, object]] = []  # a heap
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def stop(self) -> None:
        """Drop every scheduled run and end the thread (``%unload_ext``)."""
        with self._cond:
            self._due.clear()
            thread, self._thread = self._thread, None
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def schedule(self, delay: float, throttle: Throttle, ticket: object) -> None:
        with self._cond:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), throttle,
                                       ticket))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="signalpy-lab-flush",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                if not self._due:
                    self._cond.wait(self.IDLE)
                if self._thread is not me:  # stopped
                    return
                if not self._due:
                    self._thread = None  # idle: the next schedule() starts another
                    return
                due, _, throttle, ticket = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue  # re-read the heap: an earlier run may have been scheduled
                heapq.heappop(self._due)
            try:
                throttle._fire(ticket)
            except Exception:  # the thread serves every view: one failure must not stop it
                _log.exception("lab view update failed")


_scheduler = _Scheduler()


def stop_flush_thread() -> None:
    """End the lab's flush thread and drop pending redraws (the extension's unload)."""
    _scheduler.stop()


class Throttle:
    """Run ``action`` on the lab's flush thread ``interval`` seconds after the first ``poke()``.

    Pokes while a run is pending are absorbed; a poke during or after the run arms the next
    one, so a burst of N pokes costs about ``burst duration / interval + 1`` runs.

    Runs take at most ``share`` of the time: after a run that took ``t`` seconds the next
    waits at least ``t * (1 / share - 1)``. A redraw of a few milliseconds keeps the 100 ms
    rhythm; one that costs 50 ms (thousands of nodes changed in a burst across every tenant)
    stretches it to about a second, so during such a burst each view takes at most a
    twentieth of the time (``REDRAW_SHARE``) and the kernel the rest.
    """

    def __init__(self, action: Callable[[], None], interval: float = FLUSH_INTERVAL, *,
                 share: float = REDRAW_SHARE) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share is the most of the time runs may take, in (0, 1]; "
                             f"got {share!r}")
        self.interval = interval
        self.share = share
        self.delay = interval  # before the next run: interval, or longer after a slow run
        self._action = action
        self._lock = threading.Lock()
        self._ticket: object | None = None  # the pending run's, None when none is pending
        self._closed = False

    @property
    def pending(self) -> bool:
        """Whether a run is scheduled."""
        return self._ticket is not None

    def poke(self) -> None:
        """Schedule a run unless one is already pending (cheap; callable from any thread)."""
        with self._lock:
            if self._ticket is not None or self._closed:
                return
            ticket = self._ticket = object()
        _scheduler.schedule(self.delay, self, ticket)

    def cancel(self) -> None:
        """Drop the pending run, if any."""
        with self._lock:
            self._ticket = None

    def close(self) -> None:
        """Cancel and refuse further pokes."""
        with self._lock:
            self._closed = True
        self.cancel()

    def _fire(self, ticket: object) -> None:
        with self._lock:
            if self._ticket is not ticket:  # cancelled (or superseded) since it was scheduled
                return
            self._ticket = None
        started = time.perf_counter()
        try:
            self._action()
        finally:
            spent = time.perf_counter() - started
            self.delay = max(self.interval, spent * (1 / self.share - 1))


def _retry(read: Callable[[], T], attempts: int = 3) -> T:
    """``read()``, retried when the kernel mutated a dict we were iterating (another thread)."""
    for attempt in range(attempts):
        try:
            return read()
        except RuntimeError as exc:
            if "changed size during iteration" not in str(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


# GraphWidgets per model, so a BusTable's selection highlights every graph of the same model.
_graphs: weakref.WeakKeyDictionary[LabModel, weakref.WeakSet[GraphWidget]] = (
    weakref.WeakKeyDictionary())
_graphs_lock = threading.Lock()


def _graphs_of(model: LabModel) -> list[GraphWidget]:
    with _graphs_lock:
        return list(_graphs.get(model, ()))


class _LiveView:
    """Model subscription, throttled flushing and export, shared by the lab's widgets.

    Subclasses implement ``_update()``: read the model and set traits (called inside
    ``hold_sync``).
    """

    model: LabModel

    def _start(self, model: LabModel, interval: float) -> None:
        self.model = model
        self.flush_count = 0
        self.last_error: str | None = None
        self._closed = False
        self._dirty = True
        self._flush_lock = threading.RLock()
        self._flush_hooks: list[Callable[[Any], None]] = []
        self._throttle = Throttle(self._flush_in_background, interval)
        self._unsubscribe: Callable[[], None] | None = model.on_change(self._model_changed)

    # -- liveness ------------------------------------------------------------------------

    def _model_changed(self, _model: LabModel) -> None:
        # Runs on the kernel's thread, sometimes inside the model's lock: only mark and arm.
        self._dirty = True
        self._throttle.poke()

    def _flush_in_background(self) -> None:
        try:
            self.flush()
        except Exception as exc:  # a timer thread has nobody to raise to
            self.last_error = f"{type(exc).__name__}: {exc}"
            _log.exception("lab widget update failed")

    def on_flush(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(widget)`` after each flush; returns the function that removes it."""
        self._flush_hooks.append(callback)
        return lambda: self._flush_hooks.remove(callback) if callback in self._flush_hooks else None

    def flush(self) -> bool:
        """Apply pending model changes now (instead of at the next tick); True if it did."""
        self._throttle.cancel()
        return self._flush(force=False)

    def refresh(self) -> None:
        """Re-read the model and redraw now, even if nothing is pending."""
        self._throttle.cancel()
        self._flush(force=True)

    def _flush(self, *, force: bool) -> bool:
        with self._flush_lock:
            if self._closed or not (self._dirty or force):
                return False
            self._dirty = False  # changes from here on mark it again and arm the next flush
            self.model.caught_up()
            with self.hold_sync():  # type: ignore[attr-defined]
                self._update()
            self.flush_count += 1
        for hook in list(self._flush_hooks):
            hook(self)
        return True

    def _update(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Unsubscribe from the model, cancel pending flushes and close the widget."""
        self._closed = True
        throttle = getattr(self, "_throttle", None)
        if throttle is not None:
            throttle.close()
        unsubscribe, self._unsubscribe = getattr(self, "_unsubscribe", None), None
        if unsubscribe is not None:
            unsubscribe()
        lock = getattr(self, "_flush_lock", None)
        if lock is not None:
            with lock:  # wait for a flush in flight on the timer thread
                pass
        super().close()  # type: ignore[misc]

    @property
    def subscribed(self) -> bool:
        """Whether the widget still listens to its model."""
        return self._unsubscribe is not None

    # -- export --------------------------------------------------------------------------

    def _graph_for_export(self) -> tuple[DotGraph, dict[str, Any], list[str]]:
        """The graph this widget shows (or the whole model's), its snapshot, highlighted ids."""
        snapshot = _retry(self.model.snapshot)
        return to_dot(snapshot), snapshot, []

    def export(self, format: str = "svg") -> str:
        """The current graph as ``'svg'`` (styled, standalone), ``'dot'`` or ``'json'``.

        >>> widget.export("dot").startswith("digraph")             # doctest: +SKIP
        True
        """
        if format not in EXPORT_FORMATS:
            raise ExportFormatError(f"Cannot export {format!r}. "
                                    f"{choices(str(format), EXPORT_FORMATS)}")
        self.flush()
        graph, snapshot, highlight = self._graph_for_export()
        if format == "dot":
            return graph.source
        if format == "json":
            return json.dumps(snapshot, indent=2, sort_keys=True, default=str)
        return apply_state(render_svg(graph.structure), graph.classes, graph.details,
                           highlight, embed_style=True, labels=graph.labels)


def _caption(snapshot: Mapping[str, Any], graph: DotGraph) -> str:
    """``epoch 2 In [5] '%config set …': 1 set, 1 recomputed, 4 untouched · 6 nodes`` (+ what
    was left out)."""
    epoch = snapshot["epoch"]
    head = f"epoch {epoch['number']}" + (
        f" In [{epoch['cell']}]" if epoch.get("cell") is not None else "") + (
        f" {epoch['label']!r}" if epoch["label"] else "")
    if not epoch.get("live", True):
        head += " (past epoch; live follows the newest)"
    counts: dict[str, int] = {}
    for node in snapshot["nodes"]:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
    parts = [f"{counts[s]} {s}" for s in STATUSES if counts.get(s)]
    tail = graph.omitted or f"{graph.total} node{'' if graph.total == 1 else 's'}"
    return f"{head}: {', '.join(parts) or 'no nodes'} · {tail}"


def strip_entry(record: EpochRecord) -> dict[str, Any]:
    """One step of the timeline: ``head`` (``In [9]``, or ``epoch 4`` outside cells) over
    ``text`` (the command that made the change), ``title`` in full for the hover."""
    head = f"In [{record.cell}]" if record.cell is not None else f"epoch {record.number}"
    text = record.label or ("start" if record.number == 0 else "nothing named")
    summary = record.summary(STATUSES)
    return {"number": record.number, "cell": record.cell, "head": head, "text": text,
            "label": record.label or "", "title": record.title(), "summary": summary,
            "hover": f"epoch {record.number} · {record.title()}\n"
                     + "\n".join(record.commands[1:6]) + ("\n" if record.commands[1:] else "")
                     + summary,
            "live": record.ended is None}


class GraphWidget(_LiveView, anywidget.AnyWidget):
    """The reactive graph, restyled live with each epoch's statuses.

    >>> GraphWidget(model, tenant="globex")                     # doctest: +SKIP
    """

    _esm = _STATIC / "graph.js"
    _css = _STATIC / "lab.css"

    svg = traitlets.Unicode("").tag(sync=True)
    classes = traitlets.Dict().tag(sync=True)
    details = traitlets.Dict().tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    highlight = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: DOT id -> the node's label (``tenant-db-globex.db_url``): the SVG's ``data-node``.
    labels = traitlets.Dict().tag(sync=True)
    #: The timeline strip: one entry per kept epoch, oldest first, the current one last.
    epochs = traitlets.List(traitlets.Dict()).tag(sync=True)
    #: The epoch shown; None is live (the newest, as it happens).
    epoch = traitlets.Int(None, allow_none=True).tag(sync=True)
    #: The tenant filter box: only this tenant's nodes (and what they read); "" for all.
    tenant_filter = traitlets.Unicode("").tag(sync=True)
    #: The tenants the filter box offers, in natural order (t2 before t10).
    tenants = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, model: LabModel, tenant: str | None = None, instance: str | None = None,
                 include_providers: bool = False, *, max_nodes: int = 150,
                 focus: str | Iterable[str | int] | None = None, epoch: int | None = None,
                 interval: float = FLUSH_INTERVAL, **kwargs: Any) -> None:
        if epoch is not None:
            model.epoch_record(epoch)  # LookupError now, naming the kept epochs
        super().__init__(epoch=epoch, tenant_filter=tenant or "", **kwargs)
        self.tenant = tenant
        self.instance = instance
        self.include_providers = include_providers
        self.max_nodes = max_nodes
        self.focus = focus
        self.graph: DotGraph | None = None
        self.snapshot: dict[str, Any] = {}
        self.layouts = 0  # how many times this widget needed a new layout
        self.incremental_flushes = 0  # flushes that restyled changed rows only
        self._rows: dict[int, dict[str, Any]] = {}  # the last snapshot's rows, by id
        self._active: frozenset[int] = frozenset()
        self._source_stale = False  # graph.source predates an incremental flush
        self._strip_key: tuple[int, int] | None = None
        self._structure_key: str | None = None
        self._target: str | None = None
        self._start(model, interval)
        with _graphs_lock:
            _graphs.setdefault(model, weakref.WeakSet()).add(self)
        self.refresh()

    def __repr__(self) -> str:
        shown = f"{len(self.graph.shown)} of {self.graph.total} nodes" if self.graph else "empty"
        where = "".join(f" {k}={v!r}" for k, v in
                        (("tenant", self.tenant), ("instance", self.instance)) if v)
        epoch = self.snapshot.get("epoch", {})
        when = f"epoch {epoch.get('number')}" + (
            f" (In [{epoch['cell']}])" if epoch.get("cell") is not None else "") + (
            "" if epoch.get("live", True) else ", past")
        return f"<GraphWidget{where}: {shown}, {when}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _with_static(self, super()._repr_mimebundle_(**kwargs), self.static_html)

    def static_html(self) -> str:
        """The graph as it is now, as static HTML (caption, SVG with this epoch's styles,
        legend; secrets masked like everywhere): what front ends that do not run widgets
        show instead of the live view (nbconvert, GitHub, VS Code without saved state)."""
        try:
            svg = self.export("svg")
        except Exception as exc:  # no layout binary: the caption and tables still say it
            svg = f"<pre>{html.escape(str(exc))}</pre>"
        svg = svg[svg.find("<svg"):] if "<svg" in svg else svg
        from .inline import legend_html

        return (f'<div class="signalpy-lab signalpy-static" data-view="graph">'
                f'<div class="signalpy-caption">{html.escape(self.caption)}</div>'
                f'<div style="overflow:auto;max-width:100%">{svg}</div>'
                f"{legend_html()}</div>")

    @traitlets.observe("tenant_filter")
    def _tenant_filter_changed(self, change: Mapping[str, Any]) -> None:
        self.tenant = change["new"].strip() or None
        if getattr(self, "_flush_lock", None) is not None:  # after __init__ (and from a key)
            self.refresh()

    def _update(self) -> None:
        epoch = self.epoch
        try:
            snapshot = _retry(lambda: self.model.snapshot(
                tenant=self.tenant, instance=self.instance,
                include_providers=self.include_providers, epoch=epoch, live_routes=False))
        except LookupError:  # the pinned epoch fell out of the timeline: follow live
            epoch = None
            snapshot = _retry(lambda: self.model.snapshot(
                tenant=self.tenant, instance=self.instance,
                include_providers=self.include_providers, live_routes=False))
        self.tenants = sorted({i["target"] for i in snapshot["instances"] if i["target"]},
                              key=natural_key)
        rows = {n["id"]: n for n in snapshot["nodes"]}
        active = frozenset(i for i, n in rows.items() if n["status"] != "untouched")
        graph = self._restyled(snapshot, rows, active)
        if graph is None:
            graph = to_dot(snapshot, max_nodes=self.max_nodes, focus=self.focus)
            self._source_stale = False
        else:
            self.incremental_flushes += 1
            self._source_stale = True
        self.snapshot, self.graph, self._rows, self._active = snapshot, graph, rows, active
        if graph.structure_key != self._structure_key:
            self.labels = {f"n{n['id']}": n["label"] for n in snapshot["nodes"]
                           if n["id"] in graph.shown}
            self.svg = self._layout(graph)
            self._structure_key = graph.structure_key
        self.classes = graph.classes
        self.details = graph.details
        self.caption = _caption(snapshot, graph)
        if self.tenant is not None and self.tenant not in self.tenants:
            self.caption = (f"no instance serves tenant {self.tenant!r}. "
                            f"{choices(self.tenant, self.tenants)}")
        self.highlight = self._highlight_ids()
        self._update_strip()

    def _restyled(self, snapshot: Mapping[str, Any], rows: dict[int, dict[str, Any]],
                  active: frozenset[int]) -> DotGraph | None:
        """The last graph with only the changed rows restyled, if nothing else can differ.

        Same structure version, same nodes, same active set (the collapse depends only on
        which nodes are active) and nothing folded past ``max_nodes`` (where the exact
        statuses rank nodes): then the layout, the summaries and every unchanged row's
        class and value line are what ``to_dot`` would give again.
        """
        graph, previous = self.graph, self.snapshot
        if (graph is None or not snapshot["epoch"]["live"] or not previous
                or not previous["epoch"].get("live", True)
                or previous["structure_version"] != snapshot["structure_version"]
                or active != self._active or rows.keys() != self._rows.keys()
                or "folded" in graph.omitted):
            return None
        classes, details = dict(graph.classes), dict(graph.details)
        for node_id, row in rows.items():
            if self._rows[node_id] is not row:
                dot_id = f"n{node_id}"
                if graph.drawn_as.get(node_id) == dot_id:
                    classes[dot_id] = class_of(row)
                    details[dot_id] = detail_of(row)
        return dataclasses.replace(graph, classes=classes, details=details)

    def _update_strip(self) -> None:
        """The timeline strip, rebuilt only when an epoch began (it is up to 200 entries)."""
        model = self.model
        key = (model.epoch.number, len(model.timeline), model.epoch_record().label)
        if key == self._strip_key:
            return
        self._strip_key = key
        self.epochs = [strip_entry(record) for record in model.epochs()]

    # -- the epoch timeline ----------------------------------------------------------------

    def show_epoch(self, number: int | None) -> None:
        """Show epoch ``number`` on the graph (None: live, following the newest epoch).

        >>> panel.show_epoch(10)        # what the migration did; panel.show_epoch(None) after
        """
        if number is not None:
            self.model.epoch_record(number)  # LookupError naming the kept epochs
        self.epoch = number

    @traitlets.observe("epoch")
    def _epoch_changed(self, change: Mapping[str, Any]) -> None:
        if getattr(self, "_flush_lock", None) is not None:  # after __init__ (and from a click)
            self.refresh()

    def _layout(self, graph: DotGraph) -> str:
        try:
            laid_out = render_svg(graph.structure)
        except (GraphvizNotFoundError, LayoutError) as exc:
            self.last_error = str(exc)
            return f'<pre class="signalpy-empty">{html.escape(str(exc))}</pre>'
        self.layouts += 1
        # innerHTML wants the <svg> element, not the XML prolog and DOCTYPE before it
        laid_out = laid_out[laid_out.find("<svg"):]
        return apply_state(laid_out, graph.classes, graph.details)

    # -- highlighting --------------------------------------------------------------------

    def highlight_target(self, target: str | None) -> None:
        """Highlight the nodes of the instance(s) serving ``target`` (None clears)."""
        self._target = target
        with self._flush_lock:
            self.highlight = self._highlight_ids()

    def _highlight_ids(self) -> list[str]:
        if self._target is None or self.graph is None:
            return []
        instances = {r["instance"] for r in self.snapshot.get("routes", ())
                     if r["target"] == self._target}
        return self.graph.ids_for(instances=instances, tenant=self._target,
                                  nodes=self.snapshot["nodes"])

    def _graph_for_export(self) -> tuple[DotGraph, dict[str, Any], list[str]]:
        if self.graph is None:
            self.refresh()
        assert self.graph is not None
        graph, snapshot = self.graph, dict(self.snapshot)
        if self._source_stale:  # an incremental flush restyled classes only, not the source
            graph = to_dot(snapshot, max_nodes=self.max_nodes, focus=self.focus)
        snapshot["routes"] = _retry(self.model.routes)  # with current call counts
        snapshot["epochs"] = [r.to_dict() for r in self.model.epochs()]
        return graph, snapshot, list(self.highlight)

    def close(self) -> None:
        """Unsubscribe and stop taking part in bus-table highlighting."""
        model = getattr(self, "model", None)
        with _graphs_lock:
            graphs = _graphs.get(model) if model is not None else None
            if graphs is not None:
                graphs.discard(self)
        super().close()


class BusTable(_LiveView, anywidget.AnyWidget):
    """One row per served handler and target; clicking a row selects that tenant.

    Sorting, filtering, "most recent first" and the row window are computed in Python
    (``bus_rows``) from the traits the browser sets (``sort_by``, ``descending``,
    ``filter``, ``recent_first``); ``rows`` is the window, ``summary`` says how many rows
    are hidden. Selecting sets ``selected_target`` and highlights the serving instance's
    nodes in every ``GraphWidget`` of the same model.

    >>> BusTable(model, filter="tenant:t7", recent_first=True)  # doctest: +SKIP
    """

    _esm = _STATIC / "bus.js"
    _css = _STATIC / "lab.css"

    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    selected_target = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    sort_by = traitlets.Enum(SORT_COLUMNS, default_value="target").tag(sync=True)
    descending = traitlets.Bool(False).tag(sync=True)
    filter = traitlets.Unicode("").tag(sync=True)
    recent_first = traitlets.Bool(False).tag(sync=True)
    limit = traitlets.Int(DEFAULT_LIMIT, min=1).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    matched = traitlets.Int(0).tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)

    def __init__(self, model: LabModel, *, interval: float = FLUSH_INTERVAL,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._start(model, interval)
        self.refresh()

    def __repr__(self) -> str:
        return f"<BusTable: {self.summary}, selected={self.selected_target!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _with_static(self, super()._repr_mimebundle_(**kwargs), self.static_html)

    def static_html(self) -> str:
        """The rows shown now, as a static HTML table (see ``GraphWidget.static_html``)."""
        self.flush()
        columns = [("target", "target"), ("instance", "instance"), ("runnable", "runnable"),
                   ("arrow", "route"), ("via", "via"), ("state", "state"),
                   ("calls", "calls"), ("errors", "errors"), ("latency", "last latency"),
                   ("result", "last result")]
        head = "".join(f"<th>{html.escape(title)}</th>" for _, title in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row.get(key, '') or ''))}</td>"
                                        for key, _ in columns) + "</tr>" for row in self.rows)
        return (f'<div class="signalpy-lab signalpy-static" data-view="bus">'
                f'<div class="signalpy-bus-summary">{html.escape(self.summary)}</div>'
                f'<table class="signalpy-table"><thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table></div>")

    def _update(self) -> None:
        # Routes alone: a full snapshot would also walk the whole reactive graph.
        routes = _retry(self.model.routes)  # with the model's counts for transport routes
        merged = merge_routes(routes, dict(self.model.last_calls))
        view = bus_view(merged, sort_by=self.sort_by, descending=self.descending,
                        filter=self.filter, recent_first=self.recent_first, limit=self.limit)
        self.rows = view.rows
        self.total, self.matched = view.total, view.matched
        # Where each transport stands: a dead or restarting server shows here, not only in logs.
        transports = [transport_line(t) for t in _retry(self.model.kernel.transports)]
        self.summary = " · ".join([view.summary(self.filter), *transports])

    @traitlets.observe("sort_by", "descending", "filter", "recent_first", "limit")
    def _view_changed(self, change: Mapping[str, Any]) -> None:
        if getattr(self, "_flush_lock", None) is not None:  # after __init__
            self.refresh()

    def sort(self, column: str, descending: bool | None = None) -> None:
        """Sort by ``column`` (what a header click does: again reverses the order)."""
        if column not in SORT_COLUMNS:
            raise ValueError(f"Cannot sort the bus table by {column!r}. "
                             f"{choices(column, SORT_COLUMNS)}")
        if descending is None:
            descending = not self.descending if column == self.sort_by else False
        with self.hold_trait_notifications():
            self.sort_by, self.descending = column, descending

    @traitlets.observe("selected_target")
    def _selected(self, change: Mapping[str, Any]) -> None:
        for graph in _graphs_of(self.model):
            graph.highlight_target(change["new"])

    def select(self, target: str | None) -> None:
        """Select ``target``'s rows (what a click does); None clears the selection."""
        self.selected_target = target


def _with_static(widget: Any, bundle: Any, static: Callable[[], str]) -> Any:
    """A widget's mimebundle plus ``text/html`` (its static picture) and a whole
    ``text/plain`` (ipywidgets cuts the repr at 110 characters, mid-quote). ``bundle`` is
    a dict (ipywidgets) or a (data, metadata) pair (anywidget); the result has its shape."""
    if bundle is None:  # closed
        return None
    pair = isinstance(bundle, tuple)
    data, metadata = (dict(bundle[0]), bundle[1]) if pair else (dict(bundle), None)
    data["text/plain"] = repr(widget)
    try:
        data["text/html"] = static()
    except Exception:  # a static fallback must never break the live view
        _log.exception("the static view of %r failed", type(widget).__name__)
    return (data, metadata) if pair else data


def _where(entry: Mapping[str, Any]) -> str:
    """``In [9] #4`` (the cell and epoch of a log entry), ``#4`` outside cells, ``In [9]`` for
    a call in a cell that changed nothing reactive."""
    parts = [f"In [{entry['cell']}]"] if entry.get("cell") is not None else []
    if entry.get("epoch") is not None:
        parts.append(f"#{entry['epoch']}")
    return " ".join(parts) + (f" {entry['command']}" if entry.get("command") else "")


def _entry(entry: LogEntry) -> dict[str, Any]:
    data = plain(entry)
    data["where"] = _where(data)
    millis = int(entry.ts * 1e3) % 1000
    data["time"] = time.strftime("%H:%M:%S", time.localtime(entry.ts)) + f".{millis:03d}"
    return data


class EventLog(_LiveView, anywidget.AnyWidget):
    """The model's recent events, newest first, each with its epoch and command."""

    _esm = _STATIC / "log.js"
    _css = _STATIC / "lab.css"

    entries = traitlets.List(traitlets.Dict()).tag(sync=True)

    def __init__(self, model: LabModel, limit: int = 30, *, tenant: str | None = None,
                 interval: float = FLUSH_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limit = limit
        self.tenant = tenant
        self._start(model, interval)
        self.refresh()

    def __repr__(self) -> str:
        return f"<EventLog: {len(self.entries)} of the last {self.limit} events>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _with_static(self, super()._repr_mimebundle_(**kwargs), self.static_html)

    def static_html(self) -> str:
        """The entries shown now, as a static HTML list (see ``GraphWidget.static_html``)."""
        self.flush()
        items = "".join(
            f"<li><span class='epoch'>{html.escape(_where(e))}</span> "
            f"<span class='kind'>{html.escape(e['kind'])}</span> "
            f"<span class='text'>{html.escape(e['text'])}</span></li>" for e in self.entries)
        return (f'<div class="signalpy-lab signalpy-static" data-view="events">'
                f'<ol class="signalpy-log">{items or "<li>no events yet</li>"}</ol></div>')

    def _update(self) -> None:
        self.entries = [_entry(e) for e in self.model.recent(self.limit, tenant=self.tenant)]

    def _graph_for_export(self) -> tuple[DotGraph, dict[str, Any], list[str]]:
        snapshot = _retry(lambda: self.model.snapshot(tenant=self.tenant))
        return to_dot(snapshot), snapshot, []


class LabPanel(ipywidgets.VBox):
    """The graph above, the bus table and the event log in tabs below, on one model."""

    def __init__(self, model: LabModel, *, tenant: str | None = None,
                 instance: str | None = None, include_providers: bool = False,
                 limit: int = 30, max_nodes: int = 150, interval: float = FLUSH_INTERVAL,
                 **kwargs: Any) -> None:
        self.model = model
        self.graph = GraphWidget(model, tenant, instance, include_providers,
                                 max_nodes=max_nodes, interval=interval)
        self.bus = BusTable(model, interval=interval)
        self.events = EventLog(model, limit, tenant=tenant, interval=interval)
        self.tabs = ipywidgets.Tab(children=[self.bus, self.events], titles=("Bus", "Events"))
        # Which build of the reactive engine runs (issue 21): compiled or pure, and why.
        self.header = ipywidgets.HTML(f'<small class="signalpy-engine">'
                                      f"{html.escape(engine_line())}</small>")
        super().__init__(children=[self.header, self.graph, self.tabs], **kwargs)

    def __repr__(self) -> str:
        return f"<LabPanel: {self.graph!r}, {self.bus!r}, {self.events!r}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return _with_static(self, super()._repr_mimebundle_(**kwargs), self.static_html)

    def static_html(self) -> str:
        """The panel as it is now, as static HTML: the graph, the bus table, the events."""
        return (f'<div class="signalpy-lab signalpy-static" data-view="panel">'
                f"{self.header.value}{self.graph.static_html()}<h4>Bus</h4>{self.bus.static_html()}"
                f"<h4>Events</h4>{self.events.static_html()}</div>")

    @property
    def views(self) -> tuple[GraphWidget, BusTable, EventLog]:
        return self.graph, self.bus, self.events

    def flush(self) -> bool:
        """Flush every view now; True if any had pending changes."""
        flushed = [view.flush() for view in self.views]  # every view, not just the first
        return any(flushed)

    def refresh(self) -> None:
        """Redraw every view now."""
        for view in self.views:
            view.refresh()

    def export(self, format: str = "svg") -> str:
        """The graph's export (see ``GraphWidget.export``)."""
        return self.graph.export(format)

    def show_epoch(self, number: int | None) -> None:
        """Show epoch ``number`` on the panel's graph (None: live); see the timeline strip."""
        self.graph.show_epoch(number)

    def close(self) -> None:
        """Close the views, the tabs and the panel."""
        for view in self.views:
            view.close()
        self.tabs.close()
        super().close()
