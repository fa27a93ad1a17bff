"""How the host stamps what a worker relays: its own instance, tenant, labels, ids, commands.

No worker here: ``stamp_graph`` and ``stamp_event`` are given what a hostile worker could
send, as hooli's worker (``tenant-db-hooli``, target ``hooli``) while the host also runs
``tenant-db-globex``. ``tests/lab/test_relay_forgery.py`` sends the same over NATS.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from signalpy_lab.kernel.redaction import MASK
from signalpy_lab.providers.keyspace import Keyspace, parse_key
from signalpy_lab.remote.relay import ID_SPACE, WORKER_PROVIDERS, Relayer, stamp_event, stamp_graph
from signalpy_lab.remote.worker import HOST_CHANGE

OFFSET = 7 * ID_SPACE
HOOLI = Relayer("tenant-db-hooli", "w-tenant-db-hooli", "hooli", OFFSET,
                others=frozenset({"tenant-db-globex", "config", "credentials"}),
                commands=frozenset({"%config set tenants.hooli.db_url pg://2"}))


def node(**fields: Any) -> dict[str, Any]:
    return {"id": 1, "kind": "computed", "label": "tenant-db-hooli.db_url",
            "instance": "tenant-db-hooli", "tenant": "hooli", "state": "clean", "runs": 1,
            "value": "'pg://1'", "error": None, "readers": 0, **fields}


def recomputed(**fields: Any) -> dict[str, Any]:
    return {"kind": "computed.recomputed", "ts": time.time(), "node_id": 1,
            "label": "tenant-db-hooli.db_url", "instance": "tenant-db-hooli",
            "tenant": "hooli", "duration": 0.001, "changed": True, "value": "'pg://1'",
            "error": None, "cause": None, "command": None, **fields}


def test_the_providers_a_worker_boots_are_the_owners_it_may_name() -> None:
    """config, logging, credentials and storage: the worker's own copies, shown as such."""
    assert {"config", "logging", "credentials", "storage"} == WORKER_PROVIDERS


@pytest.mark.parametrize(("claimed", "shown"), [
    ("tenant-db-hooli", "tenant-db-hooli"),
    ("config", "config@w-tenant-db-hooli"),
    ("storage", "storage@w-tenant-db-hooli"),
    ("tenant-db-globex", "tenant-db-hooli"),
    ("config@w-tenant-db-globex", "tenant-db-hooli"),
    (None, "tenant-db-hooli"),
    (42, "tenant-db-hooli"),
])
def test_a_relayed_node_belongs_to_the_worker_whatever_owner_it_names(claimed: object,
                                                                       shown: str) -> None:
    """Its instance, or its own copy of a provider; never another instance; always hooli."""
    stamped = stamp_graph({"nodes": [node(instance=claimed, tenant="globex")]}, HOOLI)
    assert [(shown, "hooli")] == [(n.instance, n.tenant) for n in stamped.nodes]


@pytest.mark.parametrize(("claimed", "shown"), [
    ("tenant-db-hooli.db_url", "tenant-db-hooli.db_url"),          # its own node
    ("tenants.hooli.db_url", "tenants.hooli.db_url"),              # its own section
    ("tenants.hooli.*", "tenants.hooli.*"),
    ("apps.tenant-db-hooli.api_key", "apps.tenant-db-hooli.api_key"),
    ("region", "region"),                                          # a shared key
    ("(top-level keys)", "(top-level keys)"),
    ("computed#12", "computed#12"),                                # an unlabelled node
    ("tenant-db-globex.db_url", "w-tenant-db-hooli:tenant-db-globex.db_url"),
    ("tenant-db-globex", "w-tenant-db-hooli:tenant-db-globex"),
    ("tenants.globex.db_url", "w-tenant-db-hooli:tenants.globex.db_url"),
    ("tenants.*", "w-tenant-db-hooli:tenants.*"),
    ("apps.tenant-db-globex.password", "w-tenant-db-hooli:apps.tenant-db-globex.password"),
    ("config.anything", "w-tenant-db-hooli:config.anything"),     # the host's config instance
])
def test_a_label_is_believed_only_when_it_names_something_of_the_workers_own(
        claimed: str, shown: str) -> None:
    """Another instance's or tenant's name is kept, under the worker's node name."""
    assert shown == HOOLI.label(claimed)
    assert [shown] == [n.label for n in stamp_graph({"nodes": [node(label=claimed)]},
                                                    HOOLI).nodes]


@pytest.mark.parametrize("claimed", [-1, ID_SPACE, -OFFSET + 3, True, "1", 1.0, None])
def test_a_node_or_event_with_an_id_outside_the_workers_space_is_dropped(claimed: object
                                                                        ) -> None:
    """An id aimed at a host node (negative, so that the shift lands on it) or at another
    worker's space, or not an int at all: the node, edge or event is not taken in."""
    graph = {"nodes": [node(id=claimed), node(id=2)],
             "edges": [{"source": claimed, "target": 2}, {"source": 2, "target": 2}]}
    stamped = stamp_graph(graph, HOOLI)
    assert [OFFSET + 2] == [n.id for n in stamped.nodes]
    assert [(OFFSET + 2, OFFSET + 2)] == [(e.source, e.target) for e in stamped.edges]
    assert None is stamp_event(recomputed(node_id=claimed), HOOLI)
    cause = {"id": claimed, "signal_id": 2, "signal": "tenants.hooli.db_url",
             "command": None, "old": "'a'", "new": "'b'"}
    assert None is stamp_event(recomputed(cause=cause), HOOLI)


def test_an_event_is_stamped_like_a_node_ids_shifted_into_the_workers_space() -> None:
    """A write claiming globex: hooli's config copy, hooli's tenant, a foreign label kept
    under the worker's node, its stale readers shifted, an unknown command dropped."""
    cause = {"id": 9, "signal_id": 2, "signal": "tenants.globex.db_url",
             "command": "%config set tenants.globex.db_url evil", "old": "'a'", "new": "'b'"}
    event = stamp_event({
        "kind": "signal.set", "ts": 1.0, "node_id": 2, "label": "tenants.globex.db_url",
        "instance": "config", "tenant": "globex", "cause": cause, "stale": [1, 3],
        "stale_labels": ["tenant-db-globex.db_url", "tenant-db-hooli.db_url"]}, HOOLI)
    assert event is not None
    assert (OFFSET + 2, "w-tenant-db-hooli:tenants.globex.db_url", "config@w-tenant-db-hooli",
            "hooli") == (event.node_id, event.label, event.instance, event.tenant)
    assert (OFFSET + 9, OFFSET + 2, "w-tenant-db-hooli:tenants.globex.db_url", None) == (
        event.cause.id, event.cause.signal_id, event.cause.signal, event.cause.command)
    assert ((OFFSET + 1, OFFSET + 3),
            ("w-tenant-db-hooli:tenant-db-globex.db_url", "tenant-db-hooli.db_url")) == (
        event.stale, event.stale_labels)
    edge = stamp_event({"kind": "edge.added", "ts": 1.0, "source_id": 2, "target_id": 1,
                        "source": "tenants.globex.db_url", "target": "tenant-db-hooli.db_url"},
                       HOOLI)
    assert ("w-tenant-db-hooli:tenants.globex.db_url", "tenant-db-hooli.db_url") == (
        edge.source, edge.target)


@pytest.mark.parametrize(("claimed", "believed"), [
    ("%config set tenants.hooli.db_url pg://2", "%config set tenants.hooli.db_url pg://2"),
    (HOST_CHANGE, HOST_CHANGE),
    ("%config set tenants.globex.db_url evil", None),
    (None, None),
    (["%config set"], None),
])
def test_only_a_command_the_host_sent_this_worker_is_believed(claimed: object,
                                                              believed: str | None) -> None:
    """The echo of the host's own `%config set` keeps its command (the lab files it under
    that command's epoch); anything else the worker says was running is dropped."""
    event = stamp_event(recomputed(command=claimed), HOOLI)
    assert believed == event.command


def test_relayed_text_passes_through_the_hosts_redactor() -> None:
    """A worker that unmasks its own secret before relaying still shows the mask: the host
    knows what it shipped."""
    keys = Keyspace({"apps": {"tenant-db-hooli": {"api_key": "hooli-relay-key-42"}}},
                    secret_prefix="apps")
    assert "hooli-relay-key-42" == keys.read(parse_key("apps.tenant-db-hooli.api_key"))
    stamped = stamp_graph({"nodes": [node(value="'dsn://hooli-relay-key-42@db'",
                                          error="KeyError: hooli-relay-key-42")]}, HOOLI)
    assert [(f"'dsn://{MASK}@db'", f"KeyError: {MASK}")] == [
        (n.value, n.error) for n in stamped.nodes]
    event = stamp_event(recomputed(value="'hooli-relay-key-42'"), HOOLI)
    assert f"'{MASK}'" == event.value


@pytest.mark.parametrize("junk", [
    None, "graph", ["nodes"], {"nodes": "all"}, {"nodes": [None, 3, "x"]},
    {"nodes": [node(kind="backdoor")]}, {"nodes": [node(label=None)]},
    {"nodes": [node()], "edges": [None, {"source": 1}]},
])
def test_a_malformed_graph_is_taken_in_part_by_part_never_raising(junk: object) -> None:
    """Whatever does not parse is dropped; well-formed nodes next to it are kept."""
    stamped = stamp_graph(junk, HOOLI)
    assert [] == stamped.edges
    assert all(n.instance == "tenant-db-hooli" for n in stamped.nodes)


@pytest.mark.parametrize("junk", [
    None, "event", {"kind": "handler.invoked"}, {"kind": ["signal.set"]},
    recomputed(surprise=1), recomputed(label=7), recomputed(cause="yesterday"),
])
def test_a_malformed_or_unrelayed_event_is_dropped(junk: object) -> None:
    """Not a mapping, a kind the host does not relay (calls are counted by the host's own
    bus), a field the event does not have, a label or cause of the wrong type: None."""
    assert None is stamp_event(junk, HOOLI)
