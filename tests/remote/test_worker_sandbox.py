"""Hostile code in real workers: what a process-isolated tenant can and cannot reach (issue 19).

    host (this process) ──▶ fork server ──fork──▶ acme's worker     (the intruder, confined)
         │  listener on 127.0.0.1               └─fork──▶ globex's worker  (its sibling)
         └─ private nats-server: config with public keys only

The intruder (``intruder.py``) is an ordinary tenant component started the normal way,
``hot_add(..., isolation="process")``; its runnable tries every reach the issue found and
reports each outcome. The same reaches run first in this process, unconfined, so every
refusal below is of something that works without the sandbox. Landlock's refusals skip,
naming the ABI, on a kernel without it; the lab then says ``sandbox: none (why)``.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import nats
import pytest

from signalpy_lab.kernel import Kernel
from signalpy_lab.providers import DEFAULT_PROVIDERS
from signalpy_lab.remote import wire
from signalpy_lab.remote.sandbox import landlock_abi

from .intruder import Intruder, World, reaches

pytestmark = pytest.mark.timeout(120)

ABI = landlock_abi()
needs_landlock = pytest.mark.skipif(ABI < 6, reason=f"the worker's refusals need Landlock ABI "
                                                    f"6 (scoping); this kernel's is {ABI}")


@pytest.fixture
async def world(tmp_path):
    """A host with two confined tenants (acme, the intruder; globex, its sibling), globex's
    secret in its storage folder, and a TCP listener of the host's on 127.0.0.1."""
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, Intruder])
    kernel.instantiate("storage", properties={"root": str(tmp_path / "storage")})
    kernel.instantiate("intruder", "intruder-acme", {"target": "acme"}, isolation="process")
    kernel.instantiate("intruder", "intruder-globex", {"target": "globex"},
                       isolation="process")
    await kernel.boot()
    host = kernel.isolation_host("process")
    (tmp_path / "storage" / "intruder-globex" / "secret.txt").write_text("globex's password")
    listener = socket.create_server(("127.0.0.1", 0))
    view = World(own_storage=str(tmp_path / "storage" / "intruder-acme"),
                 other_storage=str(tmp_path / "storage" / "intruder-globex"),
                 server_config=str(host.server._config_path), server_pid=host.server.pid,
                 host_pid=os.getpid(), sibling_pid=kernel.instance("intruder-globex").pid,
                 host_port=listener.getsockname()[1], nats_port=host.server.port,
                 target="acme")
    try:
        yield kernel, host, view
    finally:
        listener.close()
        await kernel.shutdown()


REFUSED = [
    "read the server's config file", "list the server's folder",
    "read the server's /proc cmdline", "read another tenant's file",
    "write into another tenant's folder", "list another tenant's folder",
    "read the host's /proc environ", "read the host's /proc maps", "read the host's memory",
    "read a sibling worker's /proc maps", "read a sibling worker's memory",
    "tcp connect to the host's listener", "signal 0 to the host", "SIGSTOP a sibling worker",
    "list /tmp",
]
ALLOWED = ["write its own storage", "read its own storage", "tcp connect to the nats port"]


@needs_landlock
async def test_every_reach_of_the_issue_is_refused_inside_a_real_worker(world) -> None:
    """Unconfined (here) each reach works; from acme's worker each is refused by the OS,
    while its own storage and the NATS port still work."""
    kernel, host, view = world
    control = await asyncio.to_thread(reaches, view)
    assert dict.fromkeys([*ALLOWED, *REFUSED], "ok") == control
    intruded = os.path.join(view.other_storage, "x.txt")
    os.remove(intruded)  # written by the control run

    answer = await kernel.invoke("intruder.reach", view.model_dump())
    assert kernel.instance("intruder-acme").pid == answer["pid"] != os.getpid()
    assert {**dict.fromkeys(ALLOWED, "ok"), **dict.fromkeys(REFUSED, "refused")} == \
        answer["reaches"]
    assert not os.path.exists(intruded)
    assert "landlock v" in (host.sandbox_state("intruder-acme") or "")


async def test_the_worker_environment_is_scrubbed_and_holds_no_secret(world,
                                                                     monkeypatch) -> None:
    """The host's environment (a secret in it) never reaches a worker: only locale, a plain
    PATH, HOME and TMPDIR (its temp dir) and Python's switches."""
    kernel, _host, view = world
    answer = await kernel.invoke("intruder.reach", view.model_dump())
    assert set(answer["environment"]) <= {
        "PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ", "PYTHONNOUSERSITE",
        "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONPATH"} | {
        n for n in answer["environment"] if n.startswith("LC_")}


async def test_no_seed_or_password_in_any_file_argv_or_environment(world) -> None:
    """The server's config holds public keys only; no seed is in its folder, nor in the
    cmdline or environ of a worker, the fork server or the nats-server."""
    kernel, host, _view = world
    seeds = [host.server.admin_seed, *(host.credentials(n)["nkeys_seed_str"]
                                       for n in ("intruder-acme", "intruder-globex"))]
    config = host.server._config_path.read_text()
    assert host.server.admin_public in config  # the control: the file is the real one
    files = [p for folder in (host.server._config_path.parent, host._dir)
             for p in folder.rglob("*") if p.is_file()]
    pids = [kernel.instance(n).pid for n in ("intruder-acme", "intruder-globex")]
    pids += [host.forks.pid, host.server.pid]
    proc = [f"/proc/{pid}/{part}" for pid in pids for part in ("cmdline", "environ")]
    texts = {str(p): p.read_bytes() for p in files}
    texts.update({path: Path(path).read_bytes() for path in proc})
    assert all(texts[f"/proc/{pid}/environ"] for pid in pids)  # readable here: root
    assert [] == [(where, seed[:4]) for where, text in texts.items() for seed in seeds
                  if seed.encode() in text]
    assert '"password"' not in config
    assert all(line.strip().startswith(('"nkey": "U', '"')) or '"nkey"' not in line
               for line in config.splitlines())


async def test_workers_are_forked_from_the_fork_server_not_the_host(world) -> None:
    """Each worker's parent is the fork server, a child of this process; none of ours."""
    kernel, host, _view = world
    forks = host.forks
    assert forks is not None
    for name in ("intruder-acme", "intruder-globex"):
        with open(f"/proc/{kernel.instance(name).pid}/stat") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        assert forks.pid == parent
    with open(f"/proc/{forks.pid}/stat") as stat:
        assert os.getpid() == int(stat.read().rsplit(")", 1)[1].split()[1])


async def test_a_dead_fork_server_fails_its_workers_clearly_and_restart_brings_them_back(
        world) -> None:
    """SIGKILL the fork server: its workers die with it, each instance fails naming it, and
    kernel.restart starts a new fork server and a new worker."""
    kernel, host, view = world
    old = host.forks.pid
    os.kill(old, 9)
    deadline = asyncio.get_running_loop().time() + 10
    while kernel.instance("intruder-acme").state.value != "failed":
        assert asyncio.get_running_loop().time() < deadline, "never noticed"
        await asyncio.sleep(0.02)
    assert "its fork server (pid" in str(kernel.instance("intruder-acme").error)
    await kernel.restart("intruder-acme")
    assert host.forks.pid not in (None, old)
    answer = await kernel.invoke("intruder.reach", view.model_dump())
    assert "ok" == answer["reaches"]["read its own storage"] or \
        "FileNotFoundError" in answer["reaches"]["read its own storage"]


async def test_only_the_host_may_send_a_worker_a_cell(world) -> None:
    """A worker's own NATS login may not publish on another worker's control subject (nor
    its own): the server refuses it, and no cell runs; the host's request is answered."""
    _kernel, host, _view = world
    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc))

    rogue = await nats.connect(host.transport.url, **host.credentials("intruder-acme"),
                               inbox_prefix=b"_INBOX_w-intruder-acme", error_cb=on_error,
                               allow_reconnect=False)
    cell = wire.encode({"op": "exec", "cell": "open('/tmp/pwned', 'w')", "timeout": 5})
    try:
        for target in ("w-intruder-globex", "w-intruder-acme"):
            await rogue.publish(wire.control_subject(target), cell)
        await rogue.flush()
        await asyncio.sleep(0.3)
    finally:
        await rogue.close()
    assert sorted(f'nats: permissions violation for publish to "spl.v1.control.{t}"'
                  for t in ("w-intruder-acme", "w-intruder-globex")) == sorted(violations)
    result = await host.run_cell("intruder-globex", "rt.target")
    assert (True, "globex") == (result.ok, result.value)


@needs_landlock
async def test_a_cell_run_inside_the_worker_is_refused_by_the_os(world) -> None:
    """``run_cell`` (what %%as uses) runs in the worker: the OS refusal is the one line of
    a PermissionError; a bug is a traceback numbered as the cell; prints come back."""
    _kernel, host, view = world
    refused = await host.run_cell("intruder-acme", f"print('trying')\n"
                                                   f"open('/proc/{os.getpid()}/environ').read()")
    assert (False, True, "trying\n") == (refused.ok, refused.refusal, refused.stdout)
    assert f"PermissionError: [Errno 13] Permission denied: '/proc/{os.getpid()}/environ'" \
        == refused.error
    bug = await host.run_cell("intruder-acme", "x = 1\nx.nope", first_line=2,
                              header="%%as intruder-acme")
    assert (False, False, "AttributeError") == (bug.ok, bug.refusal, bug.error_type)
    assert any('line 3, in <module>' in line for line in bug.traceback)
    assert "    x.nope" in bug.traceback
    value = await host.run_cell("intruder-acme", "{'target': rt.target, 'pid': __import__"
                                                 "('os').getpid(), 'me': type(self).__name__}")
    assert {"target": "acme", "me": "Intruder"} == {k: v for k, v in value.value.items()
                                                    if k != "pid"}
    assert value.value["pid"] != os.getpid()
    assert view.target == "acme"
