"""The epoch timeline and incremental snapshots: the model, the graph widget, the magics.

The tour's moment, kept::

    epoch A  %config set tenants.globex.db_url ...   globex.db_url recomputed
    epoch B  %config set tenants.acme.db_url ...     acme.db_url recomputed

After B, epoch A can still be shown: globex's computed recomputed, acme's and initech's not.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from signalpy_lab.kernel import Kernel
from signalpy_lab.lab.epochs import EPOCHS, EpochTimeline
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.widgets import GraphWidget, LabPanel

TENANTS = ("acme", "globex", "initech")


async def invoke(kernel: Kernel, *tenants: str) -> None:
    for tenant in tenants:
        await kernel.bus.invoke("tenant-db.query", {"table": "users", "target": tenant})


async def migrate(kernel: Kernel, model: LabModel, tenant: str, url: str) -> int:
    """One epoch: ``tenant``'s database moves and it is queried again; returns its number."""
    model.begin_epoch(f"%config set tenants.{tenant}.db_url {url}")
    kernel.registry.require("IConfig").set(f"tenants.{tenant}.db_url", url)
    await invoke(kernel, tenant)
    return model.epoch.number


def db_urls(snapshot: dict) -> dict[str, dict]:
    return {n["label"]: n for n in snapshot["nodes"] if n["label"].endswith(".db_url")
            and n["kind"] == "computed"}


@pytest.fixture
async def model(seed_kernel: Kernel) -> AsyncIterator[LabModel]:
    lab = LabModel(seed_kernel)
    await invoke(seed_kernel, *TENANTS)
    yield lab
    lab.close()


async def test_a_past_epoch_keeps_what_it_did(seed_kernel: Kernel, model: LabModel) -> None:
    """After a later epoch, the globex migration's epoch still says only globex recomputed."""
    globex = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    await migrate(seed_kernel, model, "acme", "postgres://new/acme")
    record = model.epoch_record(globex)
    assert "%config set tenants.globex.db_url postgres://new/globex" == record.label
    past = db_urls(model.snapshot(epoch=globex))
    assert {"tenant-db-acme.db_url": "untouched", "tenant-db-globex.db_url": "recomputed",
            "tenant-db-initech.db_url": "untouched"} == {k: v["status"] for k, v in past.items()}
    assert "'postgres://new/globex'" == past["tenant-db-globex.db_url"]["value"]
    assert {"number": globex, "live": False} == {
        k: v for k, v in model.snapshot(epoch=globex)["epoch"].items() if k in ("number", "live")}
    now = db_urls(model.snapshot())
    assert "recomputed" == now["tenant-db-acme.db_url"]["status"]
    assert "untouched" == now["tenant-db-globex.db_url"]["status"]


async def test_values_then_are_the_values_at_the_end_of_that_epoch(
        seed_kernel: Kernel, model: LabModel) -> None:
    """Showing an old epoch shows a node's value as it was then, not as it is now."""
    first = await migrate(seed_kernel, model, "globex", "postgres://one/globex")
    await migrate(seed_kernel, model, "globex", "postgres://two/globex")
    then = db_urls(model.snapshot(epoch=first))["tenant-db-globex.db_url"]
    assert "'postgres://one/globex'" == then["value"]
    assert "'postgres://two/globex'" == db_urls(model.snapshot())[
        "tenant-db-globex.db_url"]["value"]


def test_the_timeline_is_bounded() -> None:
    """The timeline keeps the last EPOCHS epochs; an older one is a LookupError."""
    assert 200 == EPOCHS
    timeline = EpochTimeline(3)
    from signalpy_lab.lab.epochs import EpochRecord

    for number in range(10):
        timeline.append(EpochRecord(number, f"cell {number}", 0.0, 1.0, {}))
    assert [7, 8, 9] == timeline.numbers()
    assert timeline.get(6) is None
    assert "cell 8" == timeline.get(8).label


async def test_an_epoch_that_fell_out_is_refused_with_the_kept_range(
        seed_kernel: Kernel, model: LabModel) -> None:
    """Asking for a forgotten epoch names the epochs that are kept."""
    model.timeline = EpochTimeline(2)
    for i in range(4):
        await migrate(seed_kernel, model, "globex", f"postgres://v{i}/globex")
    with pytest.raises(LookupError, match="keeps the last 2 epochs, now 2..4"):
        model.epoch_record(1)


async def test_a_secret_in_a_cell_label_stays_masked_in_the_timeline(
        seed_kernel: Kernel, model: LabModel) -> None:
    """The step label of a cell that set a secret is masked, as the live label is."""
    seed_kernel.registry.require("IConfig").set("apps.billing.token", "hunter2-secret")
    model.begin_epoch("%config set apps.billing.token hunter2-secret")
    model.begin_epoch("next")
    labels = [r.title() for r in model.epochs()]
    assert not any("hunter2" in label for label in labels), labels


async def test_an_epoch_costs_what_it_touched_not_the_graph(
        seed_kernel: Kernel, model: LabModel) -> None:
    """Ending an epoch stores only the touched nodes: a few, however many nodes exist."""
    number = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    model.begin_epoch("next")
    record = model.epoch_record(number)
    assert {"set": 1, "recomputed": 1} == {k: v for k, v in record.counts().items()
                                           if k in ("set", "recomputed")}
    assert len(record.nodes) <= 4
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(20):
        await migrate(seed_kernel, model, "acme", f"postgres://v{i}/acme")
    model.begin_epoch("end")
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert grown / 20 < 20_000  # bytes per epoch, with the event log's entries


async def test_snapshots_are_incremental(seed_kernel: Kernel, model: LabModel) -> None:
    """A config change re-describes only the nodes its events named; rows are copy-on-write."""
    await migrate(seed_kernel, model, "globex", "postgres://old/globex")
    first = model.snapshot()
    fulls = model.full_snapshots
    await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    second = model.snapshot()
    assert fulls == model.full_snapshots
    old, new = ({n["label"]: n for n in s["nodes"]} for s in (first, second))
    assert old["tenant-db-acme.db_url"] is new["tenant-db-acme.db_url"]
    assert old["tenant-db-globex.db_url"] is not new["tenant-db-globex.db_url"]
    assert "'postgres://db1/acme'" != new["tenant-db-globex.db_url"]["value"]
    assert "recomputed" == new["tenant-db-globex.db_url"]["status"]
    assert "'postgres://new/globex'" == new["tenant-db-globex.db_url"]["value"]
    await seed_kernel.hot_remove("tenant-db-initech")
    third = {n["label"]: n for n in model.snapshot()["nodes"]}
    assert fulls + 1 == model.full_snapshots
    assert "removed" == third["tenant-db-initech.db_url"]["status"]  # struck out, this epoch
    model.begin_epoch("later")
    assert "tenant-db-initech.db_url" not in {n["label"] for n in model.snapshot()["nodes"]}


async def test_an_incremental_snapshot_equals_a_full_one(
        seed_kernel: Kernel, model: LabModel) -> None:
    """What the incremental rows say is what a fresh model reading the whole graph says."""
    model.snapshot()
    await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    mine = {n["id"]: (n["value"], n["runs"], n["state"]) for n in model.snapshot()["nodes"]}
    fresh = LabModel(seed_kernel)
    theirs = {n["id"]: (n["value"], n["runs"], n["state"]) for n in fresh.snapshot()["nodes"]}
    fresh.close()
    assert theirs == mine


async def test_a_flush_restyles_changed_rows_only(seed_kernel: Kernel, model: LabModel) -> None:
    """With the same active nodes, a flush reuses the layout and patches the changed rows."""
    await migrate(seed_kernel, model, "globex", "postgres://one/globex")
    widget = GraphWidget(model)
    seed_kernel.registry.require("IConfig").set("tenants.globex.db_url", "postgres://two/g")
    await invoke(seed_kernel, "globex")
    widget.flush()
    assert 1 == widget.incremental_flushes
    node = next(k for k, v in widget.labels.items() if v == "tenant-db-globex.db_url")
    assert "'postgres://two/g'" in widget.details[node]
    assert "postgres://two/g" in widget.export("dot")  # the export's source is redone
    widget.close()


async def test_the_widget_shows_a_past_epoch_and_goes_back_to_live(
        seed_kernel: Kernel, model: LabModel) -> None:
    """``show_epoch(N)`` restyles the graph as epoch N; ``show_epoch(None)`` follows live."""
    globex = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    panel = LabPanel(model)
    await migrate(seed_kernel, model, "acme", "postgres://new/acme")
    panel.flush()
    strip = {e["number"]: e for e in panel.graph.epochs}
    assert ("epoch 1", "%config set tenants.globex.db_url postgres://new/globex") == (
        strip[globex]["head"], strip[globex]["text"])
    assert strip[model.epoch.number]["live"]
    panel.show_epoch(globex)
    graph = panel.graph
    ids = {v: k for k, v in graph.labels.items()}
    assert "computed recomputed" == graph.classes[ids["tenant-db-globex.db_url"]]
    assert "computed untouched" == graph.classes[ids["tenant-db-acme.db_url"]]
    assert "computed untouched" == graph.classes[ids["tenant-db-initech.db_url"]]
    assert "past epoch" in graph.caption
    await migrate(seed_kernel, model, "initech", "postgres://new/initech")
    graph.flush()
    assert "computed untouched" == graph.classes[ids["tenant-db-initech.db_url"]]  # pinned
    panel.show_epoch(None)
    assert "computed recomputed" == graph.classes[ids["tenant-db-initech.db_url"]]
    with pytest.raises(LookupError, match="No epoch 999"):
        panel.show_epoch(999)
    panel.close()


async def test_a_click_on_a_step_is_the_epoch_trait(seed_kernel: Kernel,
                                                    model: LabModel) -> None:
    """The browser sets ``epoch`` (a click on a step); the widget redraws as that epoch."""
    globex = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    await migrate(seed_kernel, model, "acme", "postgres://new/acme")
    widget = GraphWidget(model)
    widget.set_state({"epoch": globex})  # what the front end's save_changes() does
    assert str(globex) in widget.caption.split(":")[0]
    widget.close()


async def test_epochs_are_in_the_json_export(seed_kernel: Kernel, model: LabModel) -> None:
    """The JSON export carries the timeline: each epoch's label and touched nodes."""
    globex = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    widget = GraphWidget(model)
    data = json.loads(widget.export("json"))
    epoch = next(e for e in data["epochs"] if e["number"] == globex)
    assert {"set", "recomputed"} <= {n["status"] for n in epoch["nodes"].values()}
    widget.close()


async def test_a_past_epoch_is_drawn_on_its_own_graph(seed_kernel: Kernel,
                                                      model: LabModel) -> None:
    """Epoch N shows the graph of epoch N: an instance added later is absent, one removed
    later is present, one removed in N itself is there struck out (``removed``).

        epoch A  globex migrated            (initech still there, umbrella not yet)
        epoch B  umbrella onboarded
        epoch C  initech removed
    """
    globex = await migrate(seed_kernel, model, "globex", "postgres://new/globex")
    model.begin_epoch("onboard umbrella")
    config = seed_kernel.registry.require("IConfig")
    config.set("tenants.umbrella.db_url", "postgres://db/umbrella")
    await seed_kernel.hot_add("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})
    await invoke(seed_kernel, "umbrella")
    model.begin_epoch("offboard initech")
    await seed_kernel.hot_remove("tenant-db-initech")
    removal = model.epoch.number
    model.begin_epoch("later")

    then = db_urls(model.snapshot(epoch=globex))
    assert {"tenant-db-acme.db_url", "tenant-db-globex.db_url",
            "tenant-db-initech.db_url"} == set(then)
    assert "tenants.umbrella.db_url" not in {n["label"] for n in
                                             model.snapshot(epoch=globex)["nodes"]}
    at_removal = db_urls(model.snapshot(epoch=removal))
    assert "removed" == at_removal["tenant-db-initech.db_url"]["status"]
    assert "tenant-db-umbrella.db_url" in at_removal
    assert "tenant-db-initech.db_url" not in db_urls(model.snapshot())


async def test_run_counts_then_are_the_counts_at_the_end_of_that_epoch(
        seed_kernel: Kernel, model: LabModel) -> None:
    """Not today's counts: globex had run twice at the end of its first migration."""
    first = await migrate(seed_kernel, model, "globex", "postgres://one/globex")
    await migrate(seed_kernel, model, "globex", "postgres://two/globex")
    await migrate(seed_kernel, model, "globex", "postgres://three/globex")
    assert 4 == db_urls(model.snapshot())["tenant-db-globex.db_url"]["runs"]
    assert 2 == db_urls(model.snapshot(epoch=first))["tenant-db-globex.db_url"]["runs"]


async def test_a_structural_epoch_costs_what_it_changed(seed_kernel: Kernel,
                                                        model: LabModel) -> None:
    """An onboarding stores the ids it added, not the graph: a handful at 3 tenants or 300."""
    model.begin_epoch("onboard")
    config = seed_kernel.registry.require("IConfig")
    config.set("tenants.umbrella.db_url", "postgres://db/umbrella")
    await seed_kernel.hot_add("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})
    await invoke(seed_kernel, "umbrella")
    number = model.epoch.number
    model.begin_epoch("next")
    delta = model.epoch_record(number).structure
    assert 2 == len(delta.nodes_added)  # umbrella's key and its db_url
    assert not delta.nodes_removed
