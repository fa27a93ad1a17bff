"""Hostile code inside a worker: confine itself (or not), try every reach, print what happened.

``tests/remote/test_sandbox.py`` runs it as a child process, ``python hostile.py``, with one
JSON object on stdin: the world around it (its own storage folder, another tenant's, the
server's config and pid, listeners the test opened, a sibling process, a descriptor the host
leaked) and ``confine``: ``null`` to stay unconfined (the control run, proving each reach is
real), or the ``Confinement`` fields to change from ``Confinement.for_worker(...)``. It
prints one JSON object: each reach's outcome, ``"ok"``, ``"refused"`` (``PermissionError``:
EACCES or EPERM) or ``"<error>: <errno>"``, and some facts about the process.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from signalpy_lab.remote._linux import linux
from signalpy_lab.remote.sandbox import Confinement, confine

_FRESH = ("json", "decimal", "sqlite3", "pydantic", "nats")


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


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(64)


def write(path: str) -> None:
    with open(path, "w") as f:
        f.write("acme was here")


def tcp(port: int, host: str = "127.0.0.1", family: int = socket.AF_INET, proto: int = 0,
        ) -> None:
    with socket.socket(family, socket.SOCK_STREAM, proto) as s:
        s.settimeout(5)
        s.connect((host, port))


def fast_open(port: int) -> None:
    with socket.socket() as s:
        s.sendto(b"x", socket.MSG_FASTOPEN, ("127.0.0.1", port))


def bind() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))


def listen_unbound() -> None:
    with socket.socket() as s:
        s.listen()  # binds an ephemeral port, then accepts connections there


def udp(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"x", ("127.0.0.1", port))


def unix(address: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(address)


def host_memory(pid: int) -> None:
    """Read 16 bytes of the host's heap through ``/proc/<pid>/mem`` (address from ``maps``)."""
    address = 0
    try:
        with open(f"/proc/{pid}/maps") as maps:
            line = next(line for line in maps if "rw-p" in line)
            address = int(line.split("-")[0], 16)
    except OSError:
        pass  # refused: try the mem file anyway
    with open(f"/proc/{pid}/mem", "rb") as mem:
        mem.seek(address)
        mem.read(16)


def stop_sibling(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)
    os.kill(pid, signal.SIGCONT)  # only reached if the stop was allowed


def sysv_shm() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(0, 4096, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
    if shmid == -1:
        raise OSError(ctypes.get_errno(), "shmget")
    libc.shmctl(shmid, 0, None)  # IPC_RMID


def user_keyring() -> None:
    calls = linux()
    assert calls is not None
    calls.syscall("keyctl", ctypes.c_long(0), ctypes.c_long(-4), ctypes.c_long(0))  # get @u


def watch(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    try:
        if libc.inotify_add_watch(fd, path.encode(), 0xFFF) == -1:  # IN_ALL_EVENTS
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
    finally:
        os.close(fd)


def chown_own_file(path: str) -> None:
    write(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fchown(fd, 12345, 12345)  # CAP_CHOWN; on a descriptor, which seccomp allows
    finally:
        os.close(fd)


def fresh_imports() -> dict[str, str]:
    for name in [m for m in sys.modules if m == "json" or m.startswith("json.")]:
        del sys.modules[name]  # imported above to read stdin: drop it, import it again
    return {f"import {name}": outcome(lambda name=name: __import__(name)) for name in _FRESH}


def nats_round_trip(nats: dict[str, Any], subject: str) -> None:
    import asyncio

    import nats as nats_py

    async def main() -> None:
        nc = await nats_py.connect(nats["url"], nkeys_seed_str=nats["seed"],
                                   connect_timeout=5, allow_reconnect=False,
                                   max_reconnect_attempts=0)
        try:
            async def echo(msg: Any) -> None:
                await msg.respond(msg.data)

            await nc.subscribe(subject, cb=echo)
            reply = await nc.request(subject, b"ping", timeout=5)
            assert reply.data == b"ping"
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(main(), 20))


def main() -> None:
    world = json.loads(sys.stdin.readline())
    out = json.dumps  # kept: fresh_imports() drops json from sys.modules
    ours, other, tmp, variant = world["own"], world["other"], world["tmp"], world["variant"]
    host, nats = os.getppid(), world["nats"]
    facts: dict[str, Any] = {"preloaded": [m for m in _FRESH if m in sys.modules]}
    if world["confine"] is not None:
        c = Confinement.for_worker(storage=ours, temp_dir=tmp, connect_ports=[nats["port"]])
        report = confine(dataclasses.replace(c, **world["confine"]))
        facts["report"] = report.to_dict()
    reaches: dict[str, Callable[[], Any]] = {
        "write own storage": lambda: write(f"{ours}/notes-{variant}.txt"),
        "read own storage": lambda: read(f"{ours}/notes-{variant}.txt"),
        "temp file in private temp dir": lambda: tempfile.mkstemp(prefix=variant),
        "read another tenant's file": lambda: read(f"{other}/secret.txt"),
        "write into another tenant's folder": lambda: write(f"{other}/intruder-{variant}.txt"),
        "list the tenants' folder": lambda: os.listdir(world["tenants"]),
        "list /tmp": lambda: os.listdir("/tmp"),
        "read /etc/passwd": lambda: read("/etc/passwd"),
        "read the server's config": lambda: read(world["server_config"]),
        "read the nats-server's /proc cmdline": lambda: read(f"/proc/{nats['pid']}/cmdline"),
        "read the host's /proc environ": lambda: read(f"/proc/{host}/environ"),
        "read the host's /proc cmdline": lambda: read(f"/proc/{host}/cmdline"),
        "read the host's /proc maps": lambda: read(f"/proc/{host}/maps"),
        "read the host's memory": lambda: host_memory(host),
        "read a descriptor the host leaked": lambda: os.read(world["leaked_fd"], 64),
        "execute a program": lambda: subprocess.run(["/bin/true"], check=True),
        "tcp connect to the nats port": lambda: tcp(nats["port"]),
        "tcp connect to another port": lambda: tcp(world["forbidden_port"]),
        "tcp connect to another port, IPv6-mapped": lambda: tcp(
            world["forbidden_port"], "::ffff:127.0.0.1", socket.AF_INET6),
        "tcp fast open to another port": lambda: fast_open(world["forbidden_port"]),
        "mptcp connect to another port": lambda: tcp(world["forbidden_port"], proto=262),
        "tcp bind": bind,
        "tcp listen without bind": listen_unbound,
        "udp send": lambda: udp(world["udp_port"]),
        "connect the host's named unix socket": lambda: unix(world["named_socket"]),
        "connect the host's abstract unix socket": lambda: unix("\0" + world["abstract_socket"]),
        "signal 0 to itself": lambda: os.kill(os.getpid(), 0),
        "signal 0 to the host": lambda: os.kill(host, 0),
        "SIGSTOP a sibling worker": lambda: stop_sibling(world["sibling"]),
        "chmod a host file": lambda: os.chmod(world["host_file"], 0o600),
        "change a host file's times": lambda: os.utime(world["host_file"]),
        "set an xattr on a host file": lambda: os.setxattr(world["host_file"], "user.probe", b"1"),
        "watch another tenant's folder": lambda: watch(other),
        "set a sibling's open-file limit": lambda: resource.prlimit(
            world["sibling"], resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE)),
        "System V shared memory": sysv_shm,
        "read the user keyring": user_keyring,
        "chown its own file (CAP_CHOWN)": lambda: chown_own_file(f"{ours}/chown-{variant}"),
    }
    results = {name: outcome(reach) for name, reach in reaches.items()}
    results.update(fresh_imports())
    results["nats request/reply"] = outcome(lambda: nats_round_trip(nats, f"probe.{variant}"))
    calls = linux()
    assert calls is not None
    facts.update(dumpable=calls.dumpable(), no_new_privs=calls.no_new_privs(),
                 capabilities=calls.capabilities(), environment=sorted(os.environ),
                 tempdir=tempfile.tempdir or os.environ.get("TMPDIR"))
    print(out({"reaches": results, "facts": facts}), flush=True)


if __name__ == "__main__":
    main()
