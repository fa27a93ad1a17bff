"""The lab's model: what happened in the kernel, as plain data the views render.

``LabModel`` subscribes to ``kernel.events`` and keeps, per reactive node, what it did in the
current *epoch*: ``set`` (a signal written), ``recomputed`` (ran and changed), ``unchanged``
(ran and returned an equal value, stopping the cascade), ``verified`` (checked, no input
changed, did not run), ``stale`` (marked, not yet re-run), ``added`` (new in this epoch, not
run yet), ``removed`` (its instance went) or ``untouched``. It also keeps a short value history
per node, the recorded cause of each recompute, a bounded event log tied to causes and
commands, and per-route call results.

**Epochs.** One notebook cell that did something reactive is one epoch: its first reactive
event (a write, a recompute, an effect run, an instance added or removed, a config write
nobody reads) begins it, and everything else the cell does joins it, whatever thread or
loop it runs on; a cell that did nothing reactive has no epoch. So a lazy recompute belongs
to the cell that read it, not to the cell that wrote (``%why`` links the two through the
cause). Outside cells, a background burst is an epoch; ``begin_epoch(label)`` opens one by
hand (scripts, tests, benchmarks). An epoch is named after what made the change: the command
(a magic's line, set with ``caused_by``, or the Python line the lab's origin resolver names)
and, for a cell, its prompt number (``In [9]``).

A process-isolated instance's worker relays its events into ``kernel.events`` (stamped by
the host with the worker's own instance and tenant, node ids shifted by a large offset per
worker, its providers' nodes owned by ``"config@w-<name>"``: ``remote/relay.py``), a moment
after they happened: the model treats them like local ones, except that a relayed
event of a command already in this epoch (an echo) does not start a new epoch, and calls
through the transport are counted here (the worker keeps the handler's own counts).

Nothing here imports IPython or ipywidgets; views (text tables, widgets) read ``snapshot()``
and ``version`` / ``structure_version`` to know when to redraw or re-layout.

Listening is cheap because recording waits: the kernel's thread only appends each event to a
queue (and tells the views, once per burst, that something changed). The bookkeeping runs
when anyone reads the model (every public method and attribute applies the queue first, in
the order heard, so a read always sees everything heard before it), or on the emitting thread
once ``PENDING`` events wait. A burst is then recorded in one loop under one lock, not one
lock and one dispatch per event. Cell boundaries apply the queue too, so each event counts in
the epoch it happened in; a background epoch's start is the time of its first event.

Past epochs: when an epoch ends, what it did is frozen into the ``timeline`` (``epochs.py``,
the last ``EPOCHS``), with how it changed the graph's structure (folded in at cell
boundaries and reads: the nodes and edges that came and went since the last look), so
``snapshot(epoch=N)`` shows epoch N as it was: its nodes, edges, statuses, values and run
counts (``past.py``). The model tracks the nodes the current epoch touched, so ending an
epoch costs what it touched, not the graph.

Snapshots are incremental: the model keeps the last snapshot's node rows and, between two
snapshots, the ids its events named (``_dirty``). The next snapshot asks the kernel to
describe only those (``Kernel.graph_nodes``) and rebuilds only their rows; a structural event
(an edge, an instance) makes it take a whole ``Kernel.graph()`` again. Rows are never mutated
once handed out (a changed node gets a new dict), so a view can tell what changed since its
last snapshot by identity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..kernel import Kernel
from ..kernel.events import (
    Cause,
    ComputedRecomputed,
    ComputedVerified,
    EdgeChanged,
    EffectRun,
    Event,
    HandlerInvoked,
    InstanceAdded,
    InstanceRemoved,
    InstanceStateChanged,
    SignalSet,
    UnreadWrite,
)
from ..kernel.introspection import plain
from ..kernel.redaction import redact
from .epochs import EMPTY, EPOCHS, EpochRecord, EpochTimeline, NodeStep, StructureDelta, Write
from .log import LogEntry, describe
from .past import as_of, structure_at
from .rows import ON_DEMAND_INSTANCES, PROVIDER_INSTANCES, RemoteCalls, RowCache, provider_of

__all__ = [
    "EPOCHS",
    "PENDING",
    "HISTORY",
    "RemoteCalls",
    "LOG_SIZE",
    "ON_DEMAND_INSTANCES",
    "PROVIDER_INSTANCES",
    "EpochInfo",
    "LabModel",
    "LogEntry",
    "NodeActivity",
    "describe",
]

_log = logging.getLogger("signalpy_lab.lab")

#: Values remembered per node.
HISTORY = 5
#: Event-log entries kept (newest first).
LOG_SIZE = 500
#: Causes remembered with the epoch of their write (for ``%why``'s "set in epoch 3").
CAUSES = 20_000

#: Events heard but not yet applied, past which the emitting thread applies them itself (a
#: bound on memory, and on the work a later read does at once).
PENDING = 256

#: Outside any cell, changes this close (seconds) to a background epoch's start belong to
#: it: one background burst is one epoch, not one per write.
SETTLE_SECONDS = 0.25

#: Event kinds that are something reactive happening: in a cell, the first one begins the
#: cell's epoch. (A call alone is not: it is logged, under the cell, in no epoch.)
_REACTIVE = frozenset({"signal.set", "computed.recomputed", "computed.verified", "effect.run",
                       "instance.added", "instance.removed", "write.unread"})
#: Kinds that, outside cells, start a background epoch of their own.
_CHANGES = frozenset({"signal.set", "instance.added", "instance.removed", "write.unread",
                      "computed.recomputed", "effect.run"})

@dataclass(slots=True)
class NodeActivity:
    """What one node did in the current epoch, plus its remembered history."""

    status: str = "untouched"
    #: The last ``HISTORY`` (time, value) pairs, oldest first: a list trimmed on append
    #: (cheaper than a bounded deque to create and to append to, on the hot path).
    history: list[tuple[float, str]] = field(default_factory=list)
    last_cause: Cause | None = None
    last_run_changed: bool | None = None
    last_duration: float | None = None
    last_error: str | None = None
    recomputes: int = 0
    #: The epoch it was last touched in, its runs there and its value before that epoch.
    epoch: int = -1
    ran: int = 0
    before: str | None = None
    #: What was running when it last ran (the read that pulled a lazy recompute).
    last_command: str | None = None

    def remember(self, ts: float, value: str) -> None:
        """Add a value to ``history``, dropping the oldest past ``HISTORY``."""
        history = self.history
        history.append((ts, value))
        if len(history) > HISTORY:
            del history[0]


@dataclass(frozen=True)
class EpochInfo:
    number: int
    label: str | None
    started: float
    #: the prompt number of the cell that made it (``In [9]``); None outside cells
    cell: int | None = None


@dataclass
class _Cell:
    """The running notebook cell: its prompt number, a fallback label (its first line),
    and the epoch it began (None until it does something reactive)."""

    number: int | None
    label: str
    epoch: int | None = None


_NO_CELL = _Cell(None, "")


def _applied(name: str, doc: str, *, settable: bool = False) -> Any:
    """A public attribute of ``LabModel`` read (or set) after the pending events are applied."""
    def get(model: LabModel) -> Any:
        model._apply_pending()
        return getattr(model, name)

    def set_(model: LabModel, value: Any) -> None:
        model._apply_pending()
        with model._lock:
            setattr(model, name, value)

    return property(get, set_ if settable else None, doc=doc)


class LabModel(RowCache):
    """Listens to a kernel and remembers, in plain data, what each change did."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._lock = threading.RLock()
        self._activities: dict[int, NodeActivity] = {}
        # (event, the epoch it happened in or None, the cell's prompt number): described
        # lazily, so listening stays cheap
        self._entries: deque[tuple[Event, EpochInfo | None, int | None]] = deque(
            maxlen=LOG_SIZE)
        # handler name -> (time, sequence number) of its latest call: "most recent first"
        self._last_calls: dict[str, tuple[float, int]] = {}
        # (requested name, target or "") -> calls that went through a transport
        self._remote_calls: dict[tuple[str, str], RemoteCalls] = {}
        self._calls = 0
        self._epoch = EpochInfo(0, None, time.time())
        self._explicit = False  # the current epoch was opened by begin_epoch()
        self._cell: _Cell | None = None  # the running cell, if any
        self._last_cell: _Cell = _NO_CELL  # the cell that ran last (its epoch, for pictures)
        # the current epoch's commands (in order), config writes nobody read, and the
        # structure it changed so far
        self._commands: dict[str, None] = {}
        self._writes: list[Write] = []
        self._delta: StructureDelta = EMPTY
        # cause id -> the epoch its write happened in (``%why``: "set in epoch 3")
        self._cause_epochs: OrderedDict[int, int] = OrderedDict()
        self._heard = 0.0  # time.time() of the read that last found events pending
        # Events heard, not yet applied: the kernel's hot path only appends here (see
        # _on_event); every reader applies them first, in order (_apply_pending).
        self._pending: deque[Event] = deque()
        self._version = 0  # bumps on every recorded event (views redraw)
        self._structure_version = 0  # bumps when nodes, edges or instances change (re-layout)
        # a tuple, replaced on change: notifying iterates it without a copy
        self._listeners: tuple[Callable[[LabModel], None], ...] = ()
        self._views_behind = False  # notified views have not read since (see on_change)
        self._recorders: dict[type, Callable[[Any], bool]] = {
            SignalSet: self._on_signal_set,
            ComputedRecomputed: self._on_recomputed, ComputedVerified: self._on_verified,
            EffectRun: self._on_effect_run, HandlerInvoked: self._on_invoked,
            EdgeChanged: self._on_edge, InstanceAdded: self._on_instance,
            InstanceRemoved: self._on_instance, InstanceStateChanged: self._on_instance,
            UnreadWrite: self._on_unread_write,
        }
        #: Closed epochs, oldest first (the current one is ``epoch_record()``).
        self._timeline = EpochTimeline(EPOCHS)
        self._touched: dict[int, NodeActivity] = {}  # nodes not untouched in this epoch
        self._init_rows()  # incremental snapshots: rows of the last one, what changed since
        # The structure last folded into an epoch (ids -> rows, edge pairs), and its version.
        self._base_rows: dict[int, dict[str, Any]] = {}
        self._base_edges: set[tuple[int, int]] = set()
        self._folded_structure = -1
        self._paused = False
        self._unsubscribe = kernel.events.subscribe(self._on_event)
        self._fold_structure(initial=True)  # what exists now predates every epoch

    # -- what the model knows (each read applies the pending events first) ----------------

    activity = _applied("_activities", "Node id -> ``NodeActivity``: what it did this epoch, "
                        "its recent values, its recompute count.")
    log = _applied("_entries", "Newest first: (event, the ``EpochInfo`` it happened in or "
                   "None, the cell's prompt number), the last ``LOG_SIZE``; ``recent()`` "
                   "describes them.")
    last_calls = _applied("_last_calls", "Handler name -> (time, sequence number) of its "
                          "latest call (the bus table's \"most recent first\").")
    remote_calls = _applied("_remote_calls", "(requested name, target or \"\") -> "
                            "``RemoteCalls`` through a transport.")
    epoch = _applied("_epoch", "The current epoch (``EpochInfo``).", settable=True)
    version = _applied("_version", "Bumps with every event applied (views redraw).")
    structure_version = _applied("_structure_version", "Bumps when nodes, edges or instances "
                                 "change (views re-layout).")
    timeline = _applied("_timeline", "The closed epochs (``EpochTimeline``), oldest first.",
                        settable=True)

    @property
    def in_cell(self) -> bool:
        """Whether a cell is running (between ``cell_started`` and ``cell_finished``)."""
        self._apply_pending()
        return self._cell is not None

    @property
    def last_event(self) -> float:
        """When the model last heard an event, to the time of the read that found it
        pending (``settle_relays`` polls it to see the workers' relays stop)."""
        self._apply_pending()
        return self._heard

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop listening to the kernel."""
        self._unsubscribe()
        self._apply_pending()
        self._listeners = ()

    @property
    def paused(self) -> bool:
        """Whether recording is paused (``pause()``)."""
        return self._paused

    def pause(self) -> None:
        """Stop recording, keeping what was recorded: the kernel runs at its unobserved speed
        (a bulk load, a benchmark). ``resume()`` goes on."""
        self._apply_pending()
        with self._lock:
            if not self._paused:
                self._paused = True
                self._unsubscribe()

    def resume(self) -> None:
        """Record again after ``pause()``, in a new epoch.

        What happened while paused was not heard, so the new epoch's stale nodes are read
        from the kernel's graph instead of carried over (a node stale at the pause may have
        recomputed since; another may have gone stale), and the structure that changed
        meanwhile is the new epoch's.
        """
        with self._lock:
            if not self._paused:
                return
            self._paused = False
            self._unsubscribe = self.kernel.events.subscribe(self._on_event)
        self.begin_epoch("resumed (changes while paused were not recorded)")
        stale = {node.id for node in self.kernel.graph().nodes
                 if node.kind == "computed" and node.state != "clean"}
        with self._lock:
            for node_id, activity in list(self._touched.items()):
                if node_id not in stale:
                    activity.status = "untouched"
                    del self._touched[node_id]
            for node_id in stale:
                self._activity(node_id).status = "stale"
            self._structure_version += 1  # re-read the graph whole: edges may have changed
            self._version += 1
        self._fold_structure()
        self._notify()

    def attach(self, kernel: Kernel) -> None:
        """Follow ``kernel`` instead (a restart): the views and the log stay, so a widget on
        the page keeps updating; node activity starts afresh (the new nodes are new), and
        the epoch records the old kernel's nodes as removed and the new one's as added."""
        self._apply_pending()
        self._fold_structure()
        with self._lock:
            self._unsubscribe()
            self._paused = False
            self.kernel = kernel
            self._activities.clear()
            self._touched.clear()
            self._last_calls.clear()
            self._remote_calls.clear()
            self._unsubscribe = kernel.events.subscribe(self._on_event)
            self._structure_version += 1
            self._version += 1
        self._fold_structure()
        self._notify()

    def on_change(self, callback: Callable[[LabModel], None]) -> Callable[[], None]:
        """Call ``callback(model)`` when the model changes; returns the function that stops it.

        Once per burst, not per event: after a notification, further events notify nobody
        until a view calls ``caught_up()`` (before it reads the model), because every view
        notified is by then already waiting to redraw. That keeps a burst's per-event cost
        at one flag test however many views are open. Nothing is missed: an event recorded
        after a view's ``caught_up()`` notifies again, and one recorded before it is in what
        the view reads next.
        """
        self._listeners = (*self._listeners, callback)
        self._views_behind = False

        def remove() -> None:
            self._listeners = tuple(fn for fn in self._listeners if fn is not callback)

        return remove

    def caught_up(self) -> None:
        """A view is about to read the model: notify on the next event again."""
        self._views_behind = False

    # -- cells and epochs --------------------------------------------------------------

    def cell_started(self, label: str, *, number: int | None = None) -> None:
        """A cell began: its first reactive event will begin its epoch, titled with the
        prompt ``number`` (``In [9]``) and the command behind that event, else ``label``
        (the cell's first line, say)."""
        self._apply_pending()  # what the previous cell (or the background) did is its own
        self._fold_structure()
        with self._lock:
            self._cell = _Cell(number, label)

    def cell_finished(self, *, number: int | None = None) -> EpochRecord | None:
        """The cell ended; returns its epoch (what the cell did) or None if it did nothing
        reactive. ``number`` corrects the prompt number given to ``cell_started``."""
        self._apply_pending()
        self._fold_structure()
        with self._lock:
            cell = self._cell
            if cell is None:  # a hook installed mid-cell (%load_ext) saw no start
                return None
            self._cell = None
            if number is not None and number != cell.number:
                cell.number = number
                if cell.epoch is not None and cell.epoch == self._epoch.number:
                    self._epoch = replace(self._epoch, cell=number)
            self._last_cell = cell
            if cell.epoch is None:
                return None
        try:
            return self.epoch_record(cell.epoch)
        except LookupError:
            return None

    @property
    def last_cell_epoch(self) -> int | None:
        """The epoch the last finished cell made (None: it did nothing reactive)."""
        self._apply_pending()
        return self._last_cell.epoch

    def begin_epoch(self, label: str | None) -> None:
        """Start a new epoch now, labelled ``label``: every status resets to untouched, and
        what happens next (outside cells) belongs to it until the next one begins."""
        self._apply_pending()
        self._fold_structure()
        with self._lock:
            self._begin_epoch(label, time.time())
            self._explicit = True
        self._notify()

    def _begin_epoch(self, label: str | None, now: float, cell: int | None = None) -> None:
        """``begin_epoch`` with the pending events applied (or being applied) already."""
        with self._lock:
            self._timeline.append(self._record_of(now))
            self._explicit = False
            # A cell that set a secret names it in its source: the label is masked too.
            self._epoch = EpochInfo(self._epoch.number + 1,
                                    redact(label) if label else label, now, cell)
            self._commands = {}
            self._writes = []
            self._delta = EMPTY
            still: dict[int, NodeActivity] = {}
            for node_id, activity in self._touched.items():
                # A node still stale from an earlier write stays stale: it will not be marked
                # again (the engine marks only clean nodes), so "untouched" would be a lie.
                if activity.status == "stale":
                    still[node_id] = activity
                else:
                    activity.status = "untouched"
            self._dirty.update(self._touched)
            self._touched = still
            oldest = self._timeline.oldest()
            causes = self._cause_epochs
            while causes and oldest is not None and next(iter(causes.values())) < oldest:
                causes.popitem(last=False)
            self._version += 1

    def _label(self) -> str | None:
        """The current epoch's title text: its first command (+ how many more), else the
        label it was begun with."""
        commands = list(self._commands)
        if not commands:
            return self._epoch.label
        more = f" (+{len(commands) - 1} more)" if len(commands) > 1 else ""
        return redact(commands[0]) + more

    def _record_of(self, ended: float | None) -> EpochRecord:
        """The current epoch as a record: each touched node's status, last value, runs and
        cause; the config writes nobody read; the structure it changed."""
        number = self._epoch.number
        steps = {node_id: NodeStep(
            a.status, a.history[-1][1] if a.history else None, a.last_cause,
            a.ran if a.epoch == number else 0, a.before if a.epoch == number else None,
            a.epoch != number)
            for node_id, a in self._touched.items() if a.status != "untouched"}
        for node_id, row in self._delta.nodes_removed.items():
            steps[node_id] = NodeStep("removed", row.get("value"), None, 0, row.get("value"))
        return EpochRecord(
            number, self._label(), self._epoch.started, ended, steps, self._epoch.cell,
            tuple(redact(c) for c in self._commands), tuple(self._writes), self._delta)

    def epoch_record(self, number: int | None = None) -> EpochRecord:
        """Epoch ``number`` (default: the current one, so far); ``LookupError`` if not kept.

        >>> model.epoch_record(3).counts()                     # doctest: +SKIP
        {'set': 1, 'recomputed': 1}
        """
        self._apply_pending()
        with self._lock:
            if number is None or number == self._epoch.number:
                return self._record_of(None)
            record = self._timeline.get(number)
            if record is None:
                kept = self._timeline.numbers()
                span = f"{kept[0]}..{self._epoch.number}" if kept else str(self._epoch.number)
                raise LookupError(f"No epoch {number!r}: the lab keeps the last "
                                  f"{self._timeline.limit} epochs, now {span}.")
            return record

    def epochs(self) -> list[EpochRecord]:
        """Every kept epoch, oldest first, the current one (so far) last."""
        self._apply_pending()
        with self._lock:
            return [*self._timeline, self._record_of(None)]

    def epoch_of_cause(self, cause: Cause | None) -> EpochRecord | None:
        """The epoch in which the write behind ``cause`` happened, if it is still kept."""
        if cause is None:
            return None
        self._apply_pending()
        with self._lock:
            number = self._cause_epochs.get(cause.id)
        if number is None:
            return None
        try:
            return self.epoch_record(number)
        except LookupError:
            return None

    # -- structure ---------------------------------------------------------------------

    def _fold_structure(self, *, initial: bool = False) -> None:
        """Fold what changed in the graph's structure since the last fold into the current
        epoch (the nodes and edges that came and went). Costs one ``Kernel.graph()`` when the
        structure changed, nothing otherwise; called at cell boundaries and by readers, never
        on the kernel's hot path."""
        with self._lock:
            if self._folded_structure == self._structure_version and not initial:
                return
        try:
            rows, edges, _instances, _routes = self._graph_rows()
        except Exception:  # a kernel mid-restart: fold at the next look
            _log.debug("structure not folded", exc_info=True)
            return
        pairs = {(e["source"], e["target"]) for e in edges}
        with self._lock:
            base = self._base_rows
            if not initial:
                added = rows.keys() - base.keys()
                removed = {i: base[i] for i in base.keys() - rows.keys()}
                delta = StructureDelta(frozenset(added), removed,
                                       frozenset(pairs - self._base_edges),
                                       frozenset(self._base_edges - pairs))
                if delta:
                    self._delta = self._delta.then(delta)
                    for node_id in added:
                        activity = self._activity(node_id)
                        if activity.status == "untouched":
                            activity.status = "added"
                    for node_id in removed:
                        self._touched.pop(node_id, None)
            self._base_rows, self._base_edges = rows, pairs
            self._folded_structure = self._cached_structure

    # -- recording ---------------------------------------------------------------------

    def _activity(self, node_id: int) -> NodeActivity:
        """The node's activity, now touched in this epoch and changed since the last snapshot
        (every caller records a status on it)."""
        activity = self._activities.get(node_id)
        if activity is None:
            activity = self._activities[node_id] = NodeActivity()
        number = self._epoch.number
        if activity.epoch != number:  # first touch in this epoch
            activity.epoch = number
            activity.ran = 0
            activity.before = activity.history[-1][1] if activity.history else None
        self._touched[node_id] = activity
        self._dirty.add(node_id)
        return activity

    def _on_event(self, event: Event) -> None:
        # The kernel's hot path (every write, stale mark, run and call while the lab
        # listens): append the event, and tell the views once per burst. Applying it (the
        # bookkeeping below) waits for the next read, or for PENDING events, and then runs
        # as one loop under one lock acquisition. Append before the flag test: a view's
        # caught_up() comes before its read, so an event either is in that read or notifies.
        pending = self._pending
        pending.append(event)
        if len(pending) >= PENDING:
            # Never wait for the lock here: this thread may hold the engine's lock, and a
            # reader applying the queue may need it (masking an epoch label rebuilds the
            # secret pattern from config). That reader empties the queue anyway.
            self._apply_pending(wait=False)
        if not self._views_behind:
            self._views_behind = True
            self._notify()

    def _apply_pending(self, *, wait: bool = True) -> None:
        """Apply the events heard so far, in the order heard (every reader calls this).

        ``wait=False`` (the emitting thread): only if the lock is free; otherwise another
        thread is reading or applying, and the next event (or read) tries again."""
        pending = self._pending
        if not pending or not self._lock.acquire(blocking=wait):
            return
        try:
            pop, recorders, entries = pending.popleft, self._recorders, self._entries
            applied = 0
            while pending:  # an event appended meanwhile (another thread) is applied too
                event = pop()
                applied += 1
                try:
                    if event.kind in _REACTIVE:
                        self._place(event)
                    recorder = recorders.get(type(event))
                    if recorder is None or not recorder(event):
                        entries.appendleft((event, self._epoch_here(), self._cell_number()))
                except Exception:  # a bug here must not lose the events after this one
                    _log.exception("the lab could not record %r", event)
            self._version += applied
            self._heard = time.time()
        finally:
            self._lock.release()

    def _cell_number(self) -> int | None:
        cell = self._cell
        return cell.number if cell is not None else None

    def _epoch_here(self) -> EpochInfo | None:
        """The epoch an event happening now belongs to: in a cell, the cell's own (None if
        the cell has not begun one: a call that changed nothing reactive)."""
        cell = self._cell
        if cell is not None and cell.epoch != self._epoch.number:
            return None
        return self._epoch

    def _place(self, event: Event) -> None:
        """Begin a new epoch for ``event`` if it is the first reactive event of a cell, or a
        change outside cells that no current epoch covers; note its command."""
        command = _command_of_event(event)
        cell = self._cell
        if cell is not None:
            if cell.epoch != self._epoch.number or cell.epoch is None:
                self._begin_epoch(command or cell.label, event.ts, cell.number)
                cell.epoch = self._epoch.number
        elif not self._explicit and event.kind in _CHANGES and not self._echo(command) and (
                self._epoch.cell is not None
                or event.ts > self._epoch.started + SETTLE_SECONDS):
            # a change from a background task or thread outside any cell: its own epoch
            self._begin_epoch(command or f"background: {event.kind}", event.ts)
        if command:
            self._commands.setdefault(command, None)

    def _echo(self, command: str | None) -> bool:
        """Something caused by a command of this epoch: a worker applying the same
        ``%config set`` to its copy of the view (or recomputing after it), relayed a moment
        later, belongs to the epoch of the command."""
        return command is not None and command in self._commands

    # -- one recorder per event type: update per-node activity now; the log keeps the raw
    # event, described on read. A recorder returns True for events the log leaves out.

    def _on_signal_set(self, event: SignalSet) -> bool:
        cause = event.cause
        activity = self._activity(event.node_id)
        activity.status = "set"
        if activity.epoch == self._epoch.number and activity.before is None:
            activity.before = cause.old
        activity.remember(event.ts, cause.new)
        activity.last_cause = cause
        self._cause_epochs[cause.id] = self._epoch.number
        if len(self._cause_epochs) > CAUSES:
            self._cause_epochs.popitem(last=False)
        for node_id in event.stale:
            # What the write marked is stale now, even if it ran earlier in this epoch (the
            # engine marks only clean nodes; a run after this write will say so again).
            activity = self._activity(node_id)
            activity.status = "stale"
            activity.last_cause = cause
        return False

    def _on_recomputed(self, event: ComputedRecomputed) -> bool:
        activity = self._activity(event.node_id)
        changed = event.changed
        activity.status = "recomputed" if changed else "unchanged"
        activity.recomputes += 1
        activity.ran += 1
        activity.last_cause = event.cause
        activity.last_run_changed = changed
        activity.last_duration = event.duration
        activity.last_error = event.error
        activity.last_command = event.command
        if changed:
            activity.remember(event.ts, event.error or event.value)
        return False

    def _on_verified(self, event: ComputedVerified) -> bool:
        activity = self._activity(event.node_id)
        if activity.status in ("stale", "untouched", "added"):
            activity.status = "verified"
        return False

    def _on_effect_run(self, event: EffectRun) -> bool:
        activity = self._activity(event.node_id)
        activity.status = "recomputed"
        activity.recomputes += 1
        activity.ran += 1
        activity.last_cause = event.cause
        activity.last_error = event.error
        activity.last_command = event.command
        return False

    def _on_invoked(self, event: HandlerInvoked) -> bool:
        self._calls += 1
        if event.route == "transport":  # event.handler is the requested name here
            calls = self._remote_calls.setdefault((event.handler, event.target or ""),
                                                 RemoteCalls())
            calls.calls += 1
            calls.ts, calls.seq = event.ts, self._calls
            calls.latency, calls.result = event.duration, event.result
        else:
            self._last_calls[event.handler] = (event.ts, self._calls)
        return False

    def _on_edge(self, event: EdgeChanged) -> bool:
        self._structure_version += 1
        return True  # structure only; not an entry of the log

    def _on_instance(self, event: Event) -> bool:
        self._structure_version += 1
        return False

    def _on_unread_write(self, event: UnreadWrite) -> bool:
        self._writes.append(Write(event.label, event.old, event.new, event.readers,
                                  event.command, event.tenant))
        return False

    def _notify(self) -> None:
        for callback in self._listeners:
            try:
                callback(self)
            except Exception:  # a broken view must not break the kernel
                _log.exception("lab view update failed")

    # -- reading -----------------------------------------------------------------------

    def status_of(self, node_id: int, epoch: int | None = None) -> str:
        """The node's status in the current epoch, or in epoch ``epoch``."""
        self._apply_pending()
        if epoch is not None and epoch != self._epoch.number:
            return self.epoch_record(epoch).status_of(node_id)
        activity = self._activities.get(node_id)
        return activity.status if activity is not None else "untouched"

    def snapshot(self, *, tenant: str | None = None, instance: str | None = None,
                 include_providers: bool = False, epoch: int | None = None,
                 live_routes: bool = True, include_epochs: bool = False) -> dict[str, Any]:
        """Graph nodes with their epoch status, history and counts; edges; routes; epoch.

        A provider's key signal that nobody reads any more (``readers == 0``: its readers
        were removed, say by ``%remove tenant-db-acme``) is left out; with
        ``include_providers`` it is kept and marked ``unread``.

        ``epoch=N`` shows a past epoch as it was: the graph of epoch N (nodes that did not
        exist yet absent, those removed later present, those removed in N with status
        ``removed``), each node's status then, and its value and run count at the end of N
        (``value_then``: False where the lab no longer knows the value). ``live_routes=False``
        reuses the routes read at the last structural change (what a graph needs; their call
        counts lag). ``include_epochs`` adds the whole timeline (``epochs``), as the JSON
        export does.
        """
        self._apply_pending()
        self._fold_structure()
        record = None if epoch is None else self.epoch_record(epoch)
        rows, edges, instances, routes = self._graph_rows()
        past = record is not None and record.number != self._epoch.number
        if not past and self._delta.nodes_removed:
            # removed in this epoch: shown struck out until the next one begins
            with self._lock:
                gone = self._delta.nodes_removed
                rows.update({i: {**row, "status": "removed"} for i, row in gone.items()})
                edges = [*edges, *({"source": s, "target": t}
                                   for s, t in sorted(self._delta.edges_removed)
                                   if s in rows and t in rows)]
        if past:
            assert record is not None
            with self._lock:
                later = [*self._timeline.after(record.number), self._record_of(None)]
                rows, pairs = structure_at(rows, self._base_edges, record, later)
                rows = as_of(rows, pairs, record, later, self._timeline, ON_DEMAND_INSTANCES)
            edges = [{"source": s, "target": t} for s, t in sorted(pairs)]
        if tenant is not None or instance is not None:
            keep = {i for i, row in rows.items()
                    if (instance is None or row["instance"] == instance)
                    and (tenant is None or row["tenant"] == tenant)}
            keep |= {e["source"] for e in edges if e["target"] in keep} | {
                e["target"] for e in edges if e["source"] in keep}
            picked = [rows[i] for i in rows if i in keep]
        else:
            picked = list(rows.values())
        nodes = [row for row in picked if include_providers or not (
            row["unread"] or provider_of(row["instance"]) in PROVIDER_INSTANCES)]
        kept = {n["id"] for n in nodes}
        edges = [e for e in edges if e["source"] in kept and e["target"] in kept]
        with self._lock:
            if record is None:
                shown = replace(self._epoch, label=self._label())
                writes = list(self._writes)
            else:
                shown = EpochInfo(record.number, record.label, record.started, record.cell)
                writes = list(record.writes)
            out = {
                "epoch": {**plain(shown), "live": shown.number == self._epoch.number},
                "nodes": nodes,
                "edges": edges,
                "writes": [{"key": w.key, "old": w.old, "new": w.new, "readers": w.readers,
                            "command": w.command, "tenant": w.tenant} for w in writes
                           if tenant is None or w.tenant in (None, tenant)],
                "routes": self.routes() if live_routes else [dict(r) for r in routes],
                "instances": [dict(i) for i in instances],
                "version": self._version,
                "structure_version": self._structure_version,
            }
        if include_epochs:
            out["epochs"] = [r.to_dict() for r in self.epochs()]
        return out

    def recent(self, limit: int = 50, *, tenant: str | None = None) -> list[LogEntry]:
        """Newest-first log entries (optionally one tenant's)."""
        self._apply_pending()
        with self._lock:
            out: list[LogEntry] = []
            for event, epoch, cell in self._entries:
                if tenant is not None and getattr(event, "tenant", None) not in (None, tenant):
                    continue
                out.append(describe(event, epoch.number if epoch else None,
                                    epoch.label if epoch else None, cell))
                if len(out) >= limit:
                    break
            return out

    def counts(self) -> dict[str, int]:
        """How many nodes have each status in the current epoch."""
        self._apply_pending()
        with self._lock:
            out: dict[str, int] = {}
            for activity in self._activities.values():
                out[activity.status] = out.get(activity.status, 0) + 1
            return out


def _command_of_event(event: Event) -> str | None:
    """The command behind a reactive event: a write's cause, else what was running."""
    if isinstance(event, SignalSet):
        return event.cause.command
    return getattr(event, "command", None)


