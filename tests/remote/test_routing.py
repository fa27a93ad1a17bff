"""The right instance answers: a call naming a target reaches that target's instance, wherever
it lives, and never an untargeted instance named like the routed name.

    kernel "a" ── tenant-db-a0, tenant-db-a1 ─────────────┐
                                                          nats-server (127.0.0.1, free port)
    kernel "b" ── tenant-db (its default instance) ───────┘
                  b.invoke("tenant-db.query", {"target": "a0"})  →  a's tenant-db-a0, not b's own
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import UnknownTargetError
from signalpy_lab.kernel import Kernel, component, runnable
from signalpy_lab.providers import DEFAULT_PROVIDERS
from signalpy_lab.remote.transport import NatsTransport


class Query(BaseModel):
    table: str = "users"
    target: str | None = None


@component("tenant-db")
class TenantDb:
    @runnable("query", params=Query)
    def query(self, params: Query) -> dict[str, Any]:
        return {"tenant": self.rt.target or "unknown", "instance": self.rt.name,
                "pid": os.getpid()}


@component("tenant-admin", depends=["tenant-db"])
class Admin:
    """Untargeted; depends on the factory by name, so a default `tenant-db` stays beside it."""


async def connect(kernel: Kernel, server: Any) -> NatsTransport:
    return await NatsTransport(kernel, server.url, nkeys_seed=server.admin_seed).start()


async def eventually(check: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return value


@pytest.fixture
async def kernels(nats_server):
    """A serves a0 and a1; B discovered the same factory, has no tenants: a default instance."""
    a, b = Kernel("a"), Kernel("b")
    a.discover([TenantDb])
    for tenant in ("a0", "a1"):
        a.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
    b.discover([TenantDb])
    await a.boot()
    await b.boot()
    assert "tenant-db" in {i.name for i in b.instances()}
    transports = [await connect(a, nats_server), await connect(b, nats_server)]
    b_transport = transports[1]
    assert await eventually(lambda: "tenant-db-a1.query" in b_transport.handler_names())
    yield a, b
    for transport in transports:
        await transport.stop()
    await b.shutdown()
    await a.shutdown()


async def test_a_thousand_routed_calls_from_b_are_answered_by_a_s_right_instance(
        kernels) -> None:
    """Every one of 1,000 calls from B names a0 or a1 and gets that tenant's instance on A."""
    _a, b = kernels
    wrong = []
    for n in range(1000):
        tenant = ("a0", "a1")[n % 2]
        answer = await b.invoke("tenant-db.query", {"target": tenant})
        if (answer["tenant"], answer["instance"]) != (tenant, f"tenant-db-{tenant}"):
            wrong.append((tenant, answer))
    assert [] == wrong


async def test_a_target_nobody_serves_is_refused_in_one_line_naming_a0_and_a1(kernels) -> None:
    """B's default instance never answers it: UnknownTargetError, one line, A's targets."""
    _a, b = kernels
    with pytest.raises(UnknownTargetError) as caught:
        await b.invoke("tenant-db.query", {"target": "zz"})
    assert ("No instance serves 'tenant-db.query' for target 'zz'. Known targets: 'a0', "
            "'a1'.") == str(caught.value)


async def test_an_untargeted_call_still_reaches_b_s_default_instance(kernels) -> None:
    """The default keeps its exact name for callers that name no target."""
    _a, b = kernels
    answer = await b.invoke("tenant-db.query")
    assert ("unknown", "tenant-db") == (answer["tenant"], answer["instance"])


async def test_a_third_kernel_skips_b_s_advertised_default_for_a_target(nats_server,
                                                                      kernels) -> None:
    """C has nothing of its own; B advertises its default's exact `tenant-db.query`, A the
    routes: a call naming a1 goes by A's route."""
    c = Kernel("c")
    await c.boot()
    transport = await connect(c, nats_server)
    try:
        assert await eventually(lambda: {"tenant-db.query", "tenant-db-a1.query"} <= set(
            transport.handler_names()))
        assert "tenant-db-a1" == (await c.invoke("tenant-db.query", {"target": "a1"}))[
            "instance"]
        with pytest.raises(UnknownTargetError, match="Known targets: 'a0', 'a1'.$"):
            await c.invoke("tenant-db.query", {"target": "zz"})
    finally:
        await transport.stop()
        await c.shutdown()


async def test_a_process_isolated_tenant_answers_not_a_kept_default(tmp_path) -> None:
    """hooli lives in a worker; the kernel's default `tenant-db` stays (the admin needs it):
    the call naming hooli reaches the worker, an unknown target is refused naming hooli."""
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, TenantDb, Admin])
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    await kernel.boot()
    try:
        await kernel.hot_add("tenant-db", "tenant-db-hooli", {"target": "hooli"},
                             isolation="process")
        assert "tenant-db" in {i.name for i in kernel.instances()}
        answer = await kernel.invoke("tenant-db.query", {"target": "hooli"})
        assert ("hooli", kernel.instance("tenant-db-hooli").pid) == (answer["tenant"],
                                                                     answer["pid"])
        assert os.getpid() != answer["pid"]
        with pytest.raises(UnknownTargetError, match="for target 'zz'. Known targets: "
                                                     "'hooli'.$"):
            await kernel.invoke("tenant-db.query", {"target": "zz"})
    finally:
        await kernel.shutdown()
