"""Observability: structured events with causes, and the reactive-graph snapshot."""

from __future__ import annotations

import json

import pytest

from signalpy_lab.kernel import Kernel, caused_by, component, lifecycle, runnable
from signalpy_lab.kernel import graph as engine


@pytest.fixture
def recorder(seed_kernel):
    events = []
    unsubscribe = seed_kernel.events.subscribe(events.append)
    yield events
    unsubscribe()


async def test_config_set_marks_only_the_affected_tenant_stale(seed_kernel, recorder) -> None:
    """A globex write: one signal.set naming the one computed it marked stale (globex's),
    caused by the command."""
    for tenant in ("acme", "globex", "initech"):
        await seed_kernel.bus.invoke("tenant-db.query", {"target": tenant})
    recorder.clear()
    config = seed_kernel.registry.require("IConfig")
    with caused_by("%config set tenants.globex.db_url"):
        config.set("tenants.globex.db_url", "postgres://new/globex")
    assert [(e.kind, e.label, e.stale_labels) for e in recorder] == [
        ("signal.set", "tenants.globex.db_url", ("tenant-db-globex.db_url",))]
    cause = recorder[0].cause
    assert (cause.command, cause.new) == ("%config set tenants.globex.db_url",
                                           "'postgres://new/globex'")

    recorder.clear()
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    recomputed = [e for e in recorder if e.kind == "computed.recomputed"]
    assert [(e.label, e.changed, e.cause.id) for e in recomputed] == [
        ("tenant-db-globex.db_url", True, cause.id)]
    invoked = [e for e in recorder if e.kind == "handler.invoked"]
    assert [(e.requested, e.handler, e.route, e.target) for e in invoked] == [
        ("tenant-db.query", "tenant-db-globex.query", "target", "globex")]


def test_a_shared_key_is_one_event_however_many_read_it(shared_key) -> None:
    """A key a thousand tenants read: its write is one signal.set naming the thousand
    computeds it marked, not a thousand and one events (the lab's log keeps the rest)."""
    events: list = []
    unsubscribe = shared_key.kernel.events.subscribe(events.append)
    shared_key.signal.set(6)
    unsubscribe()
    assert [e.kind for e in events] == ["signal.set"]
    assert events[0].stale_labels == tuple(f"tenant-{i}.timeout" for i in range(1000))
    assert len(set(events[0].stale)) == 1000


async def test_exact_route_and_errors_are_reported(seed_kernel, recorder) -> None:
    """An exact call reports route 'exact'; a failing call reports its error."""
    await seed_kernel.bus.invoke("tenant-db-acme.status")
    with pytest.raises(Exception, match="invalid params"):
        await seed_kernel.bus.invoke("tenant-db-acme.query", {"limit": "x"})
    invoked = [(e.route, e.error is None) for e in recorder if e.kind == "handler.invoked"]
    assert invoked == [("exact", True), ("exact", False)]


async def test_instance_lifecycle_events(seed_kernel, recorder) -> None:
    """Adding and removing a tenant emits added, state changes and removed, in order."""
    seed_kernel.instantiate("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})
    await seed_kernel.hot_remove("tenant-db-umbrella")
    trail = [(e.kind, getattr(e, "new", None)) for e in recorder if e.kind.startswith("instance")]
    assert trail == [
        ("instance.added", None),
        ("instance.state", "activating"),
        ("instance.state", "active"),
        ("instance.state", "deactivating"),
        ("instance.state", "removed"),
        ("instance.removed", None),
    ]


async def test_no_listener_means_no_engine_hook(seed_kernel) -> None:
    """With nobody subscribed, the engine runs without any hook installed."""
    assert engine.context.hooks is None
    unsubscribe = seed_kernel.events.subscribe(lambda e: None)
    assert engine.context.hooks is not None
    unsubscribe()
    assert engine.context.hooks is None


async def test_a_listener_without_calls_gets_no_call_and_the_bus_builds_none(
        seed_kernel, monkeypatch) -> None:
    """subscribe(..., calls=False): reactive events arrive, HandlerInvoked is never built."""
    from signalpy_lab.kernel import bus as bus_module

    built: list[object] = []
    monkeypatch.setattr(bus_module, "_handler_invoked",
                        lambda *a, **k: built.append(a) or None)
    events: list[object] = []
    unsubscribe = seed_kernel.events.subscribe(events.append, calls=False)
    try:
        await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
        seed_kernel.registry.require("IConfig").set("tenants.acme.db_url", "postgres://b/acme")
    finally:
        unsubscribe()
    assert [] == built
    assert "signal.set" in {e.kind for e in events}
    assert "handler.invoked" not in {e.kind for e in events}
    assert (False, False) == (seed_kernel.events.active, seed_kernel.events.calls_active)


async def test_a_broken_listener_does_not_break_the_kernel(seed_kernel, caplog) -> None:
    """A listener that raises is logged; the call still succeeds."""

    def broken(event):
        raise RuntimeError("listener bug")

    unsubscribe = seed_kernel.events.subscribe(broken)
    try:
        r = await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    finally:
        unsubscribe()
    assert r["tenant"] == "acme"
    assert "listener bug" in caplog.text


async def test_graph_snapshot_has_owners_tenants_and_edges(seed_kernel) -> None:
    """The snapshot ties each computed to its instance and tenant, with its config key edge."""
    for tenant in ("acme", "globex"):
        await seed_kernel.bus.invoke("tenant-db.query", {"target": tenant})
    snap = seed_kernel.graph()
    db_url = snap.node("tenant-db-acme.db_url")
    key = snap.node("tenants.acme.db_url")
    assert (db_url.kind, db_url.instance, db_url.tenant, db_url.runs) == (
        "computed", "tenant-db-acme", "acme", 1)
    assert (key.kind, key.instance, key.tenant) == ("signal", "config", "acme")
    assert any(e.source == key.id and e.target == db_url.id for e in snap.edges)
    json.loads(snap.to_json())

    only_globex = seed_kernel.graph(tenant="globex")
    assert sorted(n.label for n in only_globex.nodes) == [
        "tenant-db-globex.db_url", "tenants.globex.db_url"]


async def test_failed_state_is_visible_with_its_error() -> None:
    """InstanceStateChanged carries the activation error text."""

    @component("bad")
    class Bad:
        @lifecycle.activate
        def start(self):
            raise OSError("disk full")

        @runnable("noop")
        async def noop(self, params):
            return None

    kernel = Kernel()
    kernel.discover([Bad])
    events = []
    unsubscribe = kernel.events.subscribe(events.append)
    await kernel.boot()
    unsubscribe()
    failed = [e for e in events if e.kind == "instance.state" and e.new == "failed"]
    assert [e.error for e in failed] == ["OSError: disk full"]
    assert "bad.noop" not in kernel.bus.names()


async def test_a_lazy_recompute_carries_the_command_that_read_it(seed_kernel, recorder) -> None:
    """The write's cause names the write's command; the run names the read's, cells later."""
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    config = seed_kernel.registry.require("IConfig")
    with caused_by("%config set tenants.globex.db_url"):
        config.set("tenants.globex.db_url", "postgres://new/globex")
    recorder.clear()
    with caused_by("%invoke tenant-db.query target=globex"):
        await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    run = next(e for e in recorder if e.kind == "computed.recomputed")
    assert ("%config set tenants.globex.db_url", "%invoke tenant-db.query target=globex") == (
        run.cause.command, run.command)


async def test_a_write_nobody_reads_is_one_unread_write(seed_kernel, recorder) -> None:
    """No signal for the key yet: no signal.set, but one write.unread saying so; an equal
    value written to a read key is one too, with its readers counted."""
    config = seed_kernel.registry.require("IConfig")
    with caused_by("%config set tenants.umbrella.db_url"):
        config.set("tenants.umbrella.db_url", "postgres://db4/umbrella")
    assert [("write.unread", "tenants.umbrella.db_url", "<unset>", "'postgres://db4/umbrella'",
             0, "umbrella", "%config set tenants.umbrella.db_url")] == [
        (e.kind, e.label, e.old, e.new, e.readers, e.tenant, e.command) for e in recorder]
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    recorder.clear()
    config.set("tenants.acme.db_url", config.get("tenants.acme.db_url"))
    assert [("write.unread", 1)] == [(e.kind, e.readers) for e in recorder]


async def test_a_secret_written_unread_is_masked(seed_kernel, recorder) -> None:
    """An unread write under apps. shows neither value, nor the value inside its command."""
    config = seed_kernel.registry.require("IConfig")
    with caused_by("%config set apps.billing.token hunter2-secret"):
        config.set("apps.billing.token", "hunter2-secret")
    event = next(e for e in recorder if e.kind == "write.unread")
    assert "hunter2" not in repr(event)


async def test_the_origin_resolver_names_writes_where_no_command_is_set(
        seed_kernel, recorder) -> None:
    """With a resolver installed, a write outside caused_by is labelled by it; caused_by
    still wins; and a coroutine hopping to the kernel's loop keeps the caller's origin."""
    from signalpy_lab.kernel.events import set_origin_resolver

    await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    config = seed_kernel.registry.require("IConfig")
    set_origin_resolver(lambda: "config.set(...) from a cell")
    try:
        config.set("tenants.acme.db_url", "postgres://x/acme")
        with caused_by("%config set tenants.acme.db_url y"):
            config.set("tenants.acme.db_url", "postgres://y/acme")
    finally:
        set_origin_resolver(None)
    assert ["config.set(...) from a cell", "%config set tenants.acme.db_url y"] == [
        e.cause.command for e in recorder if e.kind == "signal.set"]


def test_a_hop_to_the_kernels_loop_keeps_the_callers_origin() -> None:
    """`await kernel.hot_add(...)` from another loop: the instance events carry the origin
    the resolver named in the caller's thread, not the kernel loop's (which has none)."""
    import asyncio
    import threading

    from signalpy_lab.kernel.events import set_origin_resolver
    from signalpy_lab.providers import ConfigProvider

    @component("probe")
    class Probe:
        pass

    home = asyncio.new_event_loop()
    thread = threading.Thread(target=home.run_forever, daemon=True)
    thread.start()
    kernel = Kernel()
    kernel.discover([ConfigProvider, Probe])
    asyncio.run_coroutine_threadsafe(kernel.boot(), home).result(10)
    events = []
    unsubscribe = kernel.events.subscribe(events.append)
    caller = threading.get_ident()
    set_origin_resolver(lambda: "await kernel.hot_add(...)"
                        if threading.get_ident() == caller else None)
    try:
        asyncio.run(kernel.hot_add("probe", "probe-1"))
    finally:
        set_origin_resolver(None)
        unsubscribe()  # a hub left listening keeps the engine's hooks on for every test
        asyncio.run_coroutine_threadsafe(kernel.shutdown(), home).result(10)
        home.call_soon_threadsafe(home.stop)
        thread.join(5)
    added = next(e for e in events if e.kind == "instance.added")
    assert "await kernel.hot_add(...)" == added.command
