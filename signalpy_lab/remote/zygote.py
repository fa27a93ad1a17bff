"""The fork server: workers forked from one pre-loaded parent, each confined after the fork.

A worker started as a fresh ``python -m signalpy_lab.remote.worker`` spends about 0.4 s and
24 MB of private memory importing the kernel, pydantic and nats-py before it serves anything
(issue 19 measured it). ``ProcessHost`` therefore starts one **fork server** per host, early
(with the private nats-server), as a separate single-threaded process::

    host (kernel, threads) ──socketpair (SOCK_SEQPACKET)──▶ fork server (one thread, modules
         │  spawn + [stdin, stdout, stderr] fds              imported once, gc.freeze())
         │◀── {"id", "pid"} + [pidfd]; {"exit": pid, "code"}     │ fork()
         │                                                        ▼
         └──────── stdin pipe (the boot, its NKey seed) ──────▶ worker: PDEATHSIG, its own
                   stdout pipe (ready, prints) ◀──────────────   fds 0-2, then worker.run():
                                                                  read the boot, confine(),
                                                                  load the tenant's class

Why a separate process and not a fork of the host: forking a process that runs threads
(the kernel's loop thread, nats-py's, the lab's) copies locks held by threads that do not
exist in the child; a fork server that has never started a thread forks safely, and the
sandbox (``confine``, which requires one thread) is applied in each child after the fork.
Its children share the imported modules' pages copy-on-write; ``gc.freeze()`` keeps the
collector from touching (and so copying) them.

The protocol, one JSON object per datagram:

* host → server ``{"op": "spawn", "id": n}`` with three descriptors: the worker's stdin
  (read end of a pipe the host writes the boot to), stdout (write end of a pipe the host
  reads) and stderr (a file). The server forks; the child makes them its 0, 1 and 2.
* server → host ``{"id": n, "pid": p}`` with one descriptor, a pidfd of the child (Linux
  5.3+), so the host can kill exactly that process (``pidfd_send_signal``) even after its
  pid is reused; or ``{"id": n, "error": "..."}``.
* server → host ``{"exit": p, "code": c}`` when a child exits (it reaps them: only a parent
  may), ``c`` as ``subprocess`` gives it (``-9`` for SIGKILL).

Secrets never pass through the fork server: the host writes the boot (with the worker's
NKey seed) into the worker's own stdin pipe. Lifetimes: the fork server gets SIGKILL when
the host's launcher thread dies (``PR_SET_PDEATHSIG``, as the nats-server does) and exits
when the host closes its socket; each worker gets SIGKILL when the fork server dies, and
exits when its stdin closes. A fork server that dies takes its workers with it: the host
reports each as exited with code -9, naming the fork server, and starts a new fork server
for the next worker (``kernel.restart``).

Costs, the same notes on both paths: workers forked from one parent share its hash seed
(``PYTHONHASHSEED``: a tenant can compute strings whose hashes collide in its siblings, but
has no channel to hand them any) and its address-space layout (ASLR offsets), which matters
only to memory-corruption exploits against a sibling. The README's security model lists
both.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..errors import WorkerError

__all__ = ["ForkServer", "ForkedProcess", "available", "serve"]

_log = logging.getLogger("signalpy_lab.remote.zygote")

#: How long the fork server may take to import the kernel's modules and say it is ready.
START_SECONDS = 30.0
#: How long a spawn may take to be answered (one fork).
SPAWN_SECONDS = 10.0
_DATAGRAM = 65536
_PR_SET_PDEATHSIG = 1
#: What the fork server imports once, so no worker pays for it (the worker module brings
#: the kernel, the providers, pydantic and nats-py; the rest is what tenant classes and
#: cloudpickle commonly need).
PRELOAD = ("signalpy_lab.remote.worker", "signalpy_lab.remote.sandbox", "cloudpickle",
           "nkeys", "signalpy_lab.components", "sqlite3", "decimal", "uuid", "hashlib")


def available() -> str | None:
    """None when workers can be forked here, else why not (the host then starts each worker
    as a fresh interpreter)."""
    if not sys.platform.startswith("linux"):
        return f"no fork server on {sys.platform} (it needs Linux pidfds)"
    missing = [n for n, has in (("os.pidfd_open", hasattr(os, "pidfd_open")),
                                ("signal.pidfd_send_signal",
                                 hasattr(signal, "pidfd_send_signal")),
                                ("socket.send_fds", hasattr(socket, "send_fds")))
               if not has]
    if missing:
        return f"no fork server: this Python lacks {', '.join(missing)}"
    return None


# --- the host's side -------------------------------------------------------------------------


class ForkedProcess:
    """A worker forked by the fork server, as the host sees it: what ``subprocess.Popen``
    offers that ``ProcessHost`` uses (``pid``, ``stdin``, ``stdout``, ``poll``, ``wait``,
    ``kill``, ``returncode``). Its exit code comes from the fork server, its parent."""

    def __init__(self, pid: int, pidfd: int, stdin: Any, stdout: Any) -> None:
        self.pid = pid
        self.stdin = stdin
        self.stdout = stdout
        self.returncode: int | None = None
        #: Set when the fork server died and took this worker with it.
        self.cause: str | None = None
        self._pidfd: int | None = pidfd
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[int], None]] = []

    def __repr__(self) -> str:
        return f"<ForkedProcess pid={self.pid} returncode={self.returncode}>"

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker pid {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        with self._lock:  # the pidfd names this very process, never a reused pid
            if self._pidfd is not None and self.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def on_exit(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(code)`` when it exits (from the fork server's reader thread; at
        once if it already has): a host watches its workers without a thread each."""
        with self._lock:
            if self.returncode is None:
                self._callbacks.append(callback)
                return
        callback(self.returncode)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def _exited(self, code: int, cause: str | None = None) -> None:
        with self._lock:
            if self.returncode is not None:
                return
            self.returncode, self.cause = code, cause
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            callbacks, self._callbacks = self._callbacks, []
        self._done.set()
        for callback in callbacks:
            try:
                callback(code)
            except Exception:  # one listener must not stop the reader
                _log.exception("a worker exit callback failed")


class ForkServer:
    """The host's handle on its fork server: ``start()``, ``spawn()`` per worker, ``stop()``.

    ``launch`` runs the ``Popen`` (``ProcessHost`` passes its long-lived launcher thread's,
    so ``PR_SET_PDEATHSIG`` stays armed); ``env`` is the fork server's whole environment
    (``scrubbed_environment()``: its workers inherit it, and ``/proc/<worker>/environ``
    shows it).
    """

    def __init__(self, directory: Path, env: dict[str, str], *,
                 launch: Callable[[Callable[[], Any]], Any] | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.directory = directory
        self.env = env
        self._launch = launch or (lambda fn: fn())
        self._preexec = preexec
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[tuple[int, int]]] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._early_exits: dict[int, int] = {}  # exit reports that beat their spawn reply
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self.started_seconds = 0.0

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def alive(self) -> bool:
        return self.pid is not None and self._sock is not None

    def __repr__(self) -> str:
        return f"<ForkServer pid={self.pid} children={len(self._children)}>"

    def start(self) -> ForkServer:
        """Start the fork server; return once it has imported everything (bounded)."""
        started = time.perf_counter()
        host_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = self.directory / "fork-server.log"
        try:
            def popen() -> subprocess.Popen[bytes]:
                with open(log, "ab") as out:
                    return subprocess.Popen(
                        [sys.executable, "-m", "signalpy_lab.remote.zygote",
                         str(server_end.fileno())],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                        pass_fds=(server_end.fileno(),), close_fds=True, env=self.env,
                        preexec_fn=self._preexec)

            self._proc = self._launch(popen)
        finally:
            server_end.close()
        host_end.settimeout(START_SECONDS)
        try:
            ready = json.loads(host_end.recv(_DATAGRAM) or b"{}")
        except (OSError, ValueError) as exc:
            ready = {"error": f"{type(exc).__name__}: {exc}"}
        if not ready.get("ready"):
            with contextlib.suppress(Exception):
                self._proc.kill()
                self._proc.wait(5)
            host_end.close()
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-6:]) \
                if log.exists() else ""
            why = ready.get("error") or f"it exited with code {self._proc.poll()}"
            raise WorkerError(f"The fork server did not start: {why}. Its last output: "
                              f"{tail or 'none'}")
        host_end.settimeout(None)
        self._sock = host_end
        self.started_seconds = time.perf_counter() - started
        self._reader = threading.Thread(target=self._read, name="spl-fork-server-reader",
                                        daemon=True)
        self._reader.start()
        return self

    def spawn(self, stderr_path: Path) -> ForkedProcess:
        """Fork one worker; its stdin and stdout are pipes to this process."""
        sock = self._sock
        if sock is None:
            raise WorkerError("The fork server is not running.")
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        err = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        request_id = next(self._ids)
        future: Future[tuple[int, int]] = Future()
        with self._lock:
            self._pending[request_id] = future
        try:
            with self._send_lock:
                socket.send_fds(sock, [json.dumps({"op": "spawn", "id": request_id}).encode()],
                                [stdin_r, stdout_w, err])
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            for fd in (stdin_r, stdin_w, stdout_r, stdout_w, err):
                os.close(fd)
            raise WorkerError(f"The fork server is gone ({exc.strerror}).") from None
        finally:
            for fd in (stdin_r, stdout_w, err):  # the worker's ends: it has its own copies
                with contextlib.suppress(OSError):
                    os.close(fd)
        try:
            pid, pidfd = future.result(SPAWN_SECONDS)
        except Exception as exc:
            os.close(stdin_w)
            os.close(stdout_r)
            raise WorkerError(f"The fork server did not fork a worker: {exc}") from None
        child = ForkedProcess(pid, pidfd, os.fdopen(stdin_w, "wb"), os.fdopen(stdout_r, "rb"))
        with self._lock:
            self._children[pid] = child
            early = self._early_exits.pop(pid, None)
        if early is not None:
            child._exited(early)
        return child

    def stop(self) -> None:
        """Close the socket (the fork server exits) and wait for it; bounded."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        proc = self._proc
        if proc is not None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(5)

    def _read(self) -> None:
        """The reader thread: spawn replies and exit reports, until the fork server is gone."""
        sock = self._sock
        assert sock is not None
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, _DATAGRAM, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            try:
                message = json.loads(data)
            except ValueError:
                message = {}
            if "exit" in message:
                with self._lock:
                    child = self._children.pop(message["exit"], None)
                    if child is None:
                        self._early_exits[message["exit"]] = int(message.get("code", -1))
                if child is not None:
                    child._exited(int(message.get("code", -1)))
            elif "id" in message:
                with self._lock:
                    future = self._pending.pop(message["id"], None)
                if future is None:
                    for fd in fds:
                        os.close(fd)
                elif "pid" in message and fds:
                    future.set_result((int(message["pid"]), fds[0]))
                else:
                    for fd in fds:
                        os.close(fd)
                    future.set_exception(WorkerError(str(message.get("error", "no pid"))))
        self._gone()

    def _gone(self) -> None:
        """The fork server exited: every worker it had died with it (PDEATHSIG)."""
        proc = self._proc
        code = None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(5)
        why = (f"its fork server (pid {proc.pid if proc else '?'}) exited with code {code}, "
               "and its workers with it")
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        with self._lock:
            children, self._children = list(self._children.values()), {}
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            future.set_exception(WorkerError(why))
        for child in children:
            child._exited(-signal.SIGKILL, why)
        if children:
            _log.warning("%s: %d workers", why, len(children))


# --- the fork server's side ------------------------------------------------------------------


def _reap(sock: socket.socket) -> None:
    """Report every child that exited (SIGCHLD woke us)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        with contextlib.suppress(OSError):
            sock.send(json.dumps({"exit": pid,
                                  "code": os.waitstatus_to_exitcode(status)}).encode())


def _child(fds: list[int], closing: list[int], prctl: Any, parent: int) -> int:
    """In the forked child: die with the fork server, take fds 0-2, become the worker."""
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the fork server died before prctl took effect
        return 70
    for fd in closing:
        with contextlib.suppress(OSError):
            os.close(fd)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    # New file objects over the new 0-2 (the fork server's read nothing and printed nothing).
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", buffering=1, closefd=False)  # noqa: SIM115
    from .worker import run

    return run()


def serve(fd: int) -> None:
    """The fork server's main: import once, then fork a worker per request (module doc)."""
    import ctypes

    from ._linux import linux

    sock = socket.socket(fileno=fd)
    try:
        for name in PRELOAD:
            __import__(name)
    except Exception as exc:
        sock.send(json.dumps({"ready": False,
                              "error": f"importing {name}: {type(exc).__name__}: {exc}"}).encode())
        return
    from .sandbox import python_read_paths

    python_read_paths()  # resolved once here (cached): every worker's confinement reuses it
    calls = linux()
    if calls is not None:
        calls.set_not_dumpable()  # its memory is its workers' too: no sibling reads it
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved before any fork
    except (OSError, AttributeError):
        prctl = None
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the host is not ours
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd is what wakes select
    gc.collect()
    gc.freeze()  # the modules' objects: never scanned, so never copied, in a child
    me = os.getpid()
    sock.send(json.dumps({"ready": True, "pid": me}).encode())
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
            _reap(sock)
        if sock not in ready:
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, _DATAGRAM, 3)
        except OSError:
            data, fds = b"", []
        if not data:
            return  # the host closed its end (or died): workers die with this process
        request = json.loads(data)
        if len(fds) != 3:
            for received in fds:
                os.close(received)
            sock.send(json.dumps({"id": request.get("id"),
                                  "error": f"expected 3 descriptors, got {len(fds)}"}).encode())
            continue
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                code = _child(fds, [fd, wake_r, wake_w], prctl, me)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        for received in fds:
            os.close(received)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as exc:
            os.kill(pid, signal.SIGKILL)
            sock.send(json.dumps({"id": request.get("id"),
                                  "error": f"pidfd_open: {exc.strerror}"}).encode())
            continue
        try:
            socket.send_fds(sock, [json.dumps({"id": request.get("id"), "pid": pid}).encode()],
                            [pidfd])
        finally:
            os.close(pidfd)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
