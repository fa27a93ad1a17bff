"""Live widgets, asserted from Python: synced traits, throttled flushes, export, close."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import ipywidgets
import pytest

import signalpy_lab.lab.widgets as widgets
from signalpy_lab.kernel import ENGINE, Kernel
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.render import GraphvizNotFoundError
from signalpy_lab.lab.widgets import (
    BusTable,
    EventLog,
    ExportFormatError,
    GraphWidget,
    LabPanel,
    Throttle,
)

TENANTS = ("acme", "globex", "initech")
NEW_URL = "postgres://db-new.prod/globex-migrated"


async def invoke(kernel: Kernel, *tenants: str) -> None:
    for tenant in tenants:
        await kernel.bus.invoke("tenant-db.query", {"table": "users", "target": tenant})


async def migrate_globex(kernel: Kernel, model: LabModel) -> None:
    """A new epoch in which globex's database moves and globex is queried again."""
    model.begin_epoch("test")
    kernel.registry.require("IConfig").set("tenants.globex.db_url", NEW_URL)
    await invoke(kernel, "globex")


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` (a timer thread is expected to make it true) or fail after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the timeout")
        time.sleep(0.01)


@pytest.fixture
async def model(seed_kernel: Kernel) -> AsyncIterator[LabModel]:
    """A LabModel on the seed kernel, after each tenant was queried once."""
    lab = LabModel(seed_kernel)
    await invoke(seed_kernel, *TENANTS)
    yield lab
    lab.close()


@pytest.fixture
def ids(model: LabModel) -> dict[str, str]:
    """label -> DOT id of each node of the seed graph."""
    return {n["label"]: f"n{n['id']}" for n in model.snapshot()["nodes"]}


@pytest.fixture
def opened() -> Any:
    """Widgets made in a test, closed after it (so no timer outlives the test)."""
    made: list[Any] = []
    yield made.append
    for widget in made:
        widget.close()


# -- GraphWidget ---------------------------------------------------------------------------


async def test_classes_mark_globex_recomputed_and_the_others_untouched(
        seed_kernel, model, ids, opened) -> None:
    """After globex's migration, only globex's nodes changed status in this epoch."""
    graph = GraphWidget(model)
    opened(graph)
    await migrate_globex(seed_kernel, model)
    graph.flush()

    assert {label: graph.classes[dot_id] for label, dot_id in ids.items()} == {
        "tenants.acme.db_url": "signal untouched",
        "tenants.globex.db_url": "signal set",
        "tenants.initech.db_url": "signal untouched",
        "tenant-db-acme.db_url": "computed untouched",
        "tenant-db-globex.db_url": "computed recomputed",
        "tenant-db-initech.db_url": "computed untouched",
    }
    assert graph.details[ids["tenant-db-globex.db_url"]].startswith("2x = 'postgres://db-new")


async def test_caption_names_the_epoch_and_counts_statuses(seed_kernel, model, opened) -> None:
    """The caption: epoch number and label, status counts, and the node count."""
    graph = GraphWidget(model)
    opened(graph)
    await migrate_globex(seed_kernel, model)
    graph.flush()

    assert graph.caption == "epoch 1 'test': 1 set, 1 recomputed, 4 untouched · 6 nodes"


async def test_svg_is_laid_out_again_only_when_the_structure_changes(
        seed_kernel, model, ids, opened) -> None:
    """Statuses and values travel in `classes`/`details`; `svg` stays the same text."""
    graph = GraphWidget(model)
    opened(graph)
    svg, layouts = graph.svg, graph.layouts
    await migrate_globex(seed_kernel, model)
    graph.flush()

    assert (svg, layouts) == (graph.svg, graph.layouts)
    assert graph.svg.startswith("<svg")
    assert f'<g id="{ids["tenant-db-globex.db_url"]}" class="node computed' in graph.svg


async def test_a_tenant_filter_shows_that_tenant_only(seed_kernel, model, ids, opened) -> None:
    """`tenant=` draws the tenant's instance and the config keys it reads."""
    graph = GraphWidget(model, tenant="globex")
    opened(graph)

    assert {ids["tenants.globex.db_url"], ids["tenant-db-globex.db_url"]} == set(graph.classes)
    assert "tenant='globex'" in repr(graph)


async def test_a_big_graph_is_collapsed_and_the_caption_says_what_was_left_out(
        seed_kernel, model, opened) -> None:
    """With a budget smaller than the graph, idle instances fold and the caption explains."""
    graph = GraphWidget(model, max_nodes=3)
    opened(graph)
    await migrate_globex(seed_kernel, model)
    graph.flush()

    assert graph.caption.endswith("showing 2 of 6 nodes; filter with --tenant/--instance")
    assert "collapsed 2 idle instances" in graph.caption


async def test_updates_arrive_from_another_thread_without_flush(
        seed_kernel, model, ids, opened) -> None:
    """A write from a plain thread reaches the widget through the throttle's timer thread."""
    graph = GraphWidget(model)
    opened(graph)
    flushed = threading.Event()
    graph.on_flush(lambda _widget: flushed.set())
    model.begin_epoch("thread")
    config = seed_kernel.registry.require("IConfig")
    writer = threading.Thread(target=config.set, args=("tenants.acme.db_url", "postgres://x"))
    writer.start()
    writer.join()

    assert flushed.wait(10)
    assert graph.classes[ids["tenants.acme.db_url"]] == "signal set"
    assert graph.classes[ids["tenant-db-acme.db_url"]] == "computed stale"


async def test_a_burst_of_200_writes_costs_a_few_flushes(seed_kernel, model, ids, opened) -> None:
    """200 config writes (hundreds of model changes) are coalesced into far fewer flushes."""
    graph = GraphWidget(model)
    opened(graph)
    flushes: list[int] = []
    graph.on_flush(lambda widget: flushes.append(widget.flush_count))
    config = seed_kernel.registry.require("IConfig")
    model.begin_epoch("burst")
    for i in range(200):
        config.set("tenants.globex.db_url", f"postgres://db/{i}")
    key = ids["tenants.globex.db_url"]

    wait_until(lambda: graph.details[key] == "= 'postgres://db/199'")
    assert 1 <= len(flushes) <= 20
    assert graph.flush() is False  # nothing left pending


async def test_flush_without_changes_does_nothing_and_refresh_redraws(model, opened) -> None:
    """`flush()` applies pending changes only; `refresh()` always re-reads the model."""
    graph = GraphWidget(model)
    opened(graph)
    count = graph.flush_count

    assert graph.flush() is False
    graph.refresh()
    assert count + 1 == graph.flush_count


async def test_a_missing_layout_binary_shows_the_error_instead_of_a_graph(
        model, opened, monkeypatch) -> None:
    """No Graphviz: the widget still works and shows the one-line error where the graph goes."""

    def missing(_dot: str) -> str:
        raise GraphvizNotFoundError("No Graphviz layout binary: install graphviz-pure")

    monkeypatch.setattr(widgets, "render_svg", missing)
    graph = GraphWidget(model)
    opened(graph)

    assert graph.svg.startswith('<pre class="signalpy-empty">No Graphviz layout binary')
    assert graph.last_error == "No Graphviz layout binary: install graphviz-pure"
    assert len(graph.classes) == 6


# -- BusTable, EventLog, LabPanel ----------------------------------------------------------


async def test_bus_table_has_one_row_per_tenant_route(seed_kernel, model, opened) -> None:
    """Each row: target, instance, factory, runnable, `route[target] → handler`, counts."""
    bus = BusTable(model)
    opened(bus)
    await migrate_globex(seed_kernel, model)
    bus.flush()

    rows = {(r["route"], r["target"]): r for r in bus.rows}
    assert len(rows) == 6
    globex = rows["tenant-db.query", "globex"]
    assert {k: globex[k] for k in ("target", "instance", "factory", "runnable", "arrow",
                                 "state", "calls", "errors")} == {
        "target": "globex", "instance": "tenant-db-globex", "factory": "tenant-db",
        "runnable": "query", "arrow": "tenant-db.query[globex] → tenant-db-globex.query",
        "state": "active", "calls": 2, "errors": 0,
    }
    assert globex["latency"].endswith(" ms")
    assert globex["result"].startswith("{'tenant': 'globex'")
    status = rows["tenant-db.status", "acme"]
    assert (status["latency"], status["calls"]) == ("", 0)


async def test_selecting_a_row_highlights_that_instance_in_the_panels_graph(
        model, ids, opened) -> None:
    """A click sets `selected_target`; the graph highlights globex's instance and key."""
    panel = LabPanel(model)
    opened(panel)
    panel.bus.selected_target = "globex"

    assert sorted([ids["tenant-db-globex.db_url"], ids["tenants.globex.db_url"]]
                  ) == panel.graph.highlight
    panel.bus.select(None)
    assert panel.graph.highlight == []


async def test_selection_reaches_every_graph_of_the_model_only(seed_kernel, model,
                                                               opened) -> None:
    """Graphs on the same model follow the selection; a graph of another model does not."""
    other = LabModel(seed_kernel)
    first, second, bus = GraphWidget(model), GraphWidget(model), BusTable(model)
    stranger = GraphWidget(other)
    for widget in (first, second, bus, stranger):
        opened(widget)
    bus.select("acme")

    assert first.highlight == second.highlight != []
    assert stranger.highlight == []
    other.close()


async def test_event_log_lists_recent_events_newest_first(seed_kernel, model, opened) -> None:
    """Entries carry their epoch and command; the newest comes first; `limit` caps them."""
    log = EventLog(model, limit=4)
    opened(log)
    await migrate_globex(seed_kernel, model)
    log.flush()

    assert [(e["kind"], e["epoch"], e["command"]) for e in log.entries[:3]] == [
        ("handler.invoked", 1, "test"),
        ("computed.recomputed", 1, "test"),
        ("signal.set", 1, "test"),
    ]
    assert log.entries[2]["text"].startswith("tenants.globex.db_url = 'postgres://db-new")
    assert log.entries[2]["text"].endswith("; stale: tenant-db-globex.db_url")
    assert ":" in log.entries[0]["time"]


async def test_lab_panel_is_graph_over_bus_and_log_tabs(model, opened) -> None:
    """The panel stacks the graph over a Bus/Events tab and flushes them together."""
    panel = LabPanel(model)
    opened(panel)

    header, graph, tabs = panel.children
    assert f"engine: {ENGINE} (" in header.value  # which build of graph.py runs (issue 21)
    assert header.value in panel.static_html()
    assert graph is panel.graph
    assert isinstance(tabs, ipywidgets.Tab)
    assert (panel.bus, panel.events) == tabs.children
    assert tuple(tabs.titles) == ("Bus", "Events")
    assert panel.flush() is False


# -- export and close ------------------------------------------------------------------------


async def test_export_gives_dot_json_and_standalone_svg(seed_kernel, model, ids,
                                                         opened) -> None:
    """Every widget exports the current graph as DOT, the JSON snapshot, or styled SVG."""
    graph, bus = GraphWidget(model), BusTable(model)
    opened(graph)
    opened(bus)
    await migrate_globex(seed_kernel, model)
    computed = ids["tenant-db-globex.db_url"]

    dot = graph.export("dot")
    assert dot.startswith("digraph lab {")
    assert f'id="{computed}"' in dot
    assert 'class="computed recomputed"' in dot
    snapshot = json.loads(graph.export("json"))
    assert {"epoch", "epochs", "nodes", "edges", "writes", "routes", "instances", "version",
            "structure_version"} == set(snapshot)
    assert snapshot["epoch"]["label"] == "test"
    svg = graph.export("svg")
    assert f'<g id="{computed}" class="node computed recomputed" data-node=' in svg
    assert "<style><![CDATA[" in svg
    assert dot == bus.export("dot")  # the bus table exports the whole model's graph


async def test_an_unknown_export_format_lists_the_valid_ones(model, opened) -> None:
    """The error names what was asked, the closest format and all of them."""
    graph = GraphWidget(model)
    opened(graph)

    with pytest.raises(ExportFormatError,
                       match=r"Cannot export 'svgz'\. Did you mean 'svg'\? "
                             r"Valid names: 'dot', 'json', 'svg'\."):
        graph.export("svgz")
    with pytest.raises(ValueError, match="png"):
        graph.export("png")


async def test_close_detaches_from_the_model(seed_kernel, model) -> None:
    """After close(), model changes no longer reach the widget, and no timer is left armed."""
    listeners = len(model._listeners)
    panel = LabPanel(model)
    assert listeners + 3 == len(model._listeners)
    panel.close()

    assert listeners == len(model._listeners)
    assert not any(view.subscribed for view in panel.views)
    count = panel.graph.flush_count
    seed_kernel.registry.require("IConfig").set("tenants.acme.db_url", "postgres://late")
    assert panel.graph.flush() is False
    assert count == panel.graph.flush_count
    assert not panel.graph._throttle.pending


# -- the throttle on its own ---------------------------------------------------------------


def test_throttle_absorbs_pokes_while_a_run_is_pending() -> None:
    """Many pokes before the timer fires make one run."""
    runs = threading.Event()
    count: list[int] = []
    throttle = Throttle(lambda: (count.append(1), runs.set()), interval=0.05)
    for _ in range(1000):
        throttle.poke()
    assert runs.wait(10)
    wait_until(lambda: not throttle.pending)
    assert count == [1]
    throttle.close()
    throttle.poke()
    assert not throttle.pending


def test_a_slow_run_stretches_the_wait_so_runs_stay_a_tenth_of_the_time() -> None:
    """A 30 ms redraw at share 0.1 makes the next wait 270 ms, not the 50 ms interval; a
    fast one brings the interval back."""
    runs = threading.Event()
    durations = [0.03, 0.0]
    throttle = Throttle(lambda: (time.sleep(durations.pop(0)), runs.set()), interval=0.05,
                        share=0.1)
    throttle.poke()
    assert runs.wait(10)
    wait_until(lambda: not throttle.pending)
    assert 0.25 <= throttle.delay < 1.0
    runs.clear()
    throttle.poke()
    assert runs.wait(10)
    wait_until(lambda: not throttle.pending)
    assert throttle.delay == 0.05
    with pytest.raises(ValueError, match=r"share is the most of the time .* got 0"):
        Throttle(lambda: None, share=0)
    throttle.close()


def test_every_view_shares_one_flush_thread_which_stops_on_unload() -> None:
    """Five throttles, one thread (not a thread per redraw); stop_flush_thread (what
    %unload_ext calls) ends it, and the next poke starts it again."""
    from signalpy_lab.lab.widgets import stop_flush_thread

    runs: list[int] = []
    throttles = [Throttle(lambda i=i: runs.append(i), interval=0.01) for i in range(5)]
    for throttle in throttles:
        throttle.poke()
    wait_until(lambda: len(runs) == 5)
    assert sorted(runs) == [0, 1, 2, 3, 4]
    flushers = [t for t in threading.enumerate() if t.name == "signalpy-lab-flush"]
    assert len(flushers) == 1
    stop_flush_thread()
    assert not flushers[0].is_alive()
    throttles[0].poke()
    wait_until(lambda: len(runs) == 6)


# -- packaging ---------------------------------------------------------------------------------


def test_es_modules_and_css_are_package_files() -> None:
    """The front-end code ships inside the package (so the wheel has it), no build step."""
    package = Path(widgets.__file__).parent
    for name in ("graph.js", "bus.js", "log.js", "lab.css"):
        assert (package / "static" / name).is_file()
    for widget in (GraphWidget, BusTable, EventLog):
        assert "export default" in str(widget._esm)
        assert ".signalpy-graph g.node.stale" in str(widget._css)


def test_widgets_module_exports_what_all_lists() -> None:
    """Every name in `widgets.__all__` exists, once."""
    assert sorted(set(widgets.__all__)) == sorted(widgets.__all__)
    assert [n for n in widgets.__all__ if not hasattr(widgets, n)] == []


# -- the tenant filter box and the static views -----------------------------------------------


async def test_the_tenant_box_filters_the_graph(seed_kernel, model, opened) -> None:
    """Typing a tenant in the graph's box (the ``tenant_filter`` trait) keeps that tenant's
    nodes and what they read; a tenant nobody serves says so, with the known ones; empty
    shows everyone again. The box's suggestions are the tenants."""
    graph = GraphWidget(model)
    opened(graph)
    assert ["acme", "globex", "initech"] == graph.tenants
    graph.set_state({"tenant_filter": "globex"})  # what the front end's typing does
    assert {"tenants.globex.db_url", "tenant-db-globex.db_url"} == set(graph.labels.values())
    graph.set_state({"tenant_filter": "globx"})
    assert "no instance serves tenant 'globx'" in graph.caption
    assert "'globex'" in graph.caption
    graph.set_state({"tenant_filter": ""})
    assert "tenant-db-acme.db_url" in graph.labels.values()


async def test_every_view_carries_a_static_picture_of_itself(seed_kernel, model,
                                                             opened) -> None:
    """Front ends that do not run widgets (nbconvert, GitHub, VS Code) get HTML: the graph's
    SVG with this epoch's statuses, the bus rows, the log; and the whole repr as text."""
    seed_kernel.registry.require("IConfig").set("apps.billing.token", "sk-live-42-secret")
    await migrate_globex(seed_kernel, model)
    panel = LabPanel(model)
    opened(panel)
    data, _meta = panel.graph._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert 'data-node="tenant-db-globex.db_url" data-status="recomputed"' in data["text/html"]
    assert data["text/plain"].startswith("<GraphWidget: ")
    assert data["text/plain"].endswith(">")  # whole, not cut mid-quote at 110 characters
    bus = panel.bus._repr_mimebundle_()
    bus = bus[0] if isinstance(bus, tuple) else bus
    assert "tenant-db.query[globex] → tenant-db-globex.query" in bus["text/html"]
    whole = panel._repr_mimebundle_()
    whole = whole[0] if isinstance(whole, tuple) else whole
    assert whole["text/html"].count("<svg") >= 1
    assert "signalpy-log" in whole["text/html"]
    assert "sk-live-42" not in whole["text/html"]
