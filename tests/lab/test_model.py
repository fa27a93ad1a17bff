"""The lab model's graph: what it shows after tenants come and go."""

from __future__ import annotations

from signalpy_lab.kernel import Kernel
from signalpy_lab.lab.model import LOG_SIZE, LabModel
from signalpy_lab.lab.render import to_dot
from signalpy_lab.testing import LabShell

TENANTS = ("acme", "globex", "initech")


def labels(snapshot: dict) -> set[str]:
    return {n["label"] for n in snapshot["nodes"]}


async def test_a_removed_tenants_config_key_leaves_the_graph(seed_kernel: Kernel) -> None:
    """After acme's instance is removed, nobody reads tenants.acme.db_url: no ghost node.

        tenants.acme.db_url ──▶ tenant-db-acme.db_url      (removed: the key has no reader)
    """
    model = LabModel(seed_kernel)
    for tenant in TENANTS:
        await seed_kernel.bus.invoke("tenant-db.query", {"target": tenant})
    assert "tenants.acme.db_url" in labels(model.snapshot())
    await seed_kernel.hot_remove("tenant-db-acme")
    snapshot = model.snapshot()
    assert "tenants.acme.db_url" not in labels(snapshot)
    assert {n["tenant"] for n in snapshot["nodes"] if n["instance"] == "config"} == {
        "globex", "initech"}
    assert "shared by 2 tenants" in to_dot(snapshot).source
    model.close()


async def test_with_providers_the_ghost_is_shown_as_no_readers(seed_kernel: Kernel) -> None:
    """`--providers` keeps the unread key, says "no readers", and does not count its tenant."""
    model = LabModel(seed_kernel)
    for tenant in TENANTS:
        await seed_kernel.bus.invoke("tenant-db.query", {"target": tenant})
    await seed_kernel.hot_remove("tenant-db-acme")
    snapshot = model.snapshot(include_providers=True)
    ghost = next(n for n in snapshot["nodes"] if n["label"] == "tenants.acme.db_url")
    assert ghost["readers"] == 0
    assert ghost["unread"] is True
    graph = to_dot(snapshot)
    dot_id = f"n{ghost['id']}"
    assert graph.details[dot_id].startswith("no readers, = ")
    assert graph.classes[dot_id].endswith(" unread")
    assert "shared by 2 tenants" in graph.source
    model.close()


def test_the_graph_magic_after_remove() -> None:
    """The story from the issue, typed: %remove, then %graph shows no acme key."""
    with LabShell() as lab:
        lab.run("from signalpy_lab.examples.multi_tenant import TenantDatabase\n"
                "%discover TenantDatabase")
        for tenant in TENANTS:
            lab.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            lab.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
            lab.run(f"%invoke tenant-db.query target={tenant}")
        lab.run("%remove tenant-db-acme")
        assert "tenants.acme.db_url" not in str(lab.run("%graph"))
        providers = str(lab.run("%graph --providers"))
        row = next(line for line in providers.splitlines() if "tenants.acme.db_url" in line)
        assert "no readers, 'postgres://db/acme'" in row


async def test_views_hear_of_a_burst_once_and_again_after_they_catch_up(
        seed_kernel: Kernel) -> None:
    """on_change fires once per burst: a view told of a change is already waiting to redraw,
    so telling it of every later event would only cost the kernel. After the view's
    ``caught_up()`` (what a widget calls before it reads), the next event tells it again."""
    model = LabModel(seed_kernel)
    heard: list[int] = []
    model.on_change(lambda m: heard.append(m.version))
    config = seed_kernel.registry.require("IConfig")
    for i in range(5):
        config.set("tenants.acme.db_url", f"postgres://db/acme/{i}")
    assert len(heard) == 1
    model.caught_up()
    config.set("tenants.acme.db_url", "postgres://db/acme/after")
    assert len(heard) == 2
    assert model.version > heard[0]  # every event was still recorded
    model.close()


async def test_what_the_kernel_did_is_there_at_the_next_read(seed_kernel: Kernel) -> None:
    """Listening only queues events; any read applies them first, in the order heard."""
    model = LabModel(seed_kernel)
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    model.begin_epoch("the write")
    config = seed_kernel.registry.require("IConfig")
    config.set("tenants.globex.db_url", "postgres://new/globex")
    rows = {n["label"]: n for n in model.snapshot()["nodes"]}
    assert (rows["tenants.globex.db_url"]["status"],
            rows["tenant-db-globex.db_url"]["status"],
            rows["tenant-db-acme.db_url"]["status"]) == ("set", "stale", "untouched")
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    node = rows["tenant-db-globex.db_url"]["id"]
    assert model.status_of(node) == "recomputed"
    assert model.activity[node].history[-1][1] == "'postgres://new/globex'"
    model.close()


async def test_a_long_burst_is_applied_as_it_goes(seed_kernel: Kernel) -> None:
    """Nobody reads during a burst: the queue still never holds more than PENDING events."""
    from signalpy_lab.lab.model import PENDING

    model = LabModel(seed_kernel)
    config = seed_kernel.registry.require("IConfig")
    longest = 0
    for i in range(3 * PENDING):
        config.set("tenants.acme.db_url", f"postgres://db/acme/{i}")
        longest = max(longest, len(model._pending))
    assert longest < PENDING
    assert model.recent(1)[0].text.startswith("tenants.acme.db_url = ")
    model.close()


def test_no_event_is_lost_while_another_thread_reads() -> None:
    """A thread writes and recomputes while the main thread reads without pause: every
    recompute the engine ran is counted once, none lost between queue and readers."""
    import threading

    from signalpy_lab.kernel import Computed, Signal
    from signalpy_lab.kernel.reactive import Scope

    kernel = Kernel()
    with Scope("counter", hub=kernel.events).active():  # its events go to the kernel's hub
        source = Signal(0, label="n")
        doubled = Computed(lambda: source() * 2, label="doubled")
    doubled()
    model = LabModel(kernel)
    writes = 5_000

    def writer() -> None:
        for i in range(1, writes + 1):
            source.set(i)
            doubled()

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        model.snapshot(include_providers=True)
    thread.join()
    assert sum(a.recomputes for a in model.activity.values()) == writes
    model.close()


async def test_a_recording_bug_loses_only_its_own_event(seed_kernel: Kernel, caplog,
                                                       monkeypatch) -> None:
    """If recording one event raises (a bug), it is logged and the next ones still count."""
    from signalpy_lab.kernel.events import ComputedRecomputed

    model = LabModel(seed_kernel)
    original = model._recorders[ComputedRecomputed]
    broken = {"first": True}

    def flaky(event):
        if broken.pop("first", False):
            raise RuntimeError("recorder bug")
        return original(event)

    monkeypatch.setitem(model._recorders, ComputedRecomputed, flaky)
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    statuses = {n["label"]: n["status"] for n in model.snapshot()["nodes"]}
    assert statuses["tenant-db-acme.db_url"] == "untouched"  # its event was the broken one
    assert statuses["tenant-db-globex.db_url"] == "recomputed"
    assert "recorder bug" in caplog.text
    model.close()


def test_a_write_a_thousand_computeds_read_is_one_log_line(shared_key) -> None:
    """The lab marks all thousand stale and logs one line, so the log keeps its history."""
    model = LabModel(shared_key.kernel)
    model.begin_epoch("the write")
    shared_key.signal.set(6)
    assert model.counts() == {"set": 1, "stale": 1000}
    newest = model.recent(2)
    assert len(newest) == 1
    assert newest[0].text == ("shared.timeout = 6 (was 5); stale: tenant-0.timeout, "
                              "tenant-1.timeout, tenant-2.timeout and 997 more")
    model.close()


def test_a_burst_inside_a_write_never_waits_for_a_reader() -> None:
    """Lock order: the kernel's thread may hold the engine's lock while it emits, and a
    reader applying the queue may need that lock (masking an epoch label reads config). So
    the emitting thread never waits for the model's lock: here a reader holds it and waits
    for the engine's lock while this thread, holding the engine's lock, emits a long burst."""
    import threading

    from signalpy_lab.kernel.events import InstanceStateChanged
    from signalpy_lab.kernel.graph import context
    from signalpy_lab.lab.model import PENDING

    kernel = Kernel()
    model = LabModel(kernel)
    holding = threading.Event()

    def reader() -> None:
        with model._lock:
            holding.set()
            with context.lock:  # what a label's masking does when secrets changed
                pass

    with context.lock:
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        assert holding.wait(5)
        for i in range(PENDING + 50):  # past the threshold, within the log's size
            kernel.events.emit(InstanceStateChanged(name=f"i{i}", old="pending", new="active"))
    thread.join(5)
    assert not thread.is_alive()
    assert len(model.recent(LOG_SIZE)) == PENDING + 50  # all recorded once the reader let go
    model.close()
