"""A hostile worker cannot pass its relays off as another tenant's: the host stamps them.

hooli runs in a worker process; its code is the attacker. It holds the worker's NATS
credentials, and the server lets it publish exactly one subject, its own events subject. On
it, it sends a graph and events that claim to be globex's (labels, instance, tenant, even
node ids chosen to land on globex's own nodes)::

    worker w-tenant-db-hooli ══ spl.v1.events.w-tenant-db-hooli ══▶ host
        "tenant-db-globex.db_url", instance "tenant-db-globex", tenant "globex",
        value 'postgres://evil/globex'

The host believes only what it knows: who relayed it. Every node and event is hooli's
(instance ``tenant-db-hooli``, tenant ``hooli``); a label naming another instance or tenant
is shown prefixed with the worker's node, ``w-tenant-db-hooli:``; ids outside the worker's
id space are dropped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from signalpy_lab.remote import wire
from signalpy_lab.remote.relay import ID_SPACE
from signalpy_lab.testing import LabShell

SETUP = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
%config set tenants.globex.db_url postgres://db1/globex
%config set tenants.hooli.db_url postgres://db1/hooli
%instantiate tenant-db tenant-db-globex target=globex
%instantiate tenant-db tenant-db-hooli target=hooli --process
%invoke tenant-db.query target=globex
%invoke tenant-db.query target=hooli
"""

EVIL = "postgres://evil/globex"
WORKER = "tenant-db-hooli"
NODE = f"w-{WORKER}"


@pytest.fixture
def lab() -> Iterator[LabShell]:
    with LabShell() as shell:
        shell.run(SETUP)
        shell.session.settle_relays()
        yield shell


def forged(victim_ids: dict[str, int], offset: int) -> dict[str, Any]:
    """What the attacker relays: globex's nodes and writes, as globex would look."""
    def node(node_id: int, label: str, instance: str, kind: str = "computed") -> dict[str, Any]:
        return {"id": node_id, "kind": kind, "label": label, "instance": instance,
                "tenant": "globex", "state": "clean", "runs": 1, "value": repr(EVIL),
                "error": None, "readers": 0}

    cause = {"id": 5, "signal_id": 2, "signal": "tenants.globex.db_url",
             "command": f"%config set tenants.globex.db_url {EVIL}",
             "old": "'postgres://db1/globex'", "new": repr(EVIL)}
    # Ids chosen so that, shifted by the worker's offset, they are globex's own nodes.
    aimed = victim_ids["tenant-db-globex.db_url"] - offset
    return {
        "graph": {
            "nodes": [node(1, "tenant-db-globex.db_url", "tenant-db-globex"),
                      node(2, "tenants.globex.db_url", "config", kind="signal"),
                      node(3, "apps.tenant-db-globex.password", "config@w-tenant-db-globex",
                           kind="signal"),
                      node(aimed, "tenant-db-globex.db_url", "tenant-db-globex")],
            "edges": [{"source": 2, "target": 1}, {"source": 2, "target": aimed}],
        },
        "events": [
            {"kind": "signal.set", "ts": time.time(), "node_id": 2,
             "label": "tenants.globex.db_url", "instance": "config", "tenant": "globex",
             "cause": cause, "stale": [1], "stale_labels": ["tenant-db-globex.db_url"]},
            {"kind": "computed.recomputed", "ts": time.time(), "node_id": 1,
             "label": "tenant-db-globex.db_url", "instance": "tenant-db-globex",
             "tenant": "globex", "duration": 0.001, "changed": True, "value": repr(EVIL),
             "error": None, "cause": cause, "command": cause["command"]},
            {"kind": "computed.recomputed", "ts": time.time(), "node_id": aimed,
             "label": "tenant-db-globex.db_url", "instance": "tenant-db-globex",
             "tenant": "globex", "duration": 0.001, "changed": True, "value": repr(EVIL),
             "error": None, "cause": {**cause, "id": aimed, "signal_id": aimed},
             "command": cause["command"]},
            {"kind": "edge.added", "ts": time.time(), "source_id": 2, "target_id": 1,
             "source": "tenants.globex.db_url", "target": "tenant-db-globex.db_url"},
        ],
    }


async def publish_as_the_worker(url: str, login: dict[str, Any],
                                message: dict[str, Any]) -> list[str]:
    """Connect with the worker's own credentials and publish on its own events subject;
    returns the server's permission violations (none: this subject is the worker's)."""
    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc))

    client = await nats.connect(url, **login,
                                inbox_prefix=f"_INBOX_{NODE}".encode(), error_cb=on_error,
                                allow_reconnect=False)
    try:
        await client.publish(wire.events_subject(NODE), wire.encode(message))
        await client.flush()
        await asyncio.sleep(0.2)  # a refusal would come back as an async error
    finally:
        await client.close()
    return violations


def forge(lab: LabShell) -> dict[str, int]:
    """Relay the forgery as hooli's worker; wait until the host has taken it in. Returns
    globex's real node ids by label."""
    kernel = lab.user_ns["kernel"]
    victim = {n.label: n.id for n in kernel.graph(tenant="globex").nodes}
    host = kernel.isolation_host("process")
    login = host.credentials(WORKER)
    offset = kernel.instance(WORKER).remote_graph.nodes[0].id // ID_SPACE * ID_SPACE
    assert [] == asyncio.run(publish_as_the_worker(
        host.transport.url, login, forged(victim, offset)))
    deadline = time.monotonic() + 5
    while not any(EVIL in n.value for n in kernel.graph().nodes):
        assert time.monotonic() < deadline, "the host never took the relay in"
        time.sleep(0.02)
    lab.session.settle_relays()
    return victim


def test_nothing_a_worker_relays_shows_as_another_tenants(lab) -> None:
    """globex's graph, rows, table, event log and `%why` are exactly as before the forgery."""
    kernel = lab.user_ns["kernel"]
    model = lab.session.model
    before = sorted((n.id, n.label, n.instance) for n in kernel.graph(tenant="globex").nodes)
    victim = forge(lab)
    assert before == sorted((n.id, n.label, n.instance)
                            for n in kernel.graph(tenant="globex").nodes)
    rows = model.snapshot(tenant="globex")["nodes"]
    assert sorted(victim.values()) == sorted(r["id"] for r in rows)
    assert [] == [r for r in rows if EVIL in r["value"] or r["id"] >= ID_SPACE]
    assert ["untouched"] == sorted({model.status_of(i) for i in victim.values()})
    views = {cell: str(lab.run(cell)) for cell in (
        "%graph --text --tenant globex", "%events --tenant globex --limit 200",
        "%why tenant-db-globex.db_url", "%why tenants.globex.db_url")}
    assert dict.fromkeys(views, False) == {cell: "evil" in text
                                              for cell, text in views.items()}


def test_what_a_worker_relays_is_its_own_instance_and_tenant(lab) -> None:
    """Every forged node is hooli's; a label naming another instance or tenant is shown
    under the worker's node name, so no lookup by label finds it as globex's."""
    kernel = lab.user_ns["kernel"]
    forge(lab)
    relayed = sorted((n.label, n.instance, n.tenant) for n in kernel.graph().nodes
                     if EVIL in n.value)
    assert [
        (f"{NODE}:apps.tenant-db-globex.password", WORKER, "hooli"),  # claimed globex's worker
        (f"{NODE}:tenant-db-globex.db_url", WORKER, "hooli"),
        (f"{NODE}:tenants.globex.db_url", f"config@{NODE}", "hooli"),
    ] == relayed  # the node aimed at globex's id is gone: outside the worker's id space
    log = [(e.kind, e.label, e.instance, e.tenant) for e, _epoch, _cell in lab.session.model.log
           if getattr(e, "label", "").startswith(f"{NODE}:")]
    assert [
        ("computed.recomputed", f"{NODE}:tenant-db-globex.db_url", WORKER, "hooli"),
        ("signal.set", f"{NODE}:tenants.globex.db_url", f"config@{NODE}", "hooli"),
    ] == log  # newest first; the recompute aimed at globex's node is dropped
    assert f"{NODE}:tenant-db-globex.db_url" in str(lab.run("%graph --text --tenant hooli"))
    lab.run("%config set tenants.hooli.db_url postgres://db2/hooli")  # the worker relays again
    lab.run("%invoke tenant-db.query target=hooli")
    lab.session.settle_relays()
    node = kernel.graph().node("tenant-db-hooli.db_url")  # its own labels are believed
    assert (WORKER, "hooli", "'postgres://db2/hooli'") == (node.instance, node.tenant, node.value)
    assert f"config@{NODE}" == kernel.graph().node("tenants.hooli.db_url").instance
