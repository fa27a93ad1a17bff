"""``ProcessHost``: tenants in worker processes of their own, reached over NATS.

    await kernel.hot_add("tenant-db", "tenant-db-hooli", {"target": "hooli"},
                         isolation="process")           # or instantiate(...) before boot
    await kernel.invoke("tenant-db.query", {"target": "hooli"})   # the same call, another pid
    await kernel.restart("tenant-db-hooli")              # after its worker died

The kernel loads this module the first time an instance asks for ``isolation="process"``
(``create_host``): it starts a private nats-server on 127.0.0.1 (or connects to
``$SIGNALPY_LAB_NATS_URL``: one URL, or a cluster's as a comma-separated list), and connects
the kernel's ``NatsTransport``. The private server is supervised: when it dies it is started
again (same port, same users, with backoff) and clients reconnect by themselves; meanwhile
``kernel.instances()`` shows the workers' transport as ``restarting`` and calls fail at
once saying so.

Workers are forked from a **fork server** (``zygote.py``): one single-threaded process per
host, started with the private server, that imported the kernel's modules once; each worker
is confined after its fork. Where there is none (not Linux, no pidfds) each worker is a fresh
``python -m signalpy_lab.remote.worker``, confined the same way.

Per instance it:

* creates a NATS user for the worker whose permissions the **server** enforces: subscribe to
  its own call, config and control subjects and its own reply inbox, publish only its own
  events subject, answer requests through ``allow_responses``; nothing else (with an external
  server, which this host cannot configure, workers use the kernel's credentials: say so).
  The user is an NKey: the server's config holds its public key, and the worker gets its
  seed in its bootstrap, over its stdin pipe, never in a file, its argv or its environment;
* confines the worker before any tenant code runs (``sandbox.py``; the worker module says
  what it gets): read-only Python, read-write its own storage prefix and a private temp dir
  (both created here first), TCP connect to the NATS ports only, signals and abstract
  sockets scoped to itself, no new privileges, not dumpable, a scrubbed environment, no
  inherited descriptors. ``kernel.instances()`` (and ``%instances``) say what applied:
  ``sandbox: landlock v7``, or ``none (why)`` where the OS has no Landlock. This process
  (the host) makes itself not dumpable too: a worker cannot read its memory;
* ships the component class (imported by module path where that finds the same class,
  otherwise by value with ``cloudpickle``) and exactly the instance's own config view
  (shared keys, its tenant section, its ``apps.<name>`` credentials) and storage prefix;
* keeps that view in sync: an effect reads the view (``IConfig.all()`` through the
  instance's own handle), so a change inside it sends the changed keys, and a change outside
  it sends nothing;
* gives a call made after a write that write (read-your-writes): each message to the worker
  brings it to the next *config revision* of its view, each call to it carries the revision
  the host had sent when the call was made, and the worker applies up to that revision
  before it runs the handler (waiting ``CONFIG_WAIT_SECONDS`` at most for a message still in
  flight, else ``StaleConfigError``, never a stale answer); a worker that missed a message
  asks for the whole view again (``wire.py``, "Config revisions");
* advertises the worker's handlers and target routes on the kernel's transport, relays the
  worker's events and graph into the kernel's, and watches the process: when it dies, calls
  fail at once naming the exit code, and the instance is ``failed`` until
  ``kernel.restart(name)``.

What a worker relays is the tenant's word, so the host believes none of its attributions:
every relayed node and event is stamped with the worker's own instance and tenant, a label
naming another instance or tenant is shown under the worker's node (``w-<name>:…``), and ids
are shifted into the worker's own id space, anything outside it dropped (``relay.py``).

``run_cell(name, cell)`` runs a ``%%as`` cell inside a worker, under its sandbox (a control
message only the host may send, ``wire.py``).

Workers never outlive the kernel's process: they get SIGKILL when their parent dies (Linux
``PR_SET_PDEATHSIG``: the fork server's, which gets it from this process) and exit when their
stdin closes; ``kernel.shutdown()`` stops them.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import importlib
import ipaddress
import itertools
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import WorkerError
from ..kernel.reactive import Effect, Scope
from ..kernel.redaction import redact
from ..kernel.registry import Consumer
from . import wire
from ._linux import linux
from .relay import ID_SPACE, Relayer, stamp_event, stamp_graph
from .sandbox import python_read_paths, scrubbed_environment
from .server import NatsServer, _launcher, _pdeathsig_preexec, new_user_seed
from .transport import NatsTransport
from .zygote import ForkServer, available

if TYPE_CHECKING:
    from ..kernel import Kernel
    from ..kernel.lifecycle import ComponentInstance

__all__ = ["CONFIG_WAIT_SECONDS", "ENV_URL", "CellResult", "ProcessHost", "create_host"]

_log = logging.getLogger("signalpy_lab.remote.process")

#: Connect to this NATS server instead of starting a private one.
ENV_URL = "SIGNALPY_LAB_NATS_URL"
#: How long a worker may take to import, boot and start serving.
START_SECONDS = 30.0
#: How long a worker may take to stop after being asked, before it is killed.
STOP_SECONDS = 5.0
#: How long a worker waits for the config revision a call was made at, before it refuses
#: the call (``StaleConfigError``): a message in flight arrives in well under a millisecond
#: on one host, so this is only reached when one was lost.
CONFIG_WAIT_SECONDS = 2.0
#: A worker's requests for its whole view are answered at most this often.
RESYNC_SECONDS = 0.2
#: The command a worker applies its whole view under, after it missed a message.
RESYNC_COMMAND = "config resync (host)"
#: Commands remembered per worker (a relay follows its config change by tens of ms).
COMMANDS = 256
#: Each worker's relayed ids are shifted by its own multiple of ``ID_SPACE`` (``relay.py``).
_offsets = itertools.count(1)


async def create_host(kernel: Kernel) -> ProcessHost:
    """The default host: a private server (or ``$SIGNALPY_LAB_NATS_URL``) and the transport."""
    transport = next((t for t in kernel.bus._transports if isinstance(t, NatsTransport)), None)
    owns_transport = transport is None
    # A kernel already connected somewhere keeps its servers: workers join them (with its
    # credentials: only a private server, which this host configures, enforces their subjects;
    # to get that with your own NatsServer, set_isolation_host(ProcessHost(..., server=...))).
    url: Any = transport.servers if transport is not None else os.environ.get(ENV_URL)
    server = None
    directory = Path(tempfile.mkdtemp(prefix="spl-workers-"))
    # The fork server imports while the nats-server starts: both are ready sooner.
    forks = asyncio.ensure_future(asyncio.to_thread(_start_fork_server, directory))
    try:
        if url is None:
            server = await asyncio.to_thread(NatsServer().start)
            url = server.url
        if transport is None:
            if server is not None:
                login: dict[str, Any] = {"nkeys_seed": server.admin_seed}
            else:  # a server of yours: your login, from your environment
                login = {"user": os.environ.get(f"{ENV_URL}_USER"),
                         "password": os.environ.get(f"{ENV_URL}_PASSWORD")}
            transport = await NatsTransport(kernel, url, **login).start()
    except BaseException:
        fork_server = await forks
        if fork_server is not None:
            await asyncio.to_thread(fork_server.stop)
        if server is not None:
            await asyncio.to_thread(server.stop)
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return ProcessHost(kernel, transport, server=server, owns_transport=owns_transport,
                       owns_server=server is not None, fork_server=await forks,
                       directory=directory)


def _start_fork_server(directory: Path) -> ForkServer | None:
    """The host's fork server, or None (logged) where workers start as fresh interpreters."""
    why = available()
    if why is not None:
        _log.info("%s: each worker starts as a fresh interpreter", why)
        return None
    try:
        return ForkServer(directory, _worker_environment(), launch=_launcher.run,
                          preexec=_pdeathsig_preexec()).start()
    except WorkerError as exc:
        _log.warning("%s; each worker starts as a fresh interpreter instead", exc)
        return None


def _worker_environment(home: Path | None = None) -> dict[str, str]:
    """What a worker's (and the fork server's) environment holds: ``scrubbed_environment``,
    and ``PYTHONPATH`` if the host has one (it finds this package; it holds no secret)."""
    keep = ("PYTHONPATH",) if os.environ.get("PYTHONPATH") else ()
    return {**scrubbed_environment(keep, home=home), "PYTHONUNBUFFERED": "1"}


def _worker_servers(servers: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """The servers as a confined worker can reach them: host names resolved to addresses
    here (a worker reads no ``/etc/hosts`` and no DNS), and every port, for its sandbox."""
    urls, ports = [], []
    for url in servers:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        try:
            ipaddress.ip_address(host)
            address = host
        except ValueError:
            address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
        shown = f"[{address}]" if ":" in address else address
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{shown}:{port}" if userinfo else f"{shown}:{port}"
        urls.append(urlunsplit((parts.scheme or "nats", netloc, parts.path, "", "")))
        ports.append(port)
    return urls, sorted(set(ports))


def _tell(worker: _Worker, line: bytes) -> None:
    """Write ``line`` on the worker's stdin (a few bytes: a pipe takes them at once); a worker
    already gone is reported by ``_wait_ready`` from its stdout, not here."""
    stdin = worker.proc.stdin
    try:
        stdin.write(line)
        stdin.flush()
    except (OSError, ValueError):
        pass


def _class_ref(cls: type) -> tuple[dict[str, Any], list[str]]:
    """How the worker finds ``cls`` (by module path if that finds this very class, else by
    value), and what its sandbox must let it read for that: the folder of the module's
    top-level package when it lies outside Python's own paths (an editable install, a
    ``PYTHONPATH`` entry, the tests), loaded from there by location (``worker.load_class``)."""
    module = getattr(cls, "__module__", "")
    if module and module != "__main__":
        try:
            found: Any = importlib.import_module(module)
            for part in cls.__qualname__.split("."):
                found = getattr(found, part)
            if found is cls:
                ref: dict[str, Any] = {"module": module, "qualname": cls.__qualname__}
                return ref, _origin(ref, module)
        except (ImportError, AttributeError):
            pass
    import cloudpickle

    # By value; but what it refers to in its own module (a params model beside it) goes by
    # reference, so that module's folder must be readable too.
    ref = {"pickle": base64.b64encode(cloudpickle.dumps(cls)).decode()}
    importable = bool(module) and module != "__main__" and module in sys.modules
    return ref, _origin(ref, module) if importable else []


def _origin(ref: dict[str, Any], module: str) -> list[str]:
    """Add ``origin`` to ``ref`` and return the folder to read, if Python's paths miss it."""
    top = module.partition(".")[0]
    file = getattr(sys.modules.get(top), "__file__", None)
    if not file:
        return []  # a namespace package or a built-in: found on sys.path as before
    path = Path(file).resolve()
    where = path.parent if path.name == "__init__.py" else path
    if any(where.is_relative_to(p) for p in _python_paths()):
        return []
    ref["origin"] = {"name": top, "file": str(path)}
    return [str(where)]


_PYTHON_PATHS: tuple[Path, ...] | None = None


def _python_paths() -> tuple[Path, ...]:
    global _PYTHON_PATHS
    if _PYTHON_PATHS is None:
        _PYTHON_PATHS = python_read_paths()
    return _PYTHON_PATHS


@dataclass(frozen=True)
class CellResult:
    """What a ``%%as`` cell did inside a worker (``ProcessHost.run_cell``).

    ``ok``: it ran to the end; ``value`` its last expression's value when ``is_json``, else
    ``repr`` is all there is of it. Otherwise ``error`` is the one line naming the error
    (``PermissionError: [Errno 13] Permission denied: '/proc/1/environ'``), ``refusal`` says
    it is an answer (the kernel's errors, the OS's ``PermissionError``) rather than a bug,
    and ``traceback`` has the cell's own frames, numbered as the notebook shows it.
    """

    ok: bool
    value: Any = None
    is_json: bool = False
    repr: str | None = None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    error_type: str | None = None
    message: str | None = None
    refusal: bool = False
    traceback: tuple[str, ...] = ()

    @classmethod
    def of(cls, reply: dict[str, Any]) -> CellResult:
        error = reply.get("error") if isinstance(reply.get("error"), dict) else None
        common = {"stdout": str(reply.get("stdout") or ""),
                  "stderr": str(reply.get("stderr") or "")}
        if reply.get("ok"):
            return cls(True, value=reply.get("value"), is_json=bool(reply.get("json")),
                       repr=str(reply.get("repr")), **common)
        error = error or {"type": "WorkerError", "message": "the worker sent no error"}
        lines = tuple("".join(str(x) for x in error.get("traceback") or ()).rstrip()
                      .splitlines())
        line = str(error.get("line") or f"{error.get('type')}: {error.get('message')}")
        return cls(False, error=line, error_type=str(error.get("type")),
                   message=str(error.get("message")), refusal=bool(error.get("refusal")),
                   traceback=lines or (line,), **common)


@dataclass
class _Worker:
    """The host's record of one running worker."""

    name: str
    node: str
    proc: Any  # a subprocess.Popen, or a zygote.ForkedProcess: the same few methods
    offset: int
    stderr_path: Path
    temp_dir: Path | None = None
    target: str | None = None
    user: str | None = None
    #: How the worker logs in, kept in this process's memory only: ``{"nkeys_seed_str":
    #: ...}`` on the private server, the kernel's own login on an external one.
    login: dict[str, Any] = field(default_factory=dict)
    #: What its sandbox applied (``SandboxReport.to_dict()``), from its ready message.
    sandbox: dict[str, Any] | None = None
    started: float = 0.0
    ready_seconds: float = 0.0
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=40))
    relay: Effect | None = None
    scope: Scope | None = None
    subscription: Any = None
    stopping: bool = False
    # (config revision, the view's leaves at it): one attribute, so a resync on the loop
    # never reads a revision with another revision's leaves while a writer thread syncs
    synced: tuple[int, dict[str, Any]] = (0, {})
    resynced_at: float = float("-inf")  # when the host last sent the whole view
    #: The commands sent with config changes lately, as sent and as shown masked then: the
    #: only commands a relay from this worker is believed to carry (relay.Relayer).
    commands: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=COMMANDS))
    drain: asyncio.Task[None] | None = None
    pipe: Any = None  # the asyncio read transport over its stdout
    #: Config messages waiting for the kernel's loop to publish them, in order (a change
    #: finding the last one unsent is merged into it: ``_send_config``); its lock, since
    #: writers' threads add and the loop takes.
    outbox: list[dict[str, Any]] = field(default_factory=list)
    outbox_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def sent(self) -> dict[str, Any]:
        """The view's leaves as last sent to the worker."""
        return self.synced[1]


class ProcessHost:
    """Runs instances in worker processes (see the module docstring).

    ``close()`` stops the workers and removes the host's temporary directory; it stops the
    transport only if ``owns_transport`` and the server only if ``owns_server``: a server or a
    transport you pass in is yours to stop (``create_host`` owns what it started itself).
    """

    def __init__(self, kernel: Kernel, transport: NatsTransport, *,
                 server: NatsServer | None = None, owns_transport: bool = False,
                 owns_server: bool = False, fork_server: ForkServer | bool | None = True,
                 directory: Path | None = None) -> None:
        self.kernel = kernel
        self.transport = transport
        self.server = server
        self._owns_transport = owns_transport
        self._owns_server = owns_server
        self._workers: dict[str, _Worker] = {}
        self._dir = directory or Path(tempfile.mkdtemp(prefix="spl-workers-"))
        #: The fork server workers come from (``zygote.py``), or None: fresh interpreters.
        #: ``True`` starts one on the first worker; ``False`` never uses one.
        self.forks: ForkServer | None = fork_server if isinstance(fork_server, ForkServer) \
            else None
        self._use_forks = fork_server is not False and fork_server is not None
        self._forks_lock = asyncio.Lock()
        # The host holds every worker's seed and its own: no worker may read its memory
        # (/proc/<pid>/mem, maps, environ need CAP_SYS_PTRACE once it is not dumpable).
        calls = linux()
        if calls is not None:
            calls.set_not_dumpable()
        if server is None:
            _log.warning("workers connect to %s with the kernel's credentials: the server does "
                         "not enforce their subjects (only a private NatsServer can)",
                         ", ".join(transport.servers))
        else:
            transport.server_state = lambda: (server.state, server.state_detail)
            if owns_server:  # a server you pass in is yours to supervise (server.supervise())
                server.supervise(self._server_changed)

    def _server_changed(self, state: str, detail: str) -> None:
        """From the supervisor's thread: log it, and let the transport announce it."""
        log = _log.info if state == "running" else _log.warning
        log("%s", detail)
        loop = self.kernel.home_loop()
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self.transport.changed)

    def transport_state(self) -> str:
        """How the workers are reached: the transport's outward state (``restarting`` while
        the private server is being restarted). ``kernel.instances()`` shows it."""
        return self.transport.status().state

    def __repr__(self) -> str:
        return f"<ProcessHost {len(self._workers)} workers via {self.transport.url}>"

    def credentials(self, name: str) -> dict[str, Any]:
        """How ``name``'s worker logs in: keyword arguments for ``nats.connect``
        (``{"nkeys_seed_str": "SU..."}`` on the private server), for audits and tests."""
        return dict(self._workers[name].login)

    def worker_pid(self, name: str) -> int | None:
        worker = self._workers.get(name)
        return worker.proc.pid if worker is not None and worker.proc.poll() is None else None

    def sandbox_state(self, name: str) -> str | None:
        """What confines ``name``'s worker, one phrase: ``landlock v7``, or ``none (why)``
        where the OS has no Landlock (the worker runs all the same; this says so)."""
        worker = self._workers.get(name)
        report = worker.sandbox if worker is not None else None
        if report is None:
            return None if worker is None else "none (the worker reported no sandbox)"
        return str(report.get("sandbox"))

    def sandbox_report(self, name: str) -> dict[str, Any] | None:
        """Everything ``name``'s worker reported of its sandbox (``SandboxReport.to_dict()``:
        rights, ports, scopes, seccomp, descriptors closed, capabilities dropped, time)."""
        worker = self._workers.get(name)
        return dict(worker.sandbox) if worker is not None and worker.sandbox else None

    async def run_cell(self, name: str, cell: str, *, first_line: int = 1, header: str = "",
                       timeout: float | None = None) -> CellResult:
        """Run ``cell`` inside ``name``'s worker, as its own code (``%%as NAME``).

        The cell sees ``rt`` and ``self`` as the instance has them in its worker, and runs
        under its sandbox: what the OS refuses comes back as a refusal
        (``CellResult.refusal``). Example::

            result = await host.run_cell("tenant-db-hooli", "open('/etc/passwd').read()")
            result.error   # "PermissionError: [Errno 13] Permission denied: '/etc/passwd'"
        """
        worker = self._workers.get(name)
        if worker is None or worker.proc.poll() is not None:
            known = ", ".join(repr(n) for n in sorted(self._workers)[:10]) or "none"
            raise WorkerError(f"No running worker for {name!r} to run a cell in. Running "
                              f"workers: {known}.")
        limit = self.transport.timeout if timeout is None else timeout
        nc = self.transport._nc
        if nc is None or not nc.is_connected:
            raise WorkerError(f"The cell cannot reach {name!r}'s worker: "
                              f"{self.transport._not_connected()}")
        try:
            reply = await nc.request(wire.control_subject(worker.node), wire.encode({
                "op": "exec", "cell": cell, "first_line": first_line, "header": header,
                "timeout": limit}), timeout=limit + 2)
        except Exception as exc:
            raise WorkerError(f"{name!r}'s worker did not answer the cell within "
                              f"{limit + 2:g}s ({type(exc).__name__}); it may be busy in a "
                              f"loop: %restart {name} gives it a new worker") from None
        return CellResult.of(wire.decode(reply.data))

    # -- IsolationHost -------------------------------------------------------------------

    async def start(self, inst: ComponentInstance) -> None:
        started = time.perf_counter()
        node = f"w-{inst.name}"
        wire.serve_subject(node)
        adding: asyncio.Future[None] | None = None
        if self.server is not None:
            seed = new_user_seed()  # in memory here, over a pipe to the worker; never on disk
            # The server reloads its users while the worker forks, confines itself and loads
            # its class; the worker connects only once told (LOGIN_READY on its stdin).
            adding = asyncio.ensure_future(asyncio.to_thread(
                self.server.add_user, node, seed,
                subscribe=[wire.serve_subject(node), wire.config_subject(node),
                           wire.control_subject(node)],
                publish=[wire.events_subject(node)], allow_responses=True,
                inbox_prefix=f"_INBOX_{node}"))
            user: str | None = node
            login: dict[str, Any] = {"nkeys_seed_str": seed}
            credentials: dict[str, Any] = {"seed": seed}
        else:
            user = self.transport._user
            credentials = {"user": self.transport._user, "password": self.transport._password,
                           "seed": self.transport._nkeys_seed}
            login = ({"nkeys_seed_str": credentials["seed"]} if credentials["seed"]
                     else {"user": credentials["user"], "password": credentials["password"]})
        view = self._view(inst)
        initial = view.all()
        # A new worker starts at the current revision, so no call made before it (to its
        # predecessor, on the same subjects) can ask it for more than it was given.
        revision = self.transport.revisions.get(node, 0)
        storage = self.kernel.registry.get("IStorage")
        root = Path(storage.root).resolve() if storage is not None else None
        factory, read = _class_ref(inst.meta.cls)
        servers, ports = _worker_servers(self.transport.servers)
        temp_dir = self._dir / "tmp" / node
        prefix = root / inst.name if root is not None else None
        for folder in (temp_dir, prefix):  # the sandbox's two read-write folders exist first
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        temp_dir.chmod(0o700)
        boot = {
            "servers": servers, **credentials, "node": node,
            "inbox_prefix": f"_INBOX_{node}", "name": inst.name,
            "properties": inst.properties, "factory": factory,
            "config": initial, "config_rev": revision, "config_wait": CONFIG_WAIT_SECONDS,
            "kv_rev": self._kv_applied(),
            "timeout": self.transport.timeout,
            "host_owned": self._host_owned(),
            "storage_root": str(root) if root is not None else None,
            "exec": self.server is not None,  # only then is its control subject the host's
            "login_follows": adding is not None,
            "sandbox": {"storage": str(prefix) if prefix is not None else None,
                        "temp_dir": str(temp_dir), "ports": ports, "read": read},
        }
        try:
            forks = await self._fork_server()
            worker = await asyncio.to_thread(self._spawn, inst.name, node, boot, forks, temp_dir)
        except BaseException:
            if adding is not None:
                await asyncio.gather(adding, return_exceptions=True)
            raise
        worker.started = started
        worker.user, worker.login, worker.target = user, login, inst.target
        worker.synced = (revision, wire.leaves(initial))
        self.transport.revisions[node] = revision
        self._workers[inst.name] = worker
        try:
            if adding is not None:
                await adding
                _tell(worker, wire.LOGIN_READY)
            await self._wait_ready(worker)
            await self._serve(inst, worker, view)
        except BaseException:
            await self._discard(worker, kill=True)
            raise

    async def _serve(self, inst: ComponentInstance, worker: _Worker, view: Any) -> None:
        """A ready worker: relay its events, advertise its routes, sync its config, watch it."""
        node = worker.node
        inst.pid = worker.proc.pid

        async def on_relay(msg: Any) -> None:
            await self._on_relay(worker, msg)

        worker.subscription = await self.transport._nc.subscribe(
            wire.events_subject(node), cb=on_relay)
        await self.transport.settle()
        handlers = [f"{inst.name}.{r.name}" for r in inst.meta.runnables]
        routes: dict[str, dict[str, str]] = {}
        for routed, handler in self.kernel._route_pairs(inst):
            routes.setdefault(routed, {})[inst.target or ""] = handler
        self.transport.serve_static(node, handlers, routes, {inst.name: {
            "factory": inst.factory, "target": inst.target, "isolation": "process",
            "pid": inst.pid}})
        # The relay is the instance's one node here: the graph shows what reaches its worker.
        worker.scope = inst.scope = Scope(inst.name, inst.target, hub=self.kernel.events)
        with worker.scope.active():
            worker.relay = Effect(lambda: self._sync_config(worker, view), defer=True,
                                  label=f"{inst.name}.(config view → worker)")
        worker.relay.start()
        if hasattr(worker.proc, "on_exit"):  # forked: the fork server's reader tells us
            worker.proc.on_exit(lambda code: self._exited(worker, code))
        else:
            threading.Thread(target=self._watch, args=(worker,), daemon=True,
                             name=f"spl-watch-{node}").start()

    async def stop(self, inst: ComponentInstance) -> None:
        worker = self._workers.get(inst.name)
        if worker is not None:
            await self._discard(worker, kill=False)

    async def close(self) -> None:
        for worker in list(self._workers.values()):
            await self._discard(worker, kill=False)
        if self._owns_transport:
            await self.transport.stop()
        if self.server is not None and self._owns_server:
            await asyncio.to_thread(self.server.stop)
        if self.forks is not None:
            await asyncio.to_thread(self.forks.stop)
            self.forks = None
        await asyncio.to_thread(shutil.rmtree, self._dir, True)  # stderr files, temp dirs

    # -- the worker process --------------------------------------------------------------

    def _host_owned(self) -> list[str] | None:
        """The host config's host-owned key patterns, for the worker's copy to enforce."""
        config = self.kernel.registry.get("IConfig")
        owned = getattr(config, "host_owned", None)
        return owned() if callable(owned) else None

    def _view(self, inst: ComponentInstance) -> Any:
        """The instance's own config handle, as it would have in process (may see ``None``)."""
        config = self.kernel.registry.get("IConfig")
        if config is None:
            raise WorkerError(f"{inst.name!r} needs a config provider to ship its view to "
                              "a worker; discover ConfigProvider first.")
        return config.scoped_for(Consumer(inst.name, inst.factory, inst.target))

    async def _fork_server(self) -> ForkServer | None:
        """The running fork server (started again if it died), or None: fresh interpreters."""
        if not self._use_forks:
            return None
        async with self._forks_lock:
            if self.forks is None or not self.forks.alive:
                if self.forks is not None:
                    await asyncio.to_thread(self.forks.stop)
                self.forks = await asyncio.to_thread(_start_fork_server, self._dir)
                self._use_forks = self.forks is not None
            return self.forks

    def _spawn(self, name: str, node: str, boot: dict[str, Any], forks: ForkServer | None,
               temp_dir: Path) -> _Worker:
        stderr_path = self._dir / f"{node}.stderr"
        if forks is not None:
            proc: Any = forks.spawn(stderr_path)
        else:
            preexec = _pdeathsig_preexec()
            env = _worker_environment(home=temp_dir)

            def launch() -> subprocess.Popen[bytes]:
                with open(stderr_path, "wb") as err:
                    return subprocess.Popen(
                        [sys.executable, "-m", "signalpy_lab.remote.worker"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                        preexec_fn=preexec, close_fds=True, env=env, cwd=temp_dir)

            proc = _launcher.run(launch)  # one long-lived thread forks: PDEATHSIG stays armed
        assert proc.stdin is not None
        try:  # the bootstrap, its seed with it, goes over this pipe and nowhere else
            proc.stdin.write(json.dumps(boot).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it died at once: its stdout says why (_wait_ready)
        return _Worker(name, node, proc, next(_offsets) * ID_SPACE, stderr_path, temp_dir)

    async def _wait_ready(self, worker: _Worker) -> None:
        """Read the worker's stdout (on the loop: no thread per worker) until it says ready."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_LINE_LIMIT, loop=loop)
        worker.pipe, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), worker.proc.stdout)

        async def read_until_ready() -> dict[str, Any]:
            while True:
                line = await _read_line(reader)
                if line is None:
                    code = await asyncio.to_thread(worker.proc.wait)
                    return {"ready": False, "error": f"exited with code {code}"}
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if isinstance(message, dict) and "ready" in message:
                    return message
                worker.output.append(line)

        try:
            message = await asyncio.wait_for(read_until_ready(), START_SECONDS)
        except TimeoutError:
            raise WorkerError(f"The worker of {worker.name!r} did not start serving within "
                              f"{START_SECONDS:g}s. {self._tail(worker)}") from None
        if not message.get("ready"):
            raise WorkerError(f"The worker of {worker.name!r} could not start: "
                              f"{message.get('error')}. {self._tail(worker)}")
        worker.ready_seconds = time.perf_counter() - worker.started
        sandbox = message.get("sandbox")
        worker.sandbox = sandbox if isinstance(sandbox, dict) else None
        if worker.sandbox is None or not worker.sandbox.get("landlock_abi"):
            _log.warning("the worker of %r runs with sandbox: %s", worker.name,
                         (worker.sandbox or {}).get("sandbox", "none (it reported none)"))
        worker.drain = asyncio.ensure_future(self._drain(worker, reader))

    async def _drain(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        """Keep reading the worker's stdout so its prints never block it; log them."""
        while (line := await _read_line(reader)) is not None:
            worker.output.append(line)
            _log.info("[%s] %s", worker.name, line)

    def _tail(self, worker: _Worker) -> str:
        try:
            err = worker.stderr_path.read_text(errors="replace").strip().splitlines()[-8:]
        except OSError:
            err = []
        lines = [*list(worker.output)[-4:], *err]
        return ("Its last output: " + " | ".join(lines)) if lines else ""

    def _watch(self, worker: _Worker) -> None:
        self._exited(worker, worker.proc.wait())

    def _exited(self, worker: _Worker, code: int) -> None:
        """From a thread: the worker's process exited with ``code``."""
        loop = self.kernel.home_loop()
        if worker.stopping or loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self._died, worker, code)

    def _died(self, worker: _Worker, code: int) -> None:
        if worker.stopping or self._workers.get(worker.name) is not worker:
            return
        cause = getattr(worker.proc, "cause", None)
        why = (f"the worker process of {worker.name!r} (pid {worker.proc.pid}) exited with "
               f"code {code}{f' ({cause})' if cause else ''}; kernel.restart({worker.name!r}) "
               f"(or %restart {worker.name}) brings it back")
        self.transport.mark_down(worker.node, why)
        self._drop_relay(worker)
        self.kernel.instance_failed(worker.name, WorkerError(why))

    def _drop_relay(self, worker: _Worker) -> None:
        """Stop syncing config to a worker that is gone; its node leaves the graph."""
        worker.relay = None
        if worker.scope is not None:
            worker.scope.dispose()
            inst = self.kernel._instances.get(worker.name)
            if inst is not None and inst.scope is worker.scope:
                inst.scope = None
            worker.scope = None

    async def _discard(self, worker: _Worker, *, kill: bool) -> None:
        worker.stopping = True
        self._workers.pop(worker.name, None)
        self._drop_relay(worker)
        self.transport.withdraw_static(worker.node)
        if worker.subscription is not None:
            with contextlib.suppress(Exception):
                await worker.subscription.unsubscribe()
        proc = worker.proc
        if proc.poll() is None and not kill and self.transport.connected:
            with contextlib.suppress(Exception):
                await self.transport._nc.publish(wire.control_subject(worker.node),
                                                 wire.encode({"op": "stop"}))
                await self.transport._nc.flush(timeout=1)
        if proc.poll() is None:
            try:
                await asyncio.to_thread(proc.wait, 0.1 if kill else STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        if worker.drain is not None:  # it reads until the exited worker's stdout ends
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(worker.drain), 2)
            worker.drain.cancel()
        if worker.pipe is not None:
            worker.pipe.close()
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        if worker.temp_dir is not None:
            await asyncio.to_thread(shutil.rmtree, worker.temp_dir, True)
        if self.server is not None and worker.node in self.server.users:
            await asyncio.to_thread(self.server.remove_user, worker.node)

    # -- config view and relayed events --------------------------------------------------

    def _sync_config(self, worker: _Worker, view: Any) -> None:
        """The effect's body: read the view (tracked), send what changed since last time.

        It runs in the writer's thread before its ``config.set`` returns (at the end of the
        outermost ``batch()``), so the revision is the worker's before the writer's next call
        reads it; the message itself is published on the kernel's loop, in revision order.
        """
        current = wire.leaves(view.all())
        revision, previous = worker.synced
        changed = {k: v for k, v in current.items() if previous.get(k, _MISSING) != v}
        removed = [k for k in previous if k not in current]
        if not changed and not removed:
            return
        revision += 1
        worker.synced = (revision, current)
        self.transport.revisions[worker.node] = revision
        from ..kernel.events import current_command

        command = current_command()
        if command:
            worker.commands.extend((command, redact(command)))
        self._send_config(worker, {"rev": revision, "set": changed, "unset": removed,
                                   "command": command, "kv": self._kv_applied()})

    def _kv_applied(self) -> int:
        """The shared-config revision this host has applied (0 without a shared config)."""
        shared = self.transport.shared_config
        return int(shared.applied) if shared is not None else 0

    async def _kv_wait(self, worker: _Worker, wanted: Any) -> None:
        """A call reached ``worker`` made after shared-config revision ``wanted``: apply the
        bucket here up to it (a change of the view is then sent by the relay effect, in
        order), then tell the worker which revision its view is at."""
        shared = self.transport.shared_config
        if shared is None or not isinstance(wanted, int):
            return
        try:
            await shared.reach(wanted, f"{worker.name!r}'s view")
        except Exception as exc:
            _log.warning("%s", exc)
            return
        self._send_config(worker, {"kv": shared.applied})

    def _send_config(self, worker: _Worker, change: dict[str, Any]) -> None:
        """Queue a config message for ``worker``, published on the kernel's loop in order.

        A thread writing config in a loop changes the view far faster than the loop
        publishes: queued one publish per change, the backlog grew without bound (gigabytes,
        and calls timing out behind it). So a change that finds the previous one still
        unsent is merged into it (``wire.merge_changes``: one message from the first's base
        revision to the last's), and the outbox holds a few messages at most.
        """
        loop = self.kernel.home_loop()
        if loop is None or self.transport._nc is None:
            return  # nothing reaches the worker now; calls say so (StaleConfigError)
        with worker.outbox_lock:
            outbox = worker.outbox
            if outbox and wire.mergeable(outbox[-1], change):
                outbox[-1] = wire.merge_changes(outbox[-1], change)
                return
            outbox.append(change)
            if len(outbox) > 1:
                return  # the loop has a flush of this outbox coming
        loop.call_soon_threadsafe(self._publish_config, worker)

    def _publish_config(self, worker: _Worker) -> None:
        """On the kernel's loop: publish what ``worker``'s outbox holds, in order."""
        with worker.outbox_lock:
            messages, worker.outbox = worker.outbox, []
        nc = self.transport._nc
        if nc is None:
            return
        subject = wire.config_subject(worker.node)
        for change in messages:
            self.transport._spawn(nc.publish(subject, wire.encode(change)))

    def _resync(self, worker: _Worker, have: Any) -> None:
        """The worker missed a config message: send its whole view at the current revision.

        At most once per ``RESYNC_SECONDS`` per worker: a worker asks once per wait itself, so
        more is a worker asking for nothing but the host's time.
        """
        now = time.monotonic()
        if now - worker.resynced_at < RESYNC_SECONDS:
            return
        worker.resynced_at = now
        revision, leaves = worker.synced
        _log.warning("the worker of %r missed a config message (it has revision %s, the host "
                     "sent %s); sending its whole view again", worker.name, have, revision)
        worker.commands.append(RESYNC_COMMAND)  # the relay believes the commands it sent
        self._send_config(worker, {"rev": revision, "full": True, "set": leaves,
                                   "unset": [], "command": RESYNC_COMMAND})

    async def _on_relay(self, worker: _Worker, msg: Any) -> None:
        try:
            data = wire.decode(msg.data)
        except Exception as exc:
            _log.warning("ignored a relay from %s: %s", worker.node, exc)
            return
        if "resync" in data:
            if self._workers.get(worker.name) is worker:
                self._resync(worker, data["resync"])
            return
        if "kv_wait" in data:
            if self._workers.get(worker.name) is worker:
                await self._kv_wait(worker, data["kv_wait"])
            return
        inst = self.kernel._instances.get(worker.name)
        if inst is None or not isinstance(data, dict):
            return
        # Who relayed it is what the host knows; the message's own attributions are not
        # believed (relay.py). The other instances' names: labels claiming them are not.
        who = Relayer(worker.name, worker.node, worker.target, worker.offset,
                      frozenset(self.kernel._instances) - {worker.name},
                      frozenset(worker.commands))
        graph = data.get("graph")
        if isinstance(graph, dict):
            inst.remote_graph = stamp_graph(graph, who)
        hub = self.kernel.events
        events = data.get("events")
        if hub.active and isinstance(events, list):
            for raw in events:
                event = stamp_event(raw, who)
                if event is not None:
                    hub.emit(event)


_MISSING: Any = object()
#: A worker's stdout lines longer than this are cut (a print of a huge value).
_LINE_LIMIT = 1 << 20


async def _read_line(reader: asyncio.StreamReader) -> str | None:
    """One line of a worker's stdout without its newline, or None at its end."""
    try:
        raw = await reader.readline()
    except ValueError:  # longer than the limit: keep its start, drop the rest of it
        raw = await reader.read(_LINE_LIMIT)
    return raw.decode(errors="replace").rstrip("\n") if raw else None
