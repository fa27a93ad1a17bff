"""Kernels reach each other's instances through the same `invoke`, over a real nats-server.

    kernel "east" ── serves tenant-db-acme, tenant-db-globex ──┐
                                                              nats-server (127.0.0.1, free port)
    kernel "west" ── calls tenant-db.query + target ─────────┘
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import (
    InvalidParamsError,
    InvokeTimeoutError,
    RouteConflictError,
    TransportError,
    UnknownHandlerError,
    UnknownTargetError,
)
from signalpy_lab.kernel import Kernel, component, runnable
from signalpy_lab.remote.transport import NatsTransport


class Query(BaseModel):
    table: str = "users"
    limit: int = 10
    target: str | None = None


class Row(BaseModel):
    tenant: str
    table: str


@component("tenant-db")
class TenantDb:
    @runnable("query", params=Query)
    async def query(self, params: Query) -> Row:
        return Row(tenant=self.rt.target, table=params.table)

    @runnable("fail", params=Query)
    def fail(self, params: Query) -> None:
        raise ValueError(f"table {params.table!r} does not exist")

    @runnable("slow", params=Query)
    async def slow(self, params: Query) -> str:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            self.cancelled = getattr(self, "cancelled", 0) + 1
            raise
        return "late"


def tenant_kernel(name: str, *tenants: str) -> Kernel:
    kernel = Kernel(name)
    kernel.discover([TenantDb])
    for tenant in tenants:
        kernel.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
    return kernel


async def connect(kernel: Kernel, server: Any, **kwargs: Any) -> NatsTransport:
    if kernel.state.value == "created":
        await kernel.boot()
    return await NatsTransport(kernel, server.url, nkeys_seed=server.admin_seed,
                               **kwargs).start()


async def eventually(check: Any, seconds: float = 5.0) -> Any:
    """Poll ``check()`` until it returns a truthy value (bounded)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.02)


@pytest.fixture
async def east(nats_server):
    kernel = tenant_kernel("east", "acme", "globex")
    transport = await connect(kernel, nats_server)
    yield kernel
    await transport.stop()
    await kernel.shutdown()


@pytest.fixture
async def west(nats_server, east):
    """Joins after east: it learns east's routes from the routes query."""
    kernel = Kernel("west")
    transport = await connect(kernel, nats_server)
    yield kernel
    await transport.stop()
    await kernel.shutdown()


async def test_exact_and_routed_calls_cross_kernels(west) -> None:
    """The same `invoke`, two routing kinds; the pydantic result arrives as its JSON."""
    assert {"tenant": "acme", "table": "orders"} == await west.invoke(
        "tenant-db.query", {"target": "acme", "table": "orders"})
    assert {"tenant": "globex", "table": "users"} == await west.invoke("tenant-db-globex.query")


async def test_a_late_joiner_learns_routes_and_a_removed_route_is_withdrawn(
        nats_server, east, west) -> None:
    """hooli joins east after west connected; removing it withdraws the route."""
    await east.hot_add("tenant-db", "tenant-db-hooli", {"target": "hooli"})
    transport = next(t for t in west.bus._transports if isinstance(t, NatsTransport))
    assert await eventually(lambda: "tenant-db-hooli.query" in transport.handler_names())
    assert "hooli" == (await west.invoke("tenant-db.query", {"target": "hooli"}))["tenant"]
    await east.hot_remove("tenant-db-hooli")
    assert await eventually(lambda: "tenant-db-hooli.query" not in transport.handler_names())
    with pytest.raises(UnknownTargetError, match="serves 'tenant-db.query' for target 'hooli'"):
        await west.invoke("tenant-db.query", {"target": "hooli"})


async def test_params_are_validated_where_the_handler_lives(west) -> None:
    with pytest.raises(InvalidParamsError, match=r"limit: Input should be a valid integer.*"
                                                 r"remote handler 'tenant-db-acme.query' on "
                                                 r"'east'"):
        await west.invoke("tenant-db.query", {"target": "acme", "limit": "ten"})


async def test_remote_errors_come_back_as_the_same_type(west) -> None:
    with pytest.raises(ValueError, match=r"table 'nope' does not exist \(remote handler "
                                         r"'tenant-db-acme.fail' on 'east'\)"):
        await west.invoke("tenant-db-acme.fail", {"table": "nope"})


async def test_every_call_has_a_timeout(west) -> None:
    started = time.monotonic()
    with pytest.raises(InvokeTimeoutError, match="'tenant-db-acme.slow' on node 'east' did "
                                                 "not answer within 0.3s"):
        await west.invoke("tenant-db-acme.slow", timeout=0.3)
    assert time.monotonic() - started < 2


async def test_the_far_side_cancels_a_call_past_its_deadline(east, west) -> None:
    """The caller gives up at 0.3 s; the serving kernel cancels the handler soon after."""
    component = east.component("tenant-db-acme")
    component.cancelled = 0
    with pytest.raises(InvokeTimeoutError):
        await west.invoke("tenant-db-acme.slow", timeout=0.3)
    assert await eventually(lambda: component.cancelled == 1, 2.0)


async def test_an_unknown_name_lists_the_remote_ones(west) -> None:
    with pytest.raises(UnknownHandlerError, match="Did you mean 'tenant-db-acme.query'"):
        await west.invoke("tenant-db-acme.qeury")


async def test_a_route_served_by_two_kernels_is_never_chosen_silently(nats_server, east,
                                                                     west) -> None:
    """A second kernel also serving acme: west refuses to pick one, naming both."""
    rival = tenant_kernel("rival", "acme")
    transport = await connect(rival, nats_server)
    try:
        west_transport = next(t for t in west.bus._transports if isinstance(t, NatsTransport))
        assert await eventually(lambda: west_transport.conflicts())
        with pytest.raises(RouteConflictError, match="'tenant-db.query' for target 'acme' is "
                                                     "advertised as"):
            await west.invoke("tenant-db.query", {"target": "acme"})
        assert "globex" == (await west.invoke("tenant-db.query", {"target": "globex"}))["tenant"]
    finally:
        await transport.stop()
        await rival.shutdown()


async def test_a_kernel_that_vanished_fails_calls_at_once(nats_server, west) -> None:
    """No withdrawal was sent (a crash): NATS answers 'no responders' and the call fails now."""
    ghost = tenant_kernel("ghost", "initech")
    transport = await connect(ghost, nats_server)
    west_transport = next(t for t in west.bus._transports if isinstance(t, NatsTransport))
    assert await eventually(lambda: "tenant-db-initech.query" in west_transport.handler_names())
    await transport._nc.close()  # gone without a word
    await asyncio.sleep(0.2)  # the server notices a closed socket asynchronously
    started = time.monotonic()
    with pytest.raises(TransportError, match="nobody serves spl.v1.call.ghost"):
        await west.invoke("tenant-db.query", {"target": "initech"}, timeout=5)
    assert time.monotonic() - started < 1.0
    await ghost.shutdown()


async def test_a_server_restart_fails_in_flight_calls_clearly_then_recovers(
        nats_server, east, west) -> None:
    """Calls during the restart raise TransportError or a timeout; afterwards calls work."""
    calls = [asyncio.ensure_future(west.invoke("tenant-db-acme.slow", timeout=3))
             for _ in range(3)]
    await asyncio.sleep(0.1)
    nats_server.restart()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, (TransportError, InvokeTimeoutError)) for o in outcomes), outcomes

    async def answers() -> bool:
        try:
            return (await west.invoke("tenant-db.query", {"target": "acme"}, timeout=1))[
                "tenant"] == "acme"
        except (TransportError, InvokeTimeoutError):
            return False

    deadline = time.monotonic() + 10
    while not await answers():
        assert time.monotonic() < deadline, "no recovery within 10 s"
        await asyncio.sleep(0.1)


async def test_a_kernel_in_another_process_routes_to_this_one(nats_server, east,
                                                              tmp_path: Path) -> None:
    """A second OS process boots its own kernel and calls east's tenants by route."""
    script = tmp_path / "caller.py"
    script.write_text(textwrap.dedent("""
        import asyncio, json, sys
        from signalpy_lab.kernel import Kernel
        from signalpy_lab.remote.transport import NatsTransport

        async def main(url):
            seed = sys.stdin.readline().strip()  # a secret: never in argv
            kernel = Kernel("far-away")
            await kernel.boot()
            transport = await NatsTransport(kernel, url, nkeys_seed=seed).start()
            answers = [await kernel.invoke("tenant-db.query", {"target": t, "table": "t"})
                       for t in ("acme", "globex")]
            print(json.dumps({"answers": answers, "pid": __import__("os").getpid()}))
            await transport.stop()

        asyncio.run(main(*sys.argv[1:]))
    """))
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(script), nats_server.url],
        input=nats_server.admin_seed + "\n", capture_output=True, text=True, timeout=60)
    assert 0 == done.returncode, done.stderr
    import json

    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert [{"tenant": "acme", "table": "t"}, {"tenant": "globex", "table": "t"}] == \
        out["answers"]
    assert os.getpid() != out["pid"]


async def test_a_login_made_while_the_server_reloads_its_users_still_connects(
        nats_server) -> None:
    """nats-server refuses a valid login now and then while it reloads its users (workers
    starting beside each other add users): ``start()`` tries again within its grace, so every
    connect succeeds, made while another thread keeps adding users: at least 30 connects,
    and as many more as it takes for 30 users (30 reloads) to be added meanwhile."""
    import threading

    from signalpy_lab.remote.server import new_user_seed

    seed = new_user_seed()
    nats_server.add_user("w-steady", seed, subscribe=["spl.v1.call.w-steady.>"])
    stop, added = threading.Event(), []

    def churn() -> None:
        while not stop.is_set():
            name = f"w-churn-{len(added)}"
            nats_server.add_user(name, new_user_seed(), subscribe=[f"spl.v1.call.{name}.>"])
            added.append(name)

    thread = threading.Thread(target=churn)
    thread.start()
    failures = []
    connects = 0
    try:
        # Counted both ways: on a loaded machine the reloads are slower than the connects,
        # and a fixed 30 connects once overlapped only 29 reloads.
        while connects < 30 or (len(added) < 30 and connects < 300):
            connects += 1
            kernel = Kernel(f"steady-{connects}")
            await kernel.boot()
            try:
                transport = await NatsTransport(kernel, nats_server.url, nkeys_seed=seed,
                                                serve=False, announce=False).start()
                await transport.stop()
            except TransportError as exc:
                failures.append(str(exc))
            await kernel.shutdown()
    finally:
        stop.set()
        thread.join()
        for name in [*added, "w-steady"]:
            nats_server.remove_user(name)
    assert len(added) >= 30  # the control: reloads really ran during the connects
    assert [] == failures


async def test_a_wrong_key_is_refused_after_the_grace_not_the_whole_timeout(
        nats_server) -> None:
    """A key the server does not know ends ``start()`` in about ``LOGIN_GRACE_SECONDS``,
    naming the server's refusal, though the connect timeout is 5 s."""
    from signalpy_lab.remote.server import new_user_seed
    from signalpy_lab.remote.transport import LOGIN_GRACE_SECONDS

    kernel = Kernel("stranger")
    await kernel.boot()
    started = time.monotonic()
    with pytest.raises(TransportError, match="Authorization Violation"):
        await NatsTransport(kernel, nats_server.url, nkeys_seed=new_user_seed(),
                            serve=False, announce=False).start()
    assert time.monotonic() - started < LOGIN_GRACE_SECONDS + 2.5
    await kernel.shutdown()
