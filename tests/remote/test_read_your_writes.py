"""Read-your-writes across the process boundary: a call made after a host `config.set` sees
that write, in a worker process too.

    host: config.set("tenants.hooli.db_url", new) ── spl.v1.config.w-… {"rev": 42, "set": …} ──┐
          invoke("tenant-db.query", {"target": "hooli"}) ── spl.v1.call.w-… {"config_rev": 42} ─┤
                                                                         worker: applies up to 42,
                                                                         then runs the handler
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import StaleConfigError
from signalpy_lab.kernel import Kernel, component, requires, runnable
from signalpy_lab.providers import DEFAULT_PROVIDERS
from signalpy_lab.remote import process, wire

HOOLI = {"target": "hooli"}


class Query(BaseModel):
    target: str | None = None


@component("tenant-db", depends=["config"])
@requires(config="IConfig")
class SectionDb:
    """Answers with its whole tenant section, as the worker's copy of config has it."""

    @runnable("query", params=Query)
    def query(self, params: Query) -> Any:
        return self.config.get(f"tenants.{self.rt.target}")


@pytest.fixture
async def kernel(tmp_path):
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, SectionDb])
    kernel.instantiate("config", properties={"defaults": {"tenants": {"hooli": {
        "db_url": "postgres://db/hooli"}}}})
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    kernel.instantiate("tenant-db", "tenant-db-hooli", HOOLI, isolation="process")
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def test_the_design_notes_assertion_holds_1000_times_out_of_1000(kernel) -> None:
    """set, then invoke, then `r["db_url"] == new`: for a process-isolated tenant, every time."""
    config = kernel.registry.require("IConfig")
    stale = []
    for n in range(1000):
        new = f"postgres://db{n}/hooli"
        config.set("tenants.hooli.db_url", new)
        r = await kernel.invoke("tenant-db.query", HOOLI)
        if r["db_url"] != new:
            stale.append((n, r["db_url"]))
    assert [] == stale


async def test_batched_writes_unset_and_subtree_writes_are_seen_by_the_next_call(
        kernel) -> None:
    """One batch, an unset back to the default, a leaf becoming a section and back."""
    from signalpy_lab.kernel import batch

    config = kernel.registry.require("IConfig")
    with batch():
        config.set("tenants.hooli.db_url", "postgres://batched/hooli")
        config.set("tenants.hooli.pool", 5)
    assert {"db_url": "postgres://batched/hooli", "pool": 5} == await kernel.invoke(
        "tenant-db.query", HOOLI)
    config.unset("tenants.hooli.db_url")
    assert {"db_url": "postgres://db/hooli", "pool": 5} == await kernel.invoke(
        "tenant-db.query", HOOLI)
    config.set("tenants.hooli.pool", {"min": 1, "max": 8})  # a leaf becomes a section
    assert {"db_url": "postgres://db/hooli", "pool": {"min": 1, "max": 8}} == \
        await kernel.invoke("tenant-db.query", HOOLI)
    config.set("tenants.hooli", {"db_url": "postgres://whole/hooli"})  # the whole subtree
    assert {"db_url": "postgres://whole/hooli"} == await kernel.invoke("tenant-db.query", HOOLI)


async def test_a_call_during_a_burst_of_writes_sees_at_least_its_callers_last_write(
        kernel) -> None:
    """Another thread writes `seq` as fast as it can; each of our calls sees our own write and
    a `seq` no older than the one we read before calling."""
    config = kernel.registry.require("IConfig")
    stop = threading.Event()

    def burst() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            config.set("tenants.hooli.seq", n)

    writer = threading.Thread(target=burst, daemon=True)
    writer.start()
    behind = []
    try:
        for n in range(200):
            config.set("tenants.hooli.db_url", f"postgres://burst{n}/hooli")
            seen = config.peek("tenants.hooli.seq", 0)
            r = await kernel.invoke("tenant-db.query", HOOLI)
            if r["db_url"] != f"postgres://burst{n}/hooli" or r.get("seq", 0) < seen:
                behind.append((n, seen, r))
    finally:
        stop.set()
        writer.join(5)
    assert [] == behind


async def test_a_restarted_worker_starts_at_the_current_revision(kernel) -> None:
    """Writes before and after a restart: the new worker sees both, the first call too."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.hooli.db_url", "postgres://before/hooli")
    await kernel.restart("tenant-db-hooli")
    assert "postgres://before/hooli" == (await kernel.invoke("tenant-db.query", HOOLI))[
        "db_url"]
    config.set("tenants.hooli.db_url", "postgres://after/hooli")
    assert "postgres://after/hooli" == (await kernel.invoke("tenant-db.query", HOOLI))[
        "db_url"]


def lose_the_next_config_message(kernel: Kernel, monkeypatch: Any) -> list[dict[str, Any]]:
    """The host's next config message to a worker goes nowhere (as on a broken connection)."""
    host = kernel.isolation_host("process")
    lost: list[dict[str, Any]] = []
    send = host._send_config

    def lossy(worker: Any, change: dict[str, Any]) -> None:
        if lost:
            send(worker, change)
        else:
            lost.append(change)

    monkeypatch.setattr(host, "_send_config", lossy)
    return lost


async def test_a_worker_that_never_gets_a_write_refuses_the_call_instead_of_answering_stale(
        kernel, monkeypatch) -> None:
    """The message is lost: the call fails within the bounded wait naming both revisions, and
    the worker asks for its view again, so the next call sees the write."""
    monkeypatch.setattr(process, "CONFIG_WAIT_SECONDS", 0.3)
    await kernel.restart("tenant-db-hooli")  # a worker that waits 0.3 s
    config = kernel.registry.require("IConfig")
    revision = kernel.isolation_host("process")._workers["tenant-db-hooli"].synced[0]
    lost = lose_the_next_config_message(kernel, monkeypatch)
    config.set("tenants.hooli.db_url", "postgres://lost/hooli")
    assert [revision + 1] == [change["rev"] for change in lost]
    started = time.monotonic()
    with pytest.raises(StaleConfigError) as refused:
        await kernel.invoke("tenant-db.query", HOOLI)
    assert time.monotonic() - started < 2
    assert (f"tenant-db-hooli.query was not run: the call was made at config revision "
            f"{revision + 1} of 'tenant-db-hooli''s view and its worker has only revision "
            f"{revision} after 0.3s (a config message was lost or is late); the worker asked the "
            f"host for its whole view again, so a retry sees the host's writes. (remote handler "
            f"'tenant-db-hooli.query' on 'w-tenant-db-hooli')") == str(refused.value)
    assert "postgres://lost/hooli" == (await kernel.invoke("tenant-db.query", HOOLI))["db_url"]


async def test_a_lost_write_is_noticed_by_the_next_message_and_both_are_seen(
        kernel, monkeypatch) -> None:
    """`pool` is lost, `db_url` arrives out of sequence: the worker asks for its whole view
    and the call after the second write sees both, without an error."""
    config = kernel.registry.require("IConfig")
    lose_the_next_config_message(kernel, monkeypatch)
    config.set("tenants.hooli.pool", 5)
    config.set("tenants.hooli.db_url", "postgres://second/hooli")
    assert {"db_url": "postgres://second/hooli", "pool": 5} == await kernel.invoke(
        "tenant-db.query", HOOLI)


# -- a burst of writes is merged, not queued without bound ---------------------------------


def _apply(view: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """What a worker does with a change: its unsets, then its sets."""
    view = {k: v for k, v in view.items() if k not in set(change.get("unset") or ())}
    view.update(change.get("set") or {})
    return view


@pytest.mark.parametrize(("first", "then"), [
    ({"set": {"a": 1}}, {"unset": ["a"]}),                       # set, then removed
    ({"unset": ["a"]}, {"set": {"a": 5}}),                       # removed, then set again
    ({"set": {"a": 1}, "unset": ["b.c"]}, {"unset": ["a"], "set": {"a.x": 2, "b": 3}}),
    ({"set": {"a.x": 2}}, {"unset": ["a.x"], "set": {"a": 1}}),  # a section became a leaf
])
def test_two_merged_changes_do_what_the_two_did_one_after_the_other(first, then) -> None:
    first = {"rev": 7, **first}
    then = {"rev": 8, "command": "second", **then}
    assert wire.mergeable(first, then)
    merged = wire.merge_changes(first, then)
    assert (merged["base"], merged["rev"], merged["command"]) == (6, 8, "second")
    view = {"a": 0, "b.c": 9, "z": 1}
    assert _apply(view, merged) == _apply(_apply(view, first), then)


def test_only_consecutive_changes_merge_and_never_a_whole_view() -> None:
    assert not wire.mergeable({"rev": 1}, {"rev": 3})
    assert not wire.mergeable({"rev": 1, "full": True}, {"rev": 2})
    assert not wire.mergeable({"kv": 4}, {"rev": 2})


async def test_a_writer_thread_in_a_loop_leaves_a_bounded_outbox(kernel) -> None:
    """10,000 writes from another thread, the loop busy elsewhere: the worker's outbox stays
    a message or two (it was one queued publish per write), and the next call sees them."""
    config = kernel.registry.require("IConfig")
    worker = kernel.isolation_host("process")._workers["tenant-db-hooli"]
    longest = 0

    def burst() -> None:
        nonlocal longest
        for n in range(10_000):
            config.set("tenants.hooli.seq", n)
            longest = max(longest, len(worker.outbox))

    writer = threading.Thread(target=burst)
    writer.start()
    writer.join(60)
    assert longest <= 2
    assert (await kernel.invoke("tenant-db.query", HOOLI))["seq"] == 9_999
