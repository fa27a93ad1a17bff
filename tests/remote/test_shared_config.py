"""One config across kernels, on a real nats-server's JetStream key-value bucket.

    kernel A (acme, globex; hooli in a worker)        kernel B (no tenants)
        config ──────────────── spl-config bucket ──────────────── config
    B: config.set("tenants.globex.db_url", new)  ->  A: only globex's db_url recomputes,
                                                      caused by "set on b, rev N"
    B: invoke("tenant-db.query", target=globex)  ->  A answers with the new url (read-your-writes)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from signalpy_lab.errors import ConfigBackendError, ConfigConflictError, ConfigKeyError
from signalpy_lab.examples.multi_tenant import TenantDatabase
from signalpy_lab.kernel import Kernel, caused_by
from signalpy_lab.providers import DEFAULT_PROVIDERS
from signalpy_lab.remote.server import NatsServer, new_user_seed
from signalpy_lab.remote.shared_config import SharedConfig
from signalpy_lab.remote.transport import NatsTransport

from .helpers import connect

URLS = {"acme": "postgres://db1/acme", "globex": "postgres://db2/globex"}


async def kernel_on(server: NatsServer, name: str, tenants: dict[str, str],
                    bucket: str) -> tuple[Kernel, NatsTransport, SharedConfig]:
    kernel = Kernel(name)
    kernel.discover([*DEFAULT_PROVIDERS, TenantDatabase])
    for tenant in tenants:
        kernel.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
    await kernel.boot()
    transport = await NatsTransport(kernel, server.url, nkeys_seed=server.admin_seed,
                                    node=name).start()
    shared = await SharedConfig(transport, bucket=bucket).start()
    return kernel, transport, shared


@pytest.fixture
async def pair(nats_server: NatsServer, request) -> AsyncIterator[Any]:
    """Kernel A serving acme and globex, kernel B with no tenants, one bucket per test."""
    bucket = "t-" + request.node.name.replace("_", "-")[:40]
    a = await kernel_on(nats_server, "a", URLS, bucket)
    config_a = a[0].registry.require("IConfig")
    for tenant, url in URLS.items():
        config_a.set(f"tenants.{tenant}.db_url", url)
        await a[0].invoke("tenant-db.query", {"target": tenant})
    b = await kernel_on(nats_server, "b", {}, bucket)
    yield a, b
    for kernel, transport, shared in (b, a):
        await shared.stop()
        await transport.stop()
        await kernel.shutdown()


def runs(kernel: Kernel) -> dict[str, int]:
    return {n.label: n.runs for n in kernel.graph().nodes if n.kind == "computed"}


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the timeout"
        await asyncio.sleep(0.005)


async def test_a_write_on_b_recomputes_only_that_tenant_on_a(pair) -> None:
    """B writes globex's key; A applies it: globex's db_url recomputes, acme's never runs, and
    the cause names kernel b and the revision."""
    (a, _ta, shared_a), (b, _tb, _sb) = pair
    before = runs(a)
    events: list[Any] = []
    unsubscribe = a.events.subscribe(events.append)
    b.registry.require("IConfig").set("tenants.globex.db_url", "postgres://new/globex")
    await until(lambda: a.registry.require("IConfig").get("tenants.globex.db_url")
                == "postgres://new/globex")
    answer = await a.invoke("tenant-db.query", {"target": "globex"})
    unsubscribe()
    assert "postgres://new/globex" == answer["db_url"]
    after = runs(a)
    assert before["tenant-db-acme.db_url"] == after["tenant-db-acme.db_url"]
    assert before["tenant-db-globex.db_url"] + 1 == after["tenant-db-globex.db_url"]
    [write] = [e for e in events if e.kind == "signal.set"]
    assert write.cause.command == f"set on b, rev {shared_a.applied}"


async def test_read_your_writes_across_kernels(pair) -> None:
    """A write on B, then a call from B served by A: A has applied it, 200 times of 200."""
    (_a, _ta, _sa), (b, _tb, _sb) = pair
    config_b = b.registry.require("IConfig")
    for i in range(200):
        url = f"postgres://v{i}/globex"
        await asyncio.to_thread(config_b.set, "tenants.globex.db_url", url)
        answer = await b.invoke("tenant-db.query", {"target": "globex"})
        assert url == answer["db_url"], i


async def test_a_write_from_the_kernels_loop_is_awaited_before_its_next_call(pair) -> None:
    """Component-style code on B's loop writes (it cannot block), then calls A: the call
    carries the write's revision, so A answers with it."""
    (_a, _ta, _sa), (b, _tb, _sb) = pair
    config_b = b.registry.require("IConfig")
    for i in range(50):
        config_b.set("tenants.acme.db_url", f"postgres://loop{i}/acme")  # on B's loop
        answer = await b.invoke("tenant-db.query", {"target": "acme"})
        assert f"postgres://loop{i}/acme" == answer["db_url"]


async def test_unset_and_subtree_writes_keep_their_meaning(pair) -> None:
    """A subtree write replaces what was below it on every kernel; unset lets defaults show."""
    (a, _ta, _sa), (b, _tb, _sb) = pair
    config_a, config_b = (k.registry.require("IConfig") for k in (a, b))
    await asyncio.to_thread(config_b.set, "tenants.acme.pool.min", 1)
    await asyncio.to_thread(config_b.set, "tenants.acme.pool.max", 9)
    await asyncio.to_thread(config_b.set, "tenants.acme.pool", {"size": 4})
    await until(lambda: config_a.get("tenants.acme.pool") == {"size": 4})
    await asyncio.to_thread(config_b.unset, "tenants.acme.pool")
    await until(lambda: config_a.get("tenants.acme.pool") is None)
    assert "runtime" == config_a.explain("tenants.acme.db_url").source


async def test_compare_and_set_and_history(pair) -> None:
    """A write that expects the key's last revision wins once; the loser is told what it
    found; the history lists who wrote what, at which revision."""
    (a, _ta, _sa), (b, _tb, _sb) = pair
    config_a, config_b = (k.registry.require("IConfig") for k in (a, b))

    def cas() -> tuple[int, Any]:
        last = config_b.history("tenants.globex.db_url")[-1].revision
        first = config_b.set("tenants.globex.db_url", "postgres://cas/globex",
                             expect_revision=last)
        with pytest.raises(ConfigConflictError, match=f"expected its revision {last}, found "
                                                      f"{first}"):
            config_a.set("tenants.globex.db_url", "postgres://late/globex",
                         expect_revision=last)
        return first, config_b.history("tenants.globex.db_url")

    first, history = await asyncio.to_thread(cas)
    assert ("postgres://cas/globex", "b", first) == (history[-1].value, history[-1].by,
                                                     history[-1].revision)
    assert history[0].by == "a"
    await asyncio.to_thread(config_b.set, "tenants.new.db_url", "x", expect_revision=0)
    with pytest.raises(ConfigConflictError):  # 0: the key must not exist yet
        await asyncio.to_thread(config_b.set, "tenants.new.db_url", "y", expect_revision=0)


async def test_on_the_kernels_loop_the_waiting_calls_say_to_await_instead(pair) -> None:
    """history and compare-and-set wait for the server: on the kernel's own loop they refuse
    (blocking it would deadlock), naming the awaitable that does the same."""
    (a, _ta, shared_a), _b = pair
    config_a = a.registry.require("IConfig")
    with pytest.raises(ConfigBackendError, match=r"await config.shared.history_of\(key\)"):
        config_a.history("tenants.globex.db_url")
    with pytest.raises(ConfigBackendError, match=r"await config.shared.set_if_revision"):
        config_a.set("tenants.globex.db_url", "postgres://x/globex", expect_revision=1)
    assert URLS["globex"] == config_a.get("tenants.globex.db_url")  # nothing written
    last = (await shared_a.history_of("tenants.globex.db_url"))[-1].revision
    revision = await shared_a.set_if_revision("tenants.globex.db_url", "postgres://y/globex",
                                              last)
    assert revision > last
    assert "postgres://y/globex" == config_a.get("tenants.globex.db_url")
    with pytest.raises(ConfigConflictError, match=f"expected its revision {last}"):
        await shared_a.set_if_revision("tenants.globex.db_url", "postgres://z/globex", last)


async def test_a_kernel_without_config_cannot_share(nats_server) -> None:
    kernel = Kernel("bare")
    await kernel.boot()
    async with NatsTransport(kernel, nats_server.url,
                             nkeys_seed=nats_server.admin_seed) as transport:
        with pytest.raises(ConfigBackendError, match="has no active IConfig: discover the "
                                                     "providers"):
            await SharedConfig(transport).start()
    await kernel.shutdown()


async def test_stopping_the_transport_makes_the_config_its_own_again(pair) -> None:
    """A kernel whose transport stops keeps its values and writes locally, not into a void."""
    _a, (b, transport_b, shared_b) = pair
    config_b = b.registry.require("IConfig")
    await transport_b.stop()
    assert (None, "stopped") == (config_b.shared, shared_b.state)
    config_b.set("tenants.globex.db_url", "postgres://offline/globex")
    assert "postgres://offline/globex" == config_b.get("tenants.globex.db_url")


async def test_a_key_that_cannot_be_shared_is_refused_before_anything_changes(pair) -> None:
    (_a, _ta, _sa), (b, _tb, _sb) = pair
    config_b = b.registry.require("IConfig")
    with pytest.raises(ConfigKeyError, match="cannot be shared"):
        await asyncio.to_thread(config_b.set, "tenants.acme.da tabase", 1)
    assert config_b.get("tenants.acme") == {"db_url": URLS["acme"]}


async def test_a_late_kernel_starts_from_the_bucket(nats_server, pair) -> None:
    """A third kernel that joins later reads every write made before it."""
    (a, _ta, shared_a), _b = pair
    a.registry.require("IConfig").set("region", "eu-west")
    await shared_a.barrier()
    c, tc, sc = await kernel_on(nats_server, "c", {}, shared_a.bucket)
    try:
        assert "eu-west" == c.registry.require("IConfig").get("region")
        assert URLS["acme"] == c.registry.require("IConfig").get("tenants.acme.db_url")
    finally:
        await sc.stop()
        await tc.stop()
        await c.shutdown()


async def test_a_worker_cannot_reach_the_bucket(nats_server) -> None:
    """A worker's NATS user (its own subjects only) is refused the bucket's subjects by the
    server: scoping holds across machines, not only in our checks."""
    seed = new_user_seed()
    nats_server.add_user("w-probe", seed, subscribe=["spl.v1.call.w-probe.>"],
                         publish=["spl.v1.events.w-probe"], allow_responses=True,
                         inbox_prefix="_INBOX_w-probe")
    try:
        async with connect(nats_server, seed, inbox_prefix=b"_INBOX_w-probe") as c:
            await c.nc.subscribe("$KV.spl-config.>")
            await c.nc.publish("$JS.API.STREAM.INFO.KV_spl-config", b"")
            violations = await c.next_violations(2)
    finally:
        nats_server.remove_user("w-probe")
    lowered = [v.lower() for v in violations]  # nats-py lower-cases the subject
    assert any("subscription to \"$kv.spl-config.>\"" in v for v in lowered), violations
    assert any("publish to \"$js.api.stream.info.kv_spl-config\"" in v for v in lowered)


async def test_with_the_server_gone_writes_fail_at_once_and_reads_keep_values() -> None:
    """The server dies: a write is refused at once saying so, reads keep the last values;
    once it is back, a write made on one kernel reaches the other, which caught up."""
    server = NatsServer().start()
    try:
        a, ta, sa = await kernel_on(server, "a", URLS, "outage")
        b, tb, sb = await kernel_on(server, "b", {}, "outage")
        config_a, config_b = (k.registry.require("IConfig") for k in (a, b))
        await asyncio.to_thread(config_a.set, "tenants.acme.db_url", "postgres://before/acme")
        await until(lambda: config_b.get("tenants.acme.db_url") == "postgres://before/acme")
        server._stop_process()  # the server process dies (not a clean stop)
        await until(lambda: not tb._nc.is_connected)
        started = asyncio.get_running_loop().time()
        with pytest.raises(ConfigBackendError, match="unreachable"):
            await asyncio.to_thread(config_b.set, "tenants.acme.db_url", "postgres://x/acme")
        assert asyncio.get_running_loop().time() - started < 0.5
        assert "postgres://before/acme" == config_b.get("tenants.acme.db_url")
        server.start()  # same port, same store: the bucket is still there
        await until(lambda: ta._nc.is_connected and tb._nc.is_connected, 15)
        with caused_by("after the outage"):
            await asyncio.to_thread(config_a.set, "tenants.acme.db_url", "postgres://after/acme")
        await until(lambda: config_b.get("tenants.acme.db_url") == "postgres://after/acme", 10)
        for kernel, transport, shared in ((b, tb, sb), (a, ta, sa)):
            await shared.stop()
            await transport.stop()
            await kernel.shutdown()
    finally:
        server.stop()


async def test_read_your_writes_reaches_a_worker_on_another_kernel(pair) -> None:
    """hooli runs in a worker of A: a write on B, then a call from B, which A's worker serves
    itself, sees the write (the worker asks its host to apply the bucket up to the call's
    revision first), 100 times of 100."""
    (a, _ta, _sa), (b, _tb, _sb) = pair
    config_a, config_b = (k.registry.require("IConfig") for k in (a, b))
    config_a.set("tenants.hooli.db_url", "postgres://db0/hooli")
    await a.hot_add("tenant-db", "tenant-db-hooli", {"target": "hooli"}, isolation="process")
    try:
        for i in range(100):
            url = f"postgres://w{i}/hooli"
            await asyncio.to_thread(config_b.set, "tenants.hooli.db_url", url)
            answer = await b.invoke("tenant-db.query", {"target": "hooli"})
            assert url == answer["db_url"], i
    finally:
        await a.hot_remove("tenant-db-hooli")



@contextlib.asynccontextmanager
async def first_kernel(server: NatsServer, name: str) -> AsyncIterator[NatsTransport]:
    """A kernel with one runtime config value (what it will seed a new bucket with), its
    transport started; the caller starts (and stops) the ``SharedConfig``."""
    kernel = Kernel(name)
    kernel.discover([*DEFAULT_PROVIDERS, TenantDatabase])
    await kernel.boot()
    kernel.registry.require("IConfig").set("tenants.acme.db_url", URLS["acme"])
    transport = await NatsTransport(kernel, server.url, nkeys_seed=server.admin_seed,
                                    node=name).start()
    try:
        yield transport
    finally:
        await transport.stop()
        await kernel.shutdown()


async def test_sharing_returns_with_its_own_seed_applied(nats_server) -> None:
    """The first kernel seeds the bucket with its values, and ``start()`` returns only once
    its watcher has applied that seed: what it reports next (``%config show``'s revision)
    is the seed's, not 0."""
    async with first_kernel(nats_server, "seeder") as transport:
        shared = await SharedConfig(transport, bucket="t-seed-applied").start()
        try:
            assert shared.seen >= 1
            assert shared.applied == shared.seen
        finally:
            await shared.stop()


async def test_a_watcher_too_slow_for_the_seed_warns_and_sharing_goes_on(
        nats_server, monkeypatch, caplog) -> None:
    """If the watcher has not applied the seed within the wait, ``start()`` still returns a
    running share (the seed is in the bucket) and says in the log why the revision lags."""
    async def never(self: SharedConfig, revision: int, what: str = "a call") -> None:
        raise ConfigBackendError(f"{what} was not run: slow server (test)")

    monkeypatch.setattr(SharedConfig, "reach", never)
    async with first_kernel(nats_server, "slow-watcher") as transport:
        shared = await SharedConfig(transport, bucket="t-slow-watcher").start()
        try:
            assert "connected" == shared.state
            assert shared.seen >= 1
            assert "its watcher is behind" in caplog.text
        finally:
            await shared.stop()
