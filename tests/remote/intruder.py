"""A hostile tenant: a component whose runnable tries every reach of issue 19 from its worker.

``tests/remote/test_worker_sandbox.py`` hot-adds it with ``isolation="process"`` (the normal
path: forked by the fork server, confined by ``worker.run``, its class imported by module
path from this file) and calls ``intruder.reach`` with the world around it; the same
functions run in the test's own process first (``reaches(world)``), the control that shows
each reach is real.

Each outcome is ``"ok"``, ``"refused"`` (``PermissionError``: EACCES or EPERM) or
``"<ErrorType>: <errno>"``.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from signalpy_lab.kernel import component, runnable


class World(BaseModel):
    """What the intruder is told about the machine (what it could find through ``/proc``)."""

    own_storage: str
    other_storage: str
    server_config: str
    server_pid: int
    host_pid: int
    sibling_pid: int
    host_port: int
    nats_port: int
    target: str | None = None


def outcome(reach: Callable[[], Any]) -> str:
    try:
        reach()
    except PermissionError:
        return "refused"
    except OSError as exc:
        return f"{type(exc).__name__}: {errno.errorcode.get(exc.errno or 0, exc.errno)}"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(64)


def _write(path: str) -> None:
    with open(path, "w") as f:
        f.write("the intruder was here")


def _tcp(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def _memory(pid: int) -> None:
    """16 bytes of ``pid``'s heap through ``/proc/<pid>/mem`` (the address from ``maps``)."""
    address = 0
    try:
        with open(f"/proc/{pid}/maps") as maps:
            address = int(next(line for line in maps if "rw-p" in line).split("-")[0], 16)
    except OSError:
        pass  # refused: try the mem file anyway
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(address)
        mem.read(16)


def _stop(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGCONT)  # only reached if the stop was allowed


def reaches(world: World) -> dict[str, str]:
    """Every reach, tried in this process, in this order."""
    attempts: dict[str, Callable[[], Any]] = {
        "write its own storage": lambda: _write(f"{world.own_storage}/notes.txt"),
        "read its own storage": lambda: _read(f"{world.own_storage}/notes.txt"),
        "tcp connect to the nats port": lambda: _tcp(world.nats_port),
        "read the server's config file": lambda: _read(world.server_config),
        "list the server's folder": lambda: os.listdir(os.path.dirname(world.server_config)),
        "read the server's /proc cmdline": lambda: _read(f"/proc/{world.server_pid}/cmdline"),
        "read another tenant's file": lambda: _read(f"{world.other_storage}/secret.txt"),
        "write into another tenant's folder": lambda: _write(f"{world.other_storage}/x.txt"),
        "list another tenant's folder": lambda: os.listdir(world.other_storage),
        "read the host's /proc environ": lambda: _read(f"/proc/{world.host_pid}/environ"),
        "read the host's /proc maps": lambda: _read(f"/proc/{world.host_pid}/maps"),
        "read the host's memory": lambda: _memory(world.host_pid),
        "read a sibling worker's /proc maps": lambda: _read(f"/proc/{world.sibling_pid}/maps"),
        "read a sibling worker's memory": lambda: _memory(world.sibling_pid),
        "tcp connect to the host's listener": lambda: _tcp(world.host_port),
        "signal 0 to the host": lambda: os.kill(world.host_pid, 0),
        "SIGSTOP a sibling worker": lambda: _stop(world.sibling_pid),
        "list /tmp": lambda: os.listdir("/tmp"),
    }
    return {name: outcome(attempt) for name, attempt in attempts.items()}


@component("intruder", depends=["config"])
class Intruder:
    """A tenant whose code tries to reach everything it should not."""

    @runnable("reach", params=World)
    def reach(self, params: World) -> dict[str, Any]:
        return {"pid": os.getpid(), "reaches": reaches(params),
                "environment": sorted(os.environ)}
