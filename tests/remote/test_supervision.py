"""The private nats-server is supervised: killed under load, it comes back, and it shows.

    kernel ── tenant-db-hooli (worker) ══ private nats-server ══ SIGKILL ──▶ restarted
                                              (same port, same users)
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import TransportError
from signalpy_lab.kernel import Kernel, component, runnable
from signalpy_lab.kernel.events import TransportStateChanged
from signalpy_lab.providers import DEFAULT_PROVIDERS
from signalpy_lab.remote.server import NatsServer, NatsServerError

pytestmark = pytest.mark.timeout(120)


class Query(BaseModel):
    target: str | None = None
    seconds: float = 0.0


@component("echo-db")
class EchoDb:
    @runnable("query", params=Query)
    async def query(self, params: Query) -> dict[str, Any]:
        if params.seconds:
            await asyncio.sleep(params.seconds)
        return {"tenant": self.rt.target, "pid": os.getpid()}


def test_a_supervised_server_is_restarted_on_its_port_after_it_dies() -> None:
    """SIGKILL: down, then running again on the same port, with the states reported."""
    seen: list[str] = []
    server = NatsServer().start()
    try:
        server.supervise(lambda state, detail: seen.append(state))
        port, pid = server.port, server.pid
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.restarts < 1:
            assert time.monotonic() < deadline, f"not restarted: {server.state_detail}"
            time.sleep(0.02)
        assert (port, "running", ["down", "restarting", "running"]) == (
            server.port, server.state, seen)
        assert pid != server.pid
        assert "exited with code -9" in server.state_detail
    finally:
        server.stop()
    assert (None, "stopped") == (server.pid, server.state)


def test_supervise_needs_a_running_server() -> None:
    with pytest.raises(NatsServerError, match="call start\\(\\) first"):
        NatsServer().supervise()


@pytest.mark.slow
async def test_a_dead_private_server_fails_calls_at_once_shows_and_comes_back() -> None:
    """20 calls in flight to a worker when the server dies: they fail within 2 s saying so;
    the transport shows 'restarting'; calls work again once it is back."""
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, EchoDb])
    kernel.instantiate("config")
    kernel.instantiate("echo-db", "echo-db-hooli", {"target": "hooli"}, isolation="process")
    await kernel.boot()
    states: list[tuple[str, str | None]] = []

    def record(event: Any) -> None:
        if isinstance(event, TransportStateChanged):
            info = {i.name: i for i in kernel.instances()}["echo-db-hooli"]
            states.append((event.new, info.transport))

    unsubscribe = kernel.events.subscribe(record)
    try:
        host = kernel.isolation_host("process")
        assert "active" == kernel.instance("echo-db-hooli").state.value
        assert "connected" == {i.name: i for i in kernel.instances()}["echo-db-hooli"].transport
        calls = [asyncio.ensure_future(kernel.invoke("echo-db.query",
                                                     {"target": "hooli", "seconds": 3}))
                 for _ in range(20)]
        await asyncio.sleep(0.5)
        killed = time.monotonic()
        os.kill(host.server.pid, signal.SIGKILL)
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert time.monotonic() - killed < 2.0
        assert all(isinstance(o, TransportError) and "lost its connection to NATS" in str(o)
                   and "may have run" in str(o) for o in outcomes), outcomes[:2]
        deadline = time.monotonic() + 15
        refusals: list[str] = []
        while True:
            try:
                answer = await kernel.invoke("echo-db.query", {"target": "hooli"}, timeout=2)
                break
            except TransportError as exc:
                refusals.append(str(exc))
            assert time.monotonic() < deadline, f"no recovery: {refusals[-1:]}"
            await asyncio.sleep(0.1)
        assert not [r for r in refusals if "reconnects by itself" in r]
        assert ("hooli", kernel.instance("echo-db-hooli").pid) == (answer["tenant"],
                                                                   answer["pid"])
        assert 1 == host.server.restarts
        assert ("restarting", "restarting") in states, states
        assert ("connected", "connected") == states[-1]
        assert "active" == kernel.instance("echo-db-hooli").state.value
    finally:
        unsubscribe()
        await kernel.shutdown()
