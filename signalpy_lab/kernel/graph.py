"""The reactive graph algorithm: nodes, dependency links, push-stale / pull-refresh.

This module is the engine only; the user-facing ``Signal`` / ``Computed`` / ``Effect`` live in
``reactive.py``. The algorithm is the push-pull scheme of Preact signals and alien-signals,
with one clock in place of a version recorded per dependency (as Salsa, the incremental
computation library, keeps its revisions):

* a changed write ticks the engine's ``revision``, stamps the source's ``changed_at`` with it
  and walks downstream, marking direct subscribers ``DIRTY`` and everything further down
  ``MAYBE`` (possibly stale); effects reached are queued;
* a read of a non-clean derived node walks its recorded dependencies depth first and re-runs a
  body only when some dependency changed after that body last started
  (``dep.changed_at > node.verified_at``). A body whose result equals the previous value keeps
  its ``changed_at``, so the cascade stops there.

Both walks are iterative, so graph depth never turns into Python recursion. The one place
recursion is unavoidable is a body that reads a computed which has never run (its dependencies
are not known yet). Past ``MAX_NESTED_EVALUATIONS`` such nested first runs, the innermost read
raises a private ``_Deferred`` signal that unwinds to the outermost read, which evaluates the
deferred node first and then retries; a 10,000-deep chain therefore works at the default
recursion limit, at the price of re-running the aborted bodies (bodies must be pure anyway).

All mutation happens under one re-entrant lock, so signals set from another thread (a notebook
cell while the kernel runs on its own loop thread) leave the graph consistent.

Performance (issue 12): pure Python, by decision. A compiled core would have to stay optional
(the pure engine the reference, the same tests for both), doubling what must be kept correct
and thread-safe; the gap to the peers was closed by removing work from the hot paths
instead, one change at a time, each measured interleaved with observ (µs per update, chain of
1000 / fan-out 1 -> 1000 / diamond / diamond + effect, noisy 2-core machine):

step                                                              chain    fan  diam.   eff.
before                                                             1939   1915   8.79   9.00
``Computed.get`` / ``Signal.get`` are ``_read`` (not a method      1672   1752   6.33   9.00
  calling it: one Python call less per read)
one ``state`` test per clean read (a RUNNING state; a disposed     1294   1289   4.96   6.61
  node stays DIRTY); one dict per node holds deps *and* versions,
  so relinking is a C keys comparison; ``_refresh`` runs DIRTY deps
  in place and decides a parent as soon as its child is decided;
  the mark walk skips leaves
one engine-wide observer owned by a thread, not a thread-local     1191   1169   4.76   6.24
  (~45 ns per access against ~9 ns for a slot)
the lock's bound ``acquire``/``release`` instead of ``with``       1076    952   4.12   5.70
  (~100 ns against ~180 ns); value equality inlined in ``_run``
effects dispatched by the caller; ``Signal.set`` is ``_write``     1150   1058   4.12   5.2
the observer's owner thread named once per refresh, not per body   1050      -      -      -
evaluation depth counted per driver (_refresh, a direct run), not   995      -      -      -
  per body; the outermost read of a MAYBE node refreshes directly      -      -   3.57      -

(Rows from the fifth on: the chain and fan-out moved with the machine's load, not the change;
later rows were measured A/B, old and new engine in one process (``benchmarks.ab_engine``),
on the shapes they touch.)
Tried and dropped, no measurable gain: a lock-free path for nested reads (done since
issue 21, below), caching a keys view for relinking. (Queueing effects where the mark
walk finds them gained nothing as Python then; it is done since issue 21, for the compiled
build's sake.) Over the starting engine, A/B in one process: chain 2.0x, fan-out 2.2x,
diamond 1.5x, diamond + effect 1.8x.
Final side-by-side numbers: ``benchmarks/RESULTS.md``.

Issue 21 asks 1.5x the best pure-Python peer on every case; triangle and broadPropagation
stayed short (1.1x-1.25x, against observ), where each update re-runs chains of
single-dependency nodes and the peer re-evaluates without verifying. Counted per update
(``benchmarks.ab_engine HEAD wt ... --instructions``, CPU instructions under callgrind):
locals only one build uses declared by bare annotations, and no ``bool()`` call in the
equality test: 1.01x-1.02x. Tried and dropped: verifying a MAYBE node by recursion, up to
a bound, before the iterative walk (broad and triangle 1.03x; deepPropagation 0.89x, its
chain of 50 overran the bound and was walked twice). What moved it was not a smaller step
but a shortcut in the algorithm, ``_settle``: most MAYBE nodes sit one step above what a
write marked DIRTY, so they are decided from their own dependencies (a DIRTY one run in
place) without the walk's frames. Pure, A/B over the engine before it (old / new):

step                                                          broad  tri.   diam.  deep
a MAYBE node read in a body settled from its dependencies     1.03x  1.14x  1.21x  1.02x
  when they are all clean (timed)
a run's new dependency map compared with the old as dicts     1.13x  1.19x   -     1.13x
  (values all None), not as two keys views: ~100 ns a run      (with the row above, timed)
the settle runs DIRTY dependencies in place, and the walk     1.057x 1.00x  1.02x  0.99x
  settles its root's MAYBE dependencies so (counted)
the mark walk written once per build as a whole loop (no      1.012x 1.028x  -     1.015x
  ``cython.compiled`` test per node popped), and a read         (both, counted)
  nested in a body this thread runs does not take the lock
  again (tested: ``ctx.depth`` then ``ctx.owner``)
that nested read a branch of its own, with no ``try``         1.000x 1.019x 1.015x 1.001x
  around it (counted)
as Python, ``cython.compiled`` and the states folded at       1.054x 1.042x 1.040x 1.056x
  import (``_fold.py``: an AST pass, its own bytecode cache)    (mux 1.058x; counted)
a run tests ``_MISSING`` alone for "no previous value" (an     1.004x 1.004x 1.003x  -
  error's value is ``_MISSING``), not also ``error`` (counted)

Compiled, the same steps came out at 0.99x-1.00x counted (triangle 1.06x timed), the mark
walk and lock-free read 1.00x-1.016x, the nested read's branch 1.001x (the fold is the pure
build's only). The fold was tried once before and dropped: without a cache of its own it
cost 20 ms per import (parsing and compiling graph.py), and the bytecode CPython caches is
the plain one. Tried and dropped: settling at every level of the walk, not only its root
(deepPropagation 0.92x counted: a failed settle per link of its chain of 50); a changed
computed marking its MAYBE readers DIRTY at once, so their reads skip the settle (triangle
1.00x, broad and deep 0.94x counted). The lock-free nested read, dropped under issue 12 for
no timed gain, pays now that the rest is smaller. The goal's state:
``benchmarks/RESULTS.md``.

Compiled (issue 21): the same file, compiled by Cython in its pure-Python mode at install
time (``hatch_build.py``; ``signalpy_lab.kernel.ENGINE`` says which build runs). A plain
compile of the untyped module was slower than Python (deepPropagation 58 -> 92 ms on 3.12,
issue 21); what made it pay: node classes as ``cython.cclass`` with declared C fields
(``_cython_shim`` turns the declarations into ``__slots__`` when this runs as Python, so the
pure engine keeps its slotted nodes), ``_ctx`` a typed C alias of ``context``, the node
states as C constants (``_CLEAN`` ...), the internal walks (``_mark_downstream``,
``_refresh``, ``_run``, ``_run_effect``, ``_resubscribe``) as ``cython.cfunc`` with typed
locals. Measured in one run against this module as Python (``benchmarks.js_suite --quick``,
kairo cases, ms): deepPropagation 25.2 -> 12.4, broadPropagation 84.0 -> 30.4, diamond 86.8
-> 53.4, triangle 13.9 -> 8.96, mux 52.4 -> 35.3: 1.5x to 2.8x; the suite's full table is in
``benchmarks/RESULTS.md``. The bodies the benchmarks run are Python either way.

That first build ran at about half of signified's speed (its core is Rust). Profiled with
``perf``, the compiled engine's own time was mostly CPython allocating and freeing small
objects, and calls Cython had left as Python ones. Each step since, measured A/B compiled
(``benchmarks.ab_engine HEAD wt CASES --compiled``, both builds in one process, old time /
new time; Python 3.11):

step                                                          broad  mux    diam.  deep  tri.
no Python int per tracked read (the thread ident from         1.36x  1.21x  1.28x   -     -
  ``PyThread_get_thread_ident``; versions kept as Python ints,
  compared by identity); relinking compares keys without views;
  ``batch()``'s context manager beside the engine
a body reading what it read last time updates its recorded    1.16x  1.11x  1.13x  1.17x 1.14x
  versions in place (``_track``): no dict per run
the engine's own lock (``_EngineLock``), C calls, not         1.00x  1.01x  1.08x   -    1.07x
  ``RLock.acquire`` / ``release`` called as Python
the refresh walk reads dependency maps by position            1.24x  1.39x  1.08x  1.25x 1.19x
  (``PyDict_Next``), no iterator, view or tuple per entry
what Cython still called as Python: the flush's effects        1.08x  1.09x  1.07x   -     -
  untyped (their flags set as attributes), ``__exit__(*exc)``,
  the mark walk's bound ``append``
walk frames are the nodes (scan position in C fields), and     1.06x  1.17x  1.00x  1.18x  -
  an unchanged version read again writes nothing
the walk's frames linked by a node field (no list per        1.12x  1.18x  1.07x  1.10x 1.11x
  refresh); the mark walk queues an effect where it meets it  (instructions, see below)
  and casts subscribers (no type test per node); the nesting
  limit and the missing-value sentinel as C variables
one clock (``revision``) instead of a version recorded per   1.18x  1.06x  1.13x  1.19x 1.15x
  dependency: tracking a read writes nothing, the walk        (instructions)
  compares two C integers, dependency maps hold no values

The last two rows are counted, not timed (``benchmarks.ab_engine ... --compiled
--instructions``: CPU instructions per update under callgrind, Python 3.12): those days two
timed runs of the same engine differed by up to 50% on the shared VM, more than the change.
The pure module, counted before and after the first of them: 0.98x-1.01x; after the clock:
1.02x broad, 1.015x triangle, 1.03x deep, 1.00x diamond, 1.05x mux, 1.03x
avoidablePropagation. Counted the same way against signified
(``benchmarks.js_instructions``), before the clock ours executed fewer instructions on
nine of the ten kairo and cellx cases (deepPropagation 0.99x), cellx2500 included (1.11x),
where it was still about 10% slower in time (best of 15 fresh builds: 24.0 against 21.8
ms). That gap was put down to memory (a node is 272 bytes, and each of its two one-entry
dicts 224 more), but callgrind's model of this CPU's caches (``js_instructions
--cache-sim``: L1d 32 KiB, L2 1 MiB) counted no more misses for ours there either (L1d
0.90x, L2 1.00x of signified's), and its branch model (``--branch-sim``) 60,000 more
mispredicted branches (285,000 against 224,000). Tried and dropped: the fields the walks
touch declared first, to share cache lines (cellx2500 A/B 0.94x-1.01x). After the clock:
fewer instructions on all ten (1.10x mux to 1.55x repeatedObservers; cellx2500 1.31x),
fewer mispredicted branches on cellx2500 (194,000 against 224,000), and cellx2500 no
longer slower in time (best of 15 fresh builds, three runs: 1.00x, 1.14x, 1.32x). Which
part of the saving closed the time gap that the models did not show is not known.

Why Cython and not mypyc: ``benchmarks.mypyc_engine`` compiles this file with mypyc too
(its declarations rewritten as annotations) and times both: the Cython build was 1.40x-1.58x
faster on deep, broad, diamond and mux, measured after the first of the steps above (mypyc
has no way to reach ``PyDict_Next`` or a C lock from Python source).

Together, against signified on Python 3.12 (``benchmarks.js_suite --frameworks ours
signified``, one run each): geomean 0.48x -> 1.07x of its speed on the kairo and cellx
cases, then 1.18x after the frames row (best of 9; every kairo case at 1.01x or more,
cellx2500 0.80x), then 1.40x-1.44x after the clock (four full runs with
``--min-seconds``: in the first every case 1.30x or more but cellx2500, at parity, 19.4 ms
each; in the other three every case 1.08x or more; ``benchmarks/RESULTS.md``).
Tried and dropped: one stack list kept for
every mark walk (no gain). The pure module pays for none of this: each compiled-only step
sits under ``if cython.compiled:``, which Cython resolves at compile time (and, as Python,
``_fold`` at import), and A/B the pure engine moved by 0.99x-1.06x.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import CycleError, DisposedError, EffectLoopError

try:  # compiled, this is Cython's own module; as Python, the stand-in (see _cython_shim)
    import cython

    if not cython.compiled:
        raise ImportError("not compiled")
except ImportError:
    from . import _cython_shim as cython  # type: ignore[no-redef]

if cython.compiled:
    # Walking a dict by position, without an iterator object or a tuple per entry.
    from cython.cimports.cpython.dict import PyDict_Next  # type: ignore[import-not-found]
    from cython.cimports.cpython.exc import PyErr_CheckSignals  # type: ignore[import-not-found]
    from cython.cimports.cpython.object import PyObject  # type: ignore[import-not-found]

    # The engine lock's parts (``_EngineLock``), and the calling thread's ident as a C
    # integer: every tracked read compares it with the observer's owner, and
    # ``threading.get_ident`` made (and freed) a Python int each time.
    from cython.cimports.cpython.pythread import (  # type: ignore[import-not-found]
        NOWAIT_LOCK,
        PY_LOCK_ACQUIRED,
        PY_LOCK_INTR,
        PyThread_acquire_lock,
        PyThread_allocate_lock,
        PyThread_free_lock,
        PyThread_release_lock,
        PyThread_type_lock,
    )
    from cython.cimports.cpython.pythread import (  # type: ignore[import-not-found]
        PyThread_get_thread_ident as _get_ident,
    )
    from cython.cimports.signalpy_lab.kernel._pythread import (  # type: ignore[import-not-found]
        PyThread_acquire_lock_timed,
    )
else:
    _get_ident = threading.get_ident

__all__ = [
    "CLEAN",
    "COMPILED",
    "DIRTY",
    "MAX_EFFECT_ROUNDS",
    "MAX_NESTED_EVALUATIONS",
    "MAYBE",
    "RUNNING",
    "DerivedNode",
    "GraphHooks",
    "ReactiveNode",
    "SourceNode",
    "batch",
    "begin_batch",
    "context",
    "current_observer",
    "end_batch",
    "graph_stats",
    "pause_tracking",
    "resume_tracking",
    "set_hooks",
]

CLEAN, MAYBE, DIRTY = 0, 1, 2
#: The state of a node while its body runs: non-zero, so a lock-free read takes the locked
#: path (waiting for a body in another thread, reporting a cycle in this one), and below
#: CLEAN, so a write during the body marks it like a clean node and the mark survives.
RUNNING = -1
# The same four as C constants where compiled (a C int compared with a C int, no Python
# object per test); as Python, plain globals. The engine uses these; other modules the above.
_CLEAN = cython.declare(cython.int, 0)
_MAYBE = cython.declare(cython.int, 1)
_DIRTY = cython.declare(cython.int, 2)
_RUNNING = cython.declare(cython.int, -1)
#: Whether this module runs compiled (Cython, from this same source) or as Python.
COMPILED: bool = cython.compiled

#: Nested first evaluations allowed before the innermost read is deferred to the outermost one.
MAX_NESTED_EVALUATIONS = 64
#: Flush rounds (effects setting signals that re-trigger effects) before giving up.
MAX_EFFECT_ROUNDS = 100

_uids = itertools.count(1)
# C variables where compiled: as module globals, each use was a dict lookup (and the depth
# test made a Python int of the depth to compare), on every nested read and every run.
_MISSING = cython.declare(object, object())
_MAX_NESTED = cython.declare(cython.long, MAX_NESTED_EVALUATIONS)


class GraphHooks:
    """Observer of the engine; every method is a no-op here. Subclass and ``set_hooks`` it.

    The engine calls hooks only while one is installed, so an unobserved graph pays a single
    ``is None`` test per event site.
    """

    def on_set(self, node: SourceNode, old: Any, new: Any) -> Any:
        """A source changed; the return value is stored as the cause of what it marks."""
        return None

    def on_marked(self, node: SourceNode, cause: Any, marked: list[DerivedNode]) -> None:
        """The write of ``node`` (after ``on_set``) marked ``marked`` possibly stale: the
        derived nodes that were clean, in marking order (empty: it marked nothing). One call
        per write, however many readers: a key read by a thousand tenants is one report."""

    def on_run(
        self, node: DerivedNode, seconds: float, changed: bool, error: BaseException | None
    ) -> None:
        """A computed recomputed or an effect ran."""

    def on_verified(self, node: DerivedNode) -> None:
        """A possibly-stale node proved clean without running (no input changed)."""

    def on_edge(self, source: ReactiveNode, target: DerivedNode, added: bool) -> None:
        """A dependency link was added or removed."""

    def on_effect_error(self, node: DerivedNode, error: BaseException) -> None:
        """An effect raised; the flush goes on with the others."""


@cython.cclass
class _EngineLock:
    """The engine's re-entrant lock where the engine is compiled (as Python: an ``RLock``).

    Why its own: the engine takes the lock on every write and every refresh, and an
    ``RLock``'s ``acquire`` / ``release`` called from C are Python calls (``acquire``
    parsing its arguments), about 100 ns a write. Here taking it uncontended is a compare
    and a non-blocking C try. Contended, it waits as ``RLock`` does: the GIL released, a
    signal handler (Ctrl-C) run and its exception raised. Same API for ``with`` and for
    ``acquire(blocking, timeout)`` / ``release()``; a wait interrupted by a signal whose
    handler returns starts its timeout again.
    """

    owner = cython.declare(cython.long)
    count = cython.declare(cython.long)
    if cython.compiled:
        handle = cython.declare(PyThread_type_lock)

    def __init__(self) -> None:
        self.owner = 0  # the holding thread's ident; 0: nobody (no thread's ident is 0)
        self.count = 0
        if cython.compiled:
            self.handle = PyThread_allocate_lock()
            if self.handle == cython.NULL:
                raise MemoryError("cannot allocate the reactive engine's lock")

    def __dealloc__(self) -> None:
        if cython.compiled and self.handle != cython.NULL:
            PyThread_free_lock(self.handle)

    @cython.cfunc
    @cython.exceptval(-1)
    def take(self, microseconds: cython.longlong) -> cython.int:
        """1 once held (again, if this thread holds it), 0 if ``microseconds`` (-1: no
        limit, 0: do not wait) passed first."""
        me = _get_ident()
        if self.owner == me:
            self.count += 1
            return 1
        if not PyThread_acquire_lock(self.handle, NOWAIT_LOCK):
            if microseconds == 0:
                return 0
            handle = self.handle
            while True:
                with cython.nogil:
                    status = PyThread_acquire_lock_timed(handle, microseconds, 1)
                if status == PY_LOCK_ACQUIRED:
                    break
                if status != PY_LOCK_INTR:
                    return 0
                PyErr_CheckSignals()  # raises what a handler raised (KeyboardInterrupt)
        self.owner = me
        self.count = 1
        return 1

    @cython.cfunc
    @cython.exceptval(-1)
    def give(self) -> cython.int:
        if self.count == 0 or self.owner != _get_ident():
            raise RuntimeError("cannot release un-acquired lock")
        self.count -= 1
        if self.count == 0:
            self.owner = 0
            PyThread_release_lock(self.handle)
        return 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """As ``threading.RLock.acquire``."""
        if not blocking:
            if timeout != -1:
                raise ValueError("can't specify a timeout for a non-blocking call")
            return self.take(0) == 1
        if timeout < 0 and timeout != -1:
            raise ValueError("timeout value must be a non-negative number")
        return self.take(-1 if timeout == -1 else int(timeout * 1_000_000)) == 1

    def release(self) -> None:
        """As ``threading.RLock.release``."""
        self.give()

    def __enter__(self) -> bool:
        return self.take(-1) == 1

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        self.give()

    def __repr__(self) -> str:
        state = f"owner={self.owner} count={self.count}" if self.count else "unlocked"
        return f"<signalpy_lab engine lock, {state}>"


@cython.cclass
class _Context:
    """Engine-wide mutable state, one object so both modules reach it cheaply."""

    depth = cython.declare(cython.long, visibility="public")
    batch_depth = cython.declare(cython.long, visibility="public")
    flushing = cython.declare(cython.bint, visibility="public")
    pending = cython.declare(list, visibility="public")
    hooks = cython.declare(object, visibility="public")
    lock = cython.declare(object, visibility="public")
    links = cython.declare(cython.long, visibility="public")
    nodes = cython.declare(cython.long, visibility="public")
    error_handler = cython.declare(object, visibility="public")
    observer = cython.declare(object, visibility="public")
    owner = cython.declare(cython.ulong, visibility="public")
    revision = cython.declare(cython.longlong, visibility="public")

    def __init__(self) -> None:
        self.depth = 0  # nested computed evaluations in progress
        self.batch_depth = 0
        self.flushing = False
        self.pending: list[DerivedNode] = []  # queued effects
        self.hooks: GraphHooks | None = None
        self.lock = _EngineLock() if cython.compiled else threading.RLock()
        self.links = 0  # live dependency links, for leak checks
        self.nodes = 0  # live (undisposed) derived nodes
        self.error_handler: Callable[[DerivedNode, BaseException], None] | None = None
        # The node whose body is running (reads in it become its dependencies), and the
        # ident of the thread running it (0: none yet; no thread's ident is 0). Both are
        # written only by the thread holding ``lock`` (every body runs under it); see
        # ``current_observer``.
        self.observer: DerivedNode | None = None
        self.owner: int = 0
        # The engine's clock: one tick per changed write. A node's ``changed_at`` and a
        # body's ``verified_at`` are readings of it (see ``_refresh``).
        self.revision = 0


context = _Context()
# The same object as a C variable of the compiled engine (its fields C fields); as Python,
# one more global. ``context`` is the name other modules import.
_ctx = cython.declare(_Context, context)
# Taking the one engine lock on the hot paths: compiled, C calls into ``_EngineLock``; as
# Python, the ``RLock``'s methods as module globals: ``_acquire(); try: ... finally:
# _release()`` costs about half of ``with context.lock:`` (~100 ns against ~180 ns here),
# which was a sixth of a fan-out update.
if cython.compiled:
    _lock = cython.declare(_EngineLock, context.lock)

    @cython.cfunc
    @cython.inline
    def _acquire() -> None:
        _lock.take(-1)

    @cython.cfunc
    @cython.inline
    def _release() -> None:
        _lock.give()
else:
    _acquire = context.lock.acquire
    _release = context.lock.release


# Tracking: which body a read belongs to. Not a thread-local (three of those per body run and
# one per read cost more than the rest of a fan-out update): one engine-wide ``observer``,
# written only under the lock. A lock-free read in another thread sees it too, so a read
# records itself only if ``owner`` is its own thread: the owner is set, before the observer,
# by the thread that starts an outermost body, and no other thread can write either while
# that body runs (it holds the lock).


def current_observer() -> DerivedNode | None:
    """The node whose body is running in this thread, if any (reads become its deps)."""
    observer = _ctx.observer
    if observer is not None and _ctx.owner == _get_ident():
        return observer
    return None


def pause_tracking() -> DerivedNode | None:
    """Stop recording this thread's reads; pass the result to ``resume_tracking`` after."""
    observer = _ctx.observer
    if observer is not None and _ctx.owner == _get_ident():
        _ctx.observer = None  # this thread holds the lock: its body is running
        return observer
    return None


def resume_tracking(observer: DerivedNode | None) -> None:
    """Undo ``pause_tracking`` (a no-op if it paused nothing)."""
    if observer is not None:
        _ctx.observer = observer


def set_hooks(hooks: GraphHooks | None) -> None:
    """Install (or with ``None`` remove) the engine observer."""
    _ctx.hooks = hooks


def graph_stats() -> dict[str, int]:
    """Live derived nodes and dependency links in the whole process (for leak checks)."""
    return {"derived_nodes": _ctx.nodes, "links": _ctx.links}


class _Deferred(BaseException):
    """Unwinds a too-deep first evaluation to the outermost read (see module docstring).

    A ``BaseException`` so ``except Exception`` in user bodies does not swallow it.
    """

    def __init__(self, node: DerivedNode) -> None:
        super().__init__(node)
        self.node = node


@cython.cclass
class ReactiveNode:
    """Anything that can be depended on: it has subscribers and a version."""

    subs = cython.declare(dict, visibility="public")
    # How many times the value changed (for people and views), and the engine's clock
    # (``context.revision``) at the last change: a body that started at that revision or
    # later has seen this value (see ``_refresh``).
    version = cython.declare(cython.longlong, visibility="public")
    changed_at = cython.declare(cython.longlong, visibility="public")
    state = cython.declare(cython.int, visibility="public")
    label = cython.declare(object, visibility="public")
    owner = cython.declare(object, visibility="public")
    tenant = cython.declare(object, visibility="public")
    uid = cython.declare(object, visibility="public")
    secret = cython.declare(cython.bint, visibility="public")
    __weakref__ = cython.declare(object)

    def __init__(self, label: str | None = None) -> None:
        self.subs: dict[DerivedNode, None] = {}
        self.version = 0
        self.changed_at = 0
        self.state = _CLEAN  # sources are always clean
        self.label = label
        self.owner: Any = None  # the Scope that owns this node, if any
        self.tenant: str | None = None
        self.uid = next(_uids)
        #: Whether views must never render this node's value: a secret signal
        #: (``SecretSignal``), or a node whose dependencies reached one at any depth. Sticky
        #: (see ``_spread_secret``): what it holds, stale or not, may be built from a secret.
        self.secret = False

    def describe(self) -> str:
        return self.label or f"{type(self).__name__.lower()}#{self.uid}"


@cython.cclass
class SourceNode(ReactiveNode):
    """A writable value (the engine half of ``Signal``)."""

    value = cython.declare(object, visibility="public")
    equals = cython.declare(object, visibility="public")

    def __init__(self, value: Any, label: str | None = None,
                 equals: Callable[[Any, Any], bool] | None = None) -> None:
        ReactiveNode.__init__(self, label)
        self.value = value
        self.equals = equals

    def _read(self) -> Any:
        """The value; recorded as a dependency of the body running in this thread, if any."""
        ctx: _Context = _ctx
        observer: DerivedNode | None = ctx.observer
        if observer is not None and ctx.owner == _get_ident():
            if cython.compiled:
                _track(observer, self)
            else:
                observer.new_deps[self] = None  # type: ignore[index]
        return self.value

    def _write(self, value: Any) -> bool:
        """Store ``value``; mark and flush dependents. Returns whether it changed."""
        ctx: _Context = _ctx
        _acquire()
        try:
            old = self.value
            if old is value:
                return False
            equals = self.equals
            try:  # _same, inlined: this is every write's path
                if old == value if equals is None else equals(old, value):
                    return False
            except Exception:  # e.g. numpy arrays: ambiguous truth value means "changed"
                pass
            hooks = ctx.hooks
            if hooks is not None:
                cause = hooks.on_set(self, old, value)
                marked: list = []
                if self.subs:
                    _mark_downstream(self, marked)
                for node in marked:  # (marking runs no user code: set after, as if during)
                    node.cause = cause
                hooks.on_marked(self, cause, marked)
            elif self.subs:
                _mark_downstream(self, None)
            # Stored after marking: a lock-free read in another thread that already sees the
            # new value must find every dependent stale (and wait on the lock to refresh it),
            # never a CLEAN dependent still holding a value computed from the old one.
            self.value = value
            self.version += 1
            ctx.revision += 1
            self.changed_at = ctx.revision
            if ctx.pending and ctx.batch_depth == 0 and ctx.depth == 0:
                _flush()
            return True
        finally:
            _release()


@cython.cclass
class DerivedNode(ReactiveNode):
    """A node with a body: a computed (cached value) or an effect (side effect)."""

    fn = cython.declare(object, visibility="public")
    value = cython.declare(object, visibility="public")
    error = cython.declare(object, visibility="public")
    dep_map = cython.declare(dict, visibility="public")
    new_deps = cython.declare(dict, visibility="public")
    # The engine's clock when the body last started: a dependency that changed later
    # (``changed_at``) makes the node stale (see ``_refresh``).
    verified_at = cython.declare(cython.longlong, visibility="public")
    # Compiled only (see ``_track``): while a body reads what it read last time, in the same
    # order, its reads only step through ``dep_map`` instead of filling ``new_deps``.
    track_map = cython.declare(dict)
    track_pos = cython.declare(cython.Py_ssize_t)
    track_count = cython.declare(cython.Py_ssize_t)
    track_last = cython.declare(object)
    # Compiled only (see ``_refresh``): where the walk left this node's dependencies while
    # it checks one of them (its map, the position in it).
    scan_map = cython.declare(dict)
    scan_pos = cython.declare(cython.Py_ssize_t)
    scan_parent = cython.declare(object)  # the frame below this one (no stack list)
    running = cython.declare(cython.bint, visibility="public")
    checking = cython.declare(cython.bint, visibility="public")
    caller = cython.declare(object, visibility="public")
    runs = cython.declare(cython.longlong, visibility="public")
    cause = cython.declare(object, visibility="public")
    disposed = cython.declare(cython.bint, visibility="public")
    is_effect = cython.declare(cython.bint, visibility="public")
    queued = cython.declare(cython.bint, visibility="public")
    equals = cython.declare(object, visibility="public")
    cleanup = cython.declare(object, visibility="public")

    def __init__(self, fn: Callable[[], Any], label: str | None = None, *,
                 is_effect: bool = False,
                 equals: Callable[[Any, Any], bool] | None = None) -> None:
        ReactiveNode.__init__(self, label)
        self.fn = fn
        self.value: Any = _MISSING
        self.error: BaseException | None = None
        # The dependencies, in the order the body read them: a dict's keys (values None),
        # so a body that reads one twice records it once, and relinking compares key sets.
        self.dep_map: dict[ReactiveNode, None] = {}
        self.new_deps: dict[ReactiveNode, None] | None = None
        self.verified_at = 0
        self.running = False
        self.checking = False
        self.caller: DerivedNode | None = None  # the observer when the body last started
        self.runs = 0
        self.cause: Any = None
        self.disposed = False
        self.is_effect = is_effect
        self.queued = False
        self.equals = equals
        self.cleanup: Callable[[], Any] | None = None
        self.state = _DIRTY  # never ran
        _ctx.nodes += 1

    @property
    def deps(self) -> list[ReactiveNode]:
        """The dependencies recorded by the last run, in the order the body read them."""
        return list(self.dep_map)

    # -- reading ---------------------------------------------------------------------

    def _read(self) -> Any:
        """Return the current value, refreshing it first if it may be stale.

        The common case (clean) costs one test of ``state``: a running or disposed node is
        never CLEAN (RUNNING, DIRTY), so both reach the locked path.
        """
        ctx: _Context = _ctx
        observer: DerivedNode | None
        if self.state:
            if self.disposed:
                raise DisposedError(
                    f"{self.describe()!r} was disposed (its owner was removed); "
                    "it can no longer be read."
                )
            # Read in a body this thread runs (nested), it holds the lock already: no lock,
            # no ``try`` (triangle 1.019x counted). Tested depth first, then owner: a thread
            # starting an evaluation sets them in the other order, so another thread's
            # evaluation never looks like this one's.
            me = _get_ident()
            if ctx.depth != 0 and ctx.owner == me:
                if self.running:
                    _raise_cycle(ctx, self)
                if ctx.depth >= _MAX_NESTED:
                    raise _Deferred(self)
                if self.state == _DIRTY or (_settle(self) and self.state == _DIRTY):
                    ctx.depth += 1  # runs nested (the other case is _refresh's)
                    try:
                        _run(self)
                    finally:
                        ctx.depth -= 1
                elif self.state == _MAYBE:
                    _refresh(self)  # a dependency needs the walk
            else:
                _acquire()
                try:
                    # ``running`` is checked under the lock: every body runs with the lock
                    # held, so here it can only mean this thread is inside the body (a
                    # cycle). Checked before taking the lock, a body running in another
                    # thread looked like a cycle too.
                    if self.running:
                        _raise_cycle(ctx, self)
                    if ctx.depth == 0:
                        if self.state == _DIRTY:  # the outermost read of a dirty node: run it
                            ctx.owner = me  # before any observer: see current_observer
                            ctx.depth = 1
                            try:
                                _run(self)
                            except _Deferred as deferred:
                                ctx.depth = 0
                                _refresh_outermost(self, deferred)
                            finally:
                                ctx.depth = 0
                        elif self.state:
                            try:
                                _refresh(self)
                            except _Deferred as deferred:
                                _refresh_outermost(self, deferred)
                        if ctx.pending and not ctx.batch_depth:
                            _flush()  # a body wrote a signal (discouraged, but not lost)
                    else:
                        # Another thread's evaluation finishes (depth 0) before it lets go
                        # of the lock, so this is not expected; the walk is right at any depth.
                        _refresh(self)
                finally:
                    _release()
            # The tail below, repeated with the ident this path already has: falling through
            # to it cost a second ``get_ident`` per stale read (triangle 0.981x, counted).
            observer = ctx.observer
            if observer is not None and ctx.owner == me:
                if cython.compiled:
                    _track(observer, self)
                else:
                    observer.new_deps[self] = None  # type: ignore[index]
            if self.error is not None:
                raise self.error
            return self.value
        observer = ctx.observer
        if observer is not None and ctx.owner == _get_ident():
            if cython.compiled:
                _track(observer, self)
            else:
                observer.new_deps[self] = None  # type: ignore[index]
        if self.error is not None:
            raise self.error
        return self.value

    # -- disposal --------------------------------------------------------------------

    def dispose(self) -> None:
        """Unsubscribe from every dependency; the node can no longer run."""
        with _ctx.lock:
            if self.disposed:
                return
            self.disposed = True
            _ctx.nodes -= 1
            hooks = _ctx.hooks
            for dep in self.dep_map:
                if dep.subs.pop(self, _MISSING) is not _MISSING:
                    _ctx.links -= 1
                    if hooks is not None:
                        hooks.on_edge(dep, self, False)
            self.dep_map = {}
            self.state = _DIRTY  # never CLEAN again, so a read takes the path that raises
            self.value = _MISSING
            cleanup, self.cleanup = self.cleanup, None
        if cleanup is not None:
            cleanup()


def _same(old: Any, new: Any, equals: Callable[[Any, Any], bool] | None) -> bool:
    if old is new:
        return True
    if old is _MISSING:
        return False
    try:
        return bool(equals(old, new) if equals is not None else old == new)
    except Exception:  # e.g. numpy arrays: ambiguous truth value means "changed"
        return False


@cython.cfunc
def _raise_cycle(ctx: _Context, node: DerivedNode) -> None:
    """Record the edge to ``node``, whose body runs in this thread, and report the cycle."""
    observer: DerivedNode | None = ctx.observer  # this thread's: it holds the lock
    if observer is not None:  # record the edge so a later change re-checks it
        if cython.compiled:
            _track(observer, node)
        else:
            observer.new_deps[node] = None  # type: ignore[index]
    raise CycleError(_cycle_message(node))


def _cycle_message(node: DerivedNode) -> str:
    # Walk the bodies running in this thread, innermost first, back to ``node``.
    chain: list[DerivedNode] = []
    current = _ctx.observer  # the caller holds the lock: this thread's
    while current is not None and current is not node and len(chain) < 10_000:
        chain.append(current)
        current = current.caller
    names = [node.describe(), *(n.describe() for n in reversed(chain)), node.describe()]
    return f"Cycle detected: {' -> '.join(names)}. A computed cannot depend on itself."


@cython.cfunc
def _mark_downstream(source: ReactiveNode, marked: list | None) -> None:
    """Mark direct subscribers DIRTY and everything below them MAYBE; queue effects.

    Invariant kept: a non-clean node's subscribers are all non-clean, so the walk stops at
    nodes already marked. A RUNNING node counts as clean here (its mark must survive the
    run). An effect is queued where the walk meets it; only nodes with subscribers are
    pushed (fan-out: a thousand leaves, none of them pushed). ``marked``: while a hook
    listens, a list that collects each newly marked node (for ``GraphHooks.on_marked``).
    """
    stack: list = []
    pending: list = _ctx.pending
    subs: dict = source.subs
    mark: cython.int = _DIRTY  # the direct subscribers; everything below them MAYBE
    sub: DerivedNode
    # The walk is written twice: compiled, each key is cast (a subscriber is derived) rather
    # than type-tested; as Python, a cast per key would be a function call, and a test of
    # ``cython.compiled`` per node popped was a tenth of triangle's marking.
    if cython.compiled:
        while True:
            for key in subs:
                sub = cython.cast(DerivedNode, key)
                if sub.state <= _CLEAN:
                    sub.state = mark
                    if marked is not None:
                        marked.append(sub)
                    if sub.is_effect:
                        if not sub.queued:
                            sub.queued = True
                            pending.append(sub)
                    elif sub.subs:
                        stack.append(sub)
                else:
                    if mark == _DIRTY:
                        sub.state = _DIRTY
                    if sub.is_effect and not sub.queued:
                        sub.queued = True  # stale but unqueued (an EffectLoopError dropped it)
                        pending.append(sub)
            if not stack:
                return
            subs = cython.cast(DerivedNode, stack.pop()).subs
            mark = _MAYBE
    else:
        while True:
            for sub in subs:
                if sub.state <= _CLEAN:
                    sub.state = mark
                    if marked is not None:
                        marked.append(sub)
                    if sub.is_effect:
                        if not sub.queued:
                            sub.queued = True
                            pending.append(sub)
                    elif sub.subs:
                        stack.append(sub)
                else:
                    if mark == _DIRTY:
                        sub.state = _DIRTY
                    if sub.is_effect and not sub.queued:
                        sub.queued = True
                        pending.append(sub)
            if not stack:
                return
            subs = stack.pop().subs
            mark = _MAYBE


@cython.cfunc
@cython.exceptval(-1)
def _settle(node: DerivedNode) -> cython.bint:
    """Decide MAYBE ``node`` one level down: True if decided (``node`` is DIRTY or CLEAN).

    Its dependencies are looked at in the order the body read them, each DIRTY one run in
    place, as ``_refresh`` does; one that changed after the body last started makes
    ``node`` DIRTY, none makes it CLEAN. A MAYBE dependency (or one in a cycle) leaves
    ``node`` MAYBE and the answer False: deciding it needs the walk. Why: most MAYBE nodes
    sit one step above what a write marked DIRTY (a chain read link by link, kairo's
    triangle; the branches of broadPropagation), and settling them here costs a loop
    where the walk pushes and pops a frame.
    """
    dep: ReactiveNode
    derived: DerivedNode
    state: cython.int
    verified_at: cython.longlong = node.verified_at
    for dep in node.dep_map:
        state = dep.state
        if state:
            if state != _DIRTY:
                return False
            derived = cython.cast(DerivedNode, dep) if cython.compiled else dep
            if derived.checking or derived.running:
                return False
            _ctx.depth += 1  # a nested evaluation, as in the walk (bounds Python recursion)
            try:
                _run(derived)
            finally:
                _ctx.depth -= 1
        if dep.changed_at > verified_at:
            node.state = _DIRTY
            return True
    node.state = _CLEAN
    hooks = _ctx.hooks
    if hooks is not None:
        hooks.on_verified(node)
    return True


@cython.cfunc
def _refresh_outermost(node: DerivedNode, deferred: _Deferred | None = None) -> None:
    """Refresh ``node``, first evaluating any node whose nested first run was deferred.

    ``deferred``: a first attempt at ``node`` already raised it (``_read``'s fast try).
    """
    pending = [node]
    while pending:
        if deferred is None:
            try:
                _refresh(pending[-1])
            except _Deferred as exc:
                deferred = exc
            else:
                pending.pop()
                continue
        if any(p is deferred.node for p in pending):
            # Each hop here spans up to MAX_NESTED_EVALUATIONS links, hence the "...".
            chain = " -> ... -> ".join(p.describe() for p in [*pending, deferred.node])
            raise CycleError(
                f"Cycle detected: {chain}. A computed cannot depend on itself."
            ) from None
        pending.append(deferred.node)
        deferred = None


@cython.cfunc
def _refresh(node: DerivedNode) -> None:
    """Bring ``node`` up to date, iteratively: verify MAYBE nodes, run DIRTY ones.

    Depth first over recorded dependencies, in the order the body read them, with an
    explicit stack of (node, its remaining dependencies). A DIRTY dependency runs in place;
    a MAYBE one is descended into. Once a node is decided (run, or verified clean) its
    parent compares at once: a dependency changed since the parent's body last started
    (``dep.changed_at > parent.verified_at``) makes the parent DIRTY.

    Why one clock and not a version recorded per dependency (as Preact's signals do): a
    run that reads what it read last time then writes nothing per read, where a changed
    recorded version was a dict store (compiled: an eighth of cellx's instructions). The
    clock ticks only when a signal changes, so a dependency that a body's own reads
    refreshed (same revision) does not count as newer than the body. A write during a body
    ticks it, so that body is found stale, as the mark walk says too.
    """
    # Every body runs under a _refresh or _read's direct run: both name this thread as the
    # owner of the observer their runs will set (see current_observer), and both count one
    # level of ``depth`` (nested evaluations), where _run used to count one per body: the
    # bodies run here one after the other, not nested (a chain of 1000: one level).
    ctx: _Context = _ctx
    state: cython.int
    current: DerivedNode
    parent: DerivedNode
    dep: ReactiveNode
    derived: DerivedNode
    ctx.owner = _get_ident()
    ctx.depth += 1
    try:
        state = node.state
        if state == _DIRTY:
            if node.is_effect:
                _run_effect(node)
            else:
                _run(node)
            return
        if state != _MAYBE:
            return  # refreshed meanwhile (by the thread that held the lock before us)
        # A frame: a node and what is left of its dependencies. As Python, a tuple with an
        # iterator over its dict; compiled, the node itself, its dict and a position in it
        # kept in its ``scan_*`` fields, and the frame below it in ``scan_parent``
        # (``PyDict_Next``: no iterator or view, no tuple per frame, no stack list; ``node``
        # is the bottom frame). So the per-dependency step is written twice below, once per
        # way of reading the next entry. A dependency map is replaced by a run, never
        # resized, so a position stays valid; a node is on one walk's stack at a time
        # (``checking``), except under a body that reads a node the walk is checking, whose
        # own walk then settles that node completely first.
        # (Declared without a value where only one build uses them: a bare annotation
        # costs Python nothing, and an assignment was a few bytecodes per refresh.)
        stack: list  # as Python: the frames
        items: object  # as Python: what is left of ``current``'s dependencies
        pos: cython.Py_ssize_t  # compiled: the position in ``deps``
        key: cython.pointer(PyObject)  # compiled: the entry PyDict_Next gives
        current = node
        deps: dict = node.dep_map
        if cython.compiled:
            pos = 0
        else:
            stack = []
            items = iter(deps)
        node.checking = True
        try:
            while True:
                descended = False
                if cython.compiled:
                    # (``key`` is assigned through its address, which ruff cannot see.)
                    while PyDict_Next(deps, cython.address(pos), cython.address(key),  # noqa: F821
                                      cython.NULL):
                        dep = cython.cast(ReactiveNode, key)  # noqa: F821
                        state = dep.state
                        if not state:
                            if dep.changed_at > current.verified_at:
                                current.state = _DIRTY
                                break
                            continue
                        derived = cython.cast(DerivedNode, dep)
                        if derived.checking or derived.running:
                            current.state = _DIRTY  # a recorded cycle, reported by running
                            break
                        if state == _DIRTY or (current is node and _settle(derived)):
                            if derived.state == _DIRTY:
                                _run(derived)
                            if derived.changed_at > current.verified_at:
                                current.state = _DIRTY
                                break
                            continue
                        current.scan_map = deps
                        current.scan_pos = pos
                        derived.scan_parent = current
                        derived.checking = True
                        current = derived
                        deps = current.dep_map
                        pos = 0
                        descended = True
                        break
                else:
                    for dep in items:
                        state = dep.state
                        if not state:
                            if dep.changed_at > current.verified_at:
                                current.state = _DIRTY
                                break
                            continue
                        derived = dep  # type: ignore[assignment]  # not clean: not a source
                        if derived.checking or derived.running:
                            current.state = _DIRTY  # a recorded cycle, reported by running
                            break
                        if state == _DIRTY or (current is node and _settle(derived)):
                            if derived.state == _DIRTY:
                                _run(derived)
                            if derived.changed_at > current.verified_at:
                                current.state = _DIRTY
                                break
                            continue
                        stack.append((current, items))
                        derived.checking = True
                        current = derived
                        items = iter(current.dep_map)
                        descended = True
                        break
                if descended:
                    continue
                while True:  # ``current`` is decided: run or verify it, then its parent's turn
                    if current.state == _DIRTY:
                        if current.is_effect:  # only ever the root: effects have no subscribers
                            _run_effect(current)
                        else:
                            _run(current)
                    elif current.state == _MAYBE:
                        current.state = _CLEAN
                        hooks = ctx.hooks
                        if hooks is not None:
                            hooks.on_verified(current)
                    current.checking = False
                    if cython.compiled:
                        if current is node:
                            return
                        parent = cython.cast(DerivedNode, current.scan_parent)
                        current.scan_parent = None
                        deps = parent.scan_map
                        pos = parent.scan_pos
                        parent.scan_map = None
                    else:
                        if not stack:
                            return
                        parent, items = stack.pop()
                    changed = current.changed_at > parent.verified_at
                    current = parent
                    if changed:
                        current.state = _DIRTY
                        continue  # no need to look at the parent's other dependencies
                    break  # go on with the parent's remaining dependencies
        except BaseException:
            current.checking = False
            if cython.compiled:
                while current is not node:
                    parent = cython.cast(DerivedNode, current.scan_parent)
                    current.scan_parent = None
                    parent.scan_map = None
                    parent.checking = False
                    current = parent
            else:
                for frame in stack:
                    frame[0].checking = False
            raise
    finally:
        ctx.depth -= 1


@cython.cfunc
def _run(node: DerivedNode) -> None:
    """Run the body of computed ``node`` with dependency tracking; relink and version it.

    Effects run in ``_run_effect``; the callers that may hold one (``_refresh``) choose.
    """
    if node.disposed:
        return  # stays DIRTY: a disposed node never runs again
    ctx: _Context = _ctx
    hooks = ctx.hooks
    started = time.perf_counter() if hooks is not None else 0.0
    # ``ctx.owner`` was set by whoever started this evaluation (``_read``, ``_refresh``):
    # once per refresh, not once per body (a chain of 1000 bodies: one ``get_ident``).
    new: dict
    old_deps: dict
    same: cython.bint
    previous_observer = node.caller = ctx.observer
    if cython.compiled:
        _start_tracking(node)
    else:
        node.new_deps = {}
    node.running = True
    node.state = _RUNNING  # a write during the body re-marks it, and that mark survives
    node.verified_at = ctx.revision  # what its reads see is at least this recent
    ctx.observer = node  # ctx.depth: counted by the caller (_refresh, _read)
    error: BaseException | None = None
    value: Any = None
    changed = True
    try:
        try:
            value = node.fn()
        except Exception as exc:
            error = exc
        except BaseException:
            # _Deferred (the outermost read retries this node), or e.g. KeyboardInterrupt: the
            # body did not finish, so the node stays DIRTY and keeps its previous links.
            node.state = _DIRTY
            node.new_deps = None
            if cython.compiled:
                _stop_tracking(node)
            raise
        finally:
            ctx.observer = previous_observer
        if cython.compiled:
            _finish_tracking(node)
        else:
            new = node.new_deps
            node.new_deps = None
            old_deps = node.dep_map
            node.dep_map = new  # always the latest read order
            if new != old_deps:  # the same keys (all values None): one C comparison, no views
                _resubscribe(node, old_deps, new)
        node.runs += 1
        if error is not None:
            node.error = error
            node.value = _MISSING
            node.version += 1
            node.changed_at = ctx.revision
        else:
            old = node.value
            if old is value:
                same = node.error is None
            elif old is _MISSING:  # never ran, or raised last time (an error's value)
                same = False
            else:
                equals = node.equals
                try:  # _same, inlined: this is every recompute's path
                    # (not bool(...): a call, where this is a jump; ruff's SIM210)
                    same = True if (old == value if equals is None  # noqa: SIM210
                                    else equals(old, value)) else False
                except Exception:  # e.g. numpy arrays: ambiguous truth value means "changed"
                    same = False
            if same:
                changed = False
            else:
                node.error = None
                node.value = value
                node.version += 1
                node.changed_at = ctx.revision
    finally:
        # Cleared only once the result is stored: a lock-free read from another thread takes
        # "CLEAN" to mean "value is current".
        node.running = False
        if node.state == _RUNNING:
            node.state = _CLEAN
    if hooks is not None:
        hooks.on_run(node, time.perf_counter() - started, changed, error)


@cython.cfunc
def _run_effect(node: DerivedNode) -> None:
    """``_run`` for an effect: cleanup first, an evaluation root, errors reported."""
    if node.disposed:
        return
    ctx: _Context = _ctx
    hooks = ctx.hooks
    started = time.perf_counter() if hooks is not None else 0.0
    cleanup = node.cleanup
    if cleanup is not None:
        node.cleanup = None
        cleanup()
    new: dict
    old_deps: dict
    previous_observer = node.caller = ctx.observer  # ctx.owner: set by _refresh
    if cython.compiled:
        _start_tracking(node)
    else:
        node.new_deps = {}
    node.running = True
    node.state = _RUNNING
    node.verified_at = ctx.revision
    ctx.observer = node
    # An effect body is an evaluation root: reads in it may defer and retry on their own.
    saved_depth, ctx.depth = ctx.depth, 0
    error: BaseException | None = None
    try:
        try:
            value = node.fn()
        except Exception as exc:
            error = exc
            value = None
        except BaseException:
            node.state = _DIRTY
            node.new_deps = None
            if cython.compiled:
                _stop_tracking(node)
            raise
        finally:
            ctx.observer = previous_observer
            ctx.depth = saved_depth
        if cython.compiled:
            _finish_tracking(node)
        else:
            new = node.new_deps
            node.new_deps = None
            old_deps = node.dep_map
            node.dep_map = new
            if new != old_deps:
                _resubscribe(node, old_deps, new)
        node.runs += 1
        if value is not None and callable(value):
            node.cleanup = value
    finally:
        node.running = False
        if node.state == _RUNNING:
            node.state = _CLEAN
    if error is not None:
        _report_effect_error(node, error)
    if hooks is not None:
        hooks.on_run(node, time.perf_counter() - started, True, error)


# -- tracking, compiled: a body that reads what it read last time allocates nothing -------
# As Python, a run fills a new dict (``new_deps``) and compares its keys with ``dep_map``'s
# at the end. Compiled, a run starts by matching its reads against ``dep_map`` in order
# (``PyDict_Next`` from ``track_pos``): a read of the next recorded dependency only steps
# on (nothing is recorded per dependency but its place: see ``_refresh``). At the first
# read that differs, the matched prefix is copied into ``new_deps`` and the run goes on as
# Python's does. A run that read the same dependencies in the same order (the steady state)
# writes nothing, made no dict and relinks nothing.


@cython.cfunc
@cython.inline
def _start_tracking(node: DerivedNode) -> None:
    node.new_deps = None
    node.track_map = node.dep_map
    node.track_pos = 0
    node.track_count = 0
    node.track_last = None


@cython.cfunc
@cython.inline
def _stop_tracking(node: DerivedNode) -> None:
    node.track_map = None
    node.track_last = None


@cython.cfunc
def _prefix(deps: dict, count: cython.Py_ssize_t) -> dict:
    """A new dict of the first ``count`` entries of ``deps``."""
    copy: dict = {}
    if count:
        for dep in deps:
            copy[dep] = None
            count -= 1
            if not count:
                break
    return copy


@cython.cfunc
@cython.inline
def _track(observer: DerivedNode, dep: ReactiveNode) -> None:
    """Record that ``observer``'s running body read ``dep`` (compiled; see above)."""
    new: dict = observer.new_deps
    if new is not None:
        new[dep] = None
        return
    if dep is observer.track_last:  # read again at once (a loop over one signal)
        return
    key: cython.pointer(PyObject) = cython.NULL
    if (PyDict_Next(observer.track_map, cython.address(observer.track_pos),
                    cython.address(key), cython.NULL)
            and key == cython.cast(cython.pointer(PyObject), dep)):
        observer.track_count += 1
        observer.track_last = dep
        return
    new = _prefix(observer.track_map, observer.track_count)
    new[dep] = None
    observer.new_deps = new


@cython.cfunc
def _finish_tracking(node: DerivedNode) -> None:
    """The body finished (or raised an Exception): make what it read the dependencies."""
    old: dict = node.dep_map
    start: dict = node.track_map
    new: dict = node.new_deps
    node.new_deps = None
    _stop_tracking(node)
    if new is None:
        if old is start and node.track_count == len(start):
            return  # the same dependencies in the same order
        new = _prefix(start, node.track_count)  # it stopped short of the last ones
    node.dep_map = new  # always the latest read order
    if _keys_differ(new, old):
        _resubscribe(node, old, new)


@cython.cfunc
@cython.inline
def _keys_differ(new: dict, old: dict) -> cython.bint:
    """``new.keys() != old.keys()`` without the two view objects (compiled only: as Python
    the views compare faster than this loop)."""
    if len(new) != len(old):
        return True
    for dep in new:  # noqa: SIM110 (any() of a generator would be a closure in C too)
        if dep not in old:
            return True
    return False


@cython.cfunc
def _resubscribe(node: DerivedNode, old: dict[ReactiveNode, None],
                 new: dict[ReactiveNode, None]) -> None:
    """The body read a different set of dependencies than last time: fix the edges."""
    dep: ReactiveNode
    hooks = _ctx.hooks
    for dep in old:
        if dep not in new and dep.subs.pop(node, _MISSING) is not _MISSING:
            _ctx.links -= 1
            if hooks is not None:
                hooks.on_edge(dep, node, False)
    if node.disposed:  # disposed by its own body: subscribe to nothing
        node.dep_map = {}
        return
    for dep in new:
        if node not in dep.subs:
            dep.subs[node] = None
            _ctx.links += 1
            if dep.secret and not node.secret:
                _spread_secret(node)
            if hooks is not None:
                hooks.on_edge(dep, node, True)


def _spread_secret(node: DerivedNode) -> None:
    """``node`` read a secret (a secret signal, or a node that read one): it and everything
    downstream of it are secret from now on, so no view renders a value built from it.

    Done where a link is made, the one place a node starts reading something: a node's value
    comes from what it read, and every read is linked before the value is reported. A node
    already secret stops the walk (its own readers were marked when it was). Sticky: a node
    that stops reading the secret may still hold a value built from it, and so may its
    readers, stale ones above all (after a rotation, the old password).
    """
    stack: list[ReactiveNode] = [node]
    while stack:
        current = stack.pop()
        if not current.secret:
            current.secret = True
            stack.extend(current.subs)


def _report_effect_error(node: DerivedNode, error: BaseException) -> None:
    hooks = _ctx.hooks
    if hooks is not None:
        hooks.on_effect_error(node, error)
    handler = _ctx.error_handler
    owner_handler = getattr(node.owner, "on_effect_error", None)
    if owner_handler is not None:
        owner_handler(node, error)
    elif handler is not None:
        handler(node, error)
    else:
        import logging

        logging.getLogger("signalpy_lab.reactive").error(
            "effect %r failed: %s: %s", node.describe(), type(error).__name__, error
        )


@cython.cfunc
def _flush() -> None:
    """Run queued effects until none is pending (bounded by ``MAX_EFFECT_ROUNDS``)."""
    ctx: _Context = _ctx
    effect: DerivedNode
    if ctx.flushing:
        return
    ctx.flushing = True
    try:
        rounds = 0
        while ctx.pending:
            rounds += 1
            if rounds > MAX_EFFECT_ROUNDS:
                culprits = ", ".join(sorted({e.describe() for e in ctx.pending})[:5])
                for dropped in ctx.pending:
                    dropped.queued = False  # stays stale; the next write that reaches it requeues
                ctx.pending.clear()
                raise EffectLoopError(
                    f"Effects kept re-triggering each other for {MAX_EFFECT_ROUNDS} rounds "
                    f"(still pending: {culprits}); an effect probably sets a signal it reads."
                )
            queue = ctx.pending
            ctx.pending = []
            for effect in queue:
                effect.queued = False
                if effect.state and not effect.disposed:
                    try:
                        _refresh(effect)
                    except _Deferred as deferred:
                        _refresh_outermost(effect, deferred)
    finally:
        _ctx.flushing = False


def run_effect_now(node: DerivedNode) -> None:
    """First run of a new effect (outside a batch), as an evaluation root."""
    with _ctx.lock:
        if _ctx.batch_depth or _ctx.depth or _ctx.flushing:
            if not node.queued:
                node.queued = True
                _ctx.pending.append(node)
            return
        _refresh_outermost(node)
        if _ctx.pending:
            _flush()


def begin_batch() -> None:
    _acquire()
    _ctx.batch_depth += 1


def end_batch() -> None:
    _end_batch()


@cython.cfunc
def _end_batch() -> None:
    ctx: _Context = _ctx
    try:
        ctx.batch_depth -= 1
        if ctx.batch_depth == 0 and ctx.depth == 0 and ctx.pending:
            _flush()
    finally:
        _release()


@cython.cclass
class _Batch:
    """What ``batch()`` returns: a context manager over ``begin_batch`` / ``end_batch``.

    Here, beside the engine, so a compiled engine makes ``with batch():`` C calls end to end
    (a ``with`` of the Python class cost three Python frames per batch: a fifth of a kairo
    write).
    """

    def __enter__(self) -> None:
        _acquire()
        _ctx.batch_depth += 1

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        _end_batch()  # (three named parameters, not ``*exc``: a C call without a tuple)


_BATCH = _Batch()


def batch() -> _Batch:
    """Group writes so each affected effect re-runs once, after the outermost batch ends.

    >>> from signalpy_lab.kernel import Signal, batch
    >>> a, b = Signal(1), Signal(2)
    >>> with batch():
    ...     a.set(10)
    ...     b.set(20)
    """
    return _BATCH
