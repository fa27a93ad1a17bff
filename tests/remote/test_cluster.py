"""A cluster is a list of servers, and losing one of them fails calls at once, not at the timeout.

    kernel "west" ──calls──▶ tenant-db.query[acme] ──▶ kernel "east"
         │                                                 │
         └── nats://n0,n1,n2 ──▶  n0 ◀─▶ n1 ◀─▶ n2  ◀── nats://n0,n1,n2
                                  (3 real nats-server nodes, routed, 127.0.0.1)

A node is SIGKILLed under load: the calls in flight through it end within about a second
with an error that says the connection was lost and that the call may have run, and the
callers go on through the nodes that are left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import InvokeTimeoutError, TransportError
from signalpy_lab.kernel import Kernel, component, runnable
from signalpy_lab.remote.transport import NatsTransport

from .cluster import NatsCluster, free_ports

pytestmark = pytest.mark.timeout(120)


class Query(BaseModel):
    table: str = "users"
    target: str | None = None
    seconds: float = 0.0


@component("tenant-db")
class TenantDb:
    @runnable("query", params=Query)
    async def query(self, params: Query) -> dict[str, Any]:
        if params.seconds:
            await asyncio.sleep(params.seconds)
        return {"tenant": self.rt.target}


@pytest.fixture
def cluster() -> Iterator[NatsCluster]:
    nodes = NatsCluster().start()
    try:
        yield nodes
    finally:
        nodes.stop()


async def pair(servers_east: Any, servers_west: Any) -> tuple[Kernel, NatsTransport,
                                                               Kernel, NatsTransport]:
    east = Kernel("east")
    east.discover([TenantDb])
    east.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
    await east.boot()
    east_t = await NatsTransport(east, servers_east).start()
    west = Kernel("west")
    await west.boot()
    west_t = await NatsTransport(west, servers_west).start()
    deadline = time.monotonic() + 5
    while "tenant-db-acme.query" not in west_t.handler_names():
        assert time.monotonic() < deadline, "west never learnt east's routes"
        await asyncio.sleep(0.02)
    return east, east_t, west, west_t


async def close(*parts: Any) -> None:
    for part in parts:
        await (part.stop() if isinstance(part, NatsTransport) else part.shutdown())


class Load:
    """``callers`` tasks calling acme in a loop; every call's start, end and outcome."""

    def __init__(self, kernel: Kernel, callers: int, seconds: float = 0.0) -> None:
        self.kernel, self.seconds = kernel, seconds
        self.calls: list[tuple[float, float, Any]] = []
        self.running = True
        self.tasks = [asyncio.ensure_future(self._caller()) for _ in range(callers)]

    async def _caller(self) -> None:
        while self.running:
            started = time.monotonic()
            try:
                outcome: Any = await self.kernel.invoke(
                    "tenant-db.query", {"target": "acme", "seconds": self.seconds}, timeout=10)
            except Exception as exc:
                outcome = exc
            self.calls.append((started, time.monotonic(), outcome))
            if isinstance(outcome, Exception):
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.running = False
        await asyncio.gather(*self.tasks)

    def in_flight_at(self, moment: float) -> list[tuple[float, float, Any]]:
        return [c for c in self.calls if c[0] <= moment <= c[1]]

    def after(self, moment: float) -> list[tuple[float, float, Any]]:
        return [c for c in self.calls if c[0] >= moment]


def a_dead_url() -> str:
    return f"nats://127.0.0.1:{free_ports(1)[0]}"


async def test_a_list_or_a_comma_separated_string_skips_a_server_that_is_down(
        cluster) -> None:
    """The first URL refuses; the transport connects to the next and names the one in use."""
    kernel = Kernel("k")
    await kernel.boot()
    dead = a_dead_url()
    for servers in ([dead, cluster.url(1)], f"{dead}, {cluster.url(1)}"):
        transport = await NatsTransport(kernel, servers).start()
        try:
            assert (cluster.url(1), (dead, cluster.url(1)), "connected") == (
                transport.url, transport.servers, transport.status().state)
        finally:
            await transport.stop()


async def test_start_gives_up_in_bounded_time_naming_every_url() -> None:
    """Nothing listens: one error within the connect timeout, every URL and why it failed."""
    kernel = Kernel("k")
    await kernel.boot()
    first, second = a_dead_url(), a_dead_url()
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        await NatsTransport(kernel, [first, second], connect_timeout=1.0).start()
    assert time.monotonic() - started < 2.5
    text = str(caught.value)
    assert f"tried {first}, {second}" in text
    assert "Connect call failed" in text
    assert "Client.connect must be called first" not in text


async def test_killing_the_callers_node_fails_its_calls_at_once_then_calls_go_on(
        cluster) -> None:
    """20 slow calls in flight through west's node: they end within 2 s, honestly, not at 10 s."""
    east, east_t, west, west_t = await pair(cluster.urls, cluster.urls)
    try:
        victim = cluster.node_of(west_t.url)
        if cluster.node_of(east_t.url) == victim:  # keep east out of it: a caller-side loss
            await east_t.stop()
            east_t = await NatsTransport(east, [u for k, u in enumerate(cluster.urls)
                                                if k != victim]).start()
        load = Load(west, callers=20, seconds=2.0)
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        cluster.kill(victim)
        await asyncio.sleep(4.0)
        await load.stop()
        cut = load.in_flight_at(killed)
        assert 20 == len(cut)
        assert max(end for _, end, _ in cut) - killed < 2.0
        assert all(isinstance(o, TransportError) and "lost its connection to NATS" in str(o)
                   and "may have run" in str(o) for _, _, o in cut), cut
        assert any(o == {"tenant": "acme"} for _, _, o in load.after(killed + 1.0))
        assert west_t.url != cluster.url(victim)
    finally:
        await close(west_t, east_t, west, east)


@pytest.mark.slow
async def test_killing_the_serving_nodes_node_under_load_stalls_no_caller(cluster) -> None:
    """100 callers, east's node killed: no call waits for the timeout, all go on after."""
    east, east_t, west, west_t = await pair(cluster.urls[1:], cluster.urls[0])
    try:
        load = Load(west, callers=100)
        await asyncio.sleep(1.0)
        killed = time.monotonic()
        cluster.kill(cluster.node_of(east_t.url))
        await asyncio.sleep(4.0)
        await load.stop()
        assert len(load.calls) > 1000
        around = [c for c in load.calls if c[1] >= killed]
        assert max(end - start for start, end, _ in around) < 2.5
        failures = [o for _, _, o in around if isinstance(o, Exception)]
        assert not [f for f in failures if isinstance(f, InvokeTimeoutError)]
        assert all(isinstance(f, TransportError) for f in failures), failures[:3]
        late = load.after(killed + 2.0)
        assert late
        assert all(o == {"tenant": "acme"} for _, _, o in late), late[:3]
    finally:
        await close(west_t, east_t, west, east)


async def test_workers_start_and_restart_when_the_first_url_is_down(cluster,
                                                                     monkeypatch) -> None:
    """SIGNALPY_LAB_NATS_URL lists the cluster; with its first node dead, hot_add and
    restart of a worker still work (the worker is given the whole list)."""
    import os
    import signal

    from signalpy_lab.providers import DEFAULT_PROVIDERS

    monkeypatch.setenv("SIGNALPY_LAB_NATS_URL", ",".join(cluster.urls))
    cluster.kill(0)
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, TenantDb])
    kernel.instantiate("config")
    await kernel.boot()
    try:
        started = time.monotonic()
        await kernel.hot_add("tenant-db", "tenant-db-hooli", {"target": "hooli"},
                             isolation="process")
        assert {"tenant": "hooli"} == await kernel.invoke("tenant-db.query",
                                                          {"target": "hooli"})
        host = kernel.isolation_host("process")
        assert tuple(cluster.urls) == host.transport.servers
        pid = kernel.instance("tenant-db-hooli").pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while kernel.instance("tenant-db-hooli").state.value != "failed":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await kernel.restart("tenant-db-hooli")
        assert {"tenant": "hooli"} == await kernel.invoke("tenant-db.query",
                                                          {"target": "hooli"})
        assert time.monotonic() - started < 20
    finally:
        await kernel.shutdown()
