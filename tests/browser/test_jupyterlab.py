"""The tour notebook, run through JupyterLab's UI in headless Chromium, tells the truth.

What a user does: open ``01_multi_tenant_tour.ipynb``, Run -> Run All Cells, then read the
cells' pictures and use the live panel that ``%lab --sidecar`` opened beside the notebook:

* every cell's picture belongs to that cell: at most one, titled with the prompt number shown
  beside the cell (``In [9]`` under ``[9]:``), drawing what that cell did (the migration
  cell: globex's key written, its ``db_url`` stale; the next cell: that ``db_url``
  recomputed; tables and cached reads: no picture), its text at least 10 px on screen;
* the panel beside the notebook: the graph has the remaining tenants' nodes (each drawn in its
  instance's cluster), the bus table exactly their routes, and after "fit" every node lies
  inside the canvas;
* the epoch timeline: each step names the cell (``In [9]``, the same number as the prompt of
  a cell that ran that command); clicking the migration's step draws the graph *of that
  epoch*: initech (offboarded later) is there, umbrella and hooli (onboarded later) are not;
  "live" goes back to the newest epoch;
* ``%%as``: a new cell at the end, typed and run with Shift+Enter, reads globex's key as
  acme: one line naming ``TenantIsolationError``, no traceback, and no epoch of its own.

Every check reads the page's DOM through the hooks the widgets' ES modules and the static
pictures document; a failure message carries the page's console errors and the server log.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from .harness import RUN_TIMEOUT, SIDECAR_GRAPHS, LabPage, box_inside

TOUR = "01_multi_tenant_tour.ipynb"
TENANTS_AT_END = ["acme", "globex", "hooli", "umbrella"]  # umbrella on, initech off, hooli
#: The tour's migration cell, and the read that recomputes globex after it.
MIGRATION = "%config set tenants.globex.db_url"
READ = "r = %invoke tenant-db.query table=users target=globex"
#: The cell a user adds at the end, and the one line the lab answers with.
AS_ACME = '%%as tenant-db-acme\nrt.config.get("tenants.globex.db_url")'
REFUSAL = ("TenantIsolationError: Instance 'tenant-db-acme' (target 'acme') may not read "
           "'tenants.globex.db_url'")
#: The smallest text an inline picture may show (px): 10, less a rounding pixel.
MIN_TEXT_PX = 9.5


def touched(statuses: dict[str, str]) -> dict[str, str]:
    """The nodes whose status in the epoch shown is not ``untouched``."""
    return {node: status for node, status in statuses.items() if status != "untouched"}


def assert_every_node_visible_after_fit(lab: LabPage) -> None:
    lab.fit_graph()
    graph = lab.graph()
    outside = [n["label"].split("\n")[0] for n in graph["nodes"]
               if not box_inside(n["box"], graph["canvas"])]
    assert [] == outside, (f"after 'fit' these nodes lie outside the graph canvas "
                           f"{graph['canvas']} (zoom {graph['zoom']}){lab.diagnostics()}")


def assert_no_failures(lab: LabPage) -> None:
    assert [] == lab.widget_failures(), f"a widget failed to render{lab.diagnostics()}"
    assert [] == lab.error_outputs(), f"a cell raised{lab.diagnostics()}"
    assert [] == lab.console_errors, f"the page logged errors{lab.diagnostics()}"


def check_panel(lab: LabPage, tenants: list[str], gone: Sequence[str] = ()) -> dict[str, Any]:
    """The graph has each tenant's config key and db_url; the bus table exactly their rows."""
    lab.wait_for_graph_labels([f"tenants.{t}.db_url" for t in tenants],
                              absent=[f"tenants.{t}.db_url" for t in gone])
    lab.wait_for_bus_targets(tenants)
    graph = lab.graph()
    assert graph["svg"], f"the graph widget shows no <svg>{lab.diagnostics()}"
    by_instance = lab.graph_by_instance()
    for tenant in tenants:
        drawn = [n["node"] for n in by_instance.get(f"tenant-db-{tenant}", [])]
        assert f"tenant-db-{tenant}.db_url" in drawn, (
            f"no tenant-db-{tenant}.db_url node in tenant-db-{tenant}'s cluster; clusters: "
            f"{ {k: [n['node'] for n in v] for k, v in by_instance.items()} }"
            f"{lab.diagnostics()}")
    for tenant in gone:
        assert f"tenant-db-{tenant}" not in by_instance
        assert f"tenant-db-{tenant}.db_url" not in lab.node_status()
    rows = lab.bus()["rows"]
    assert {f"tenant-db-{t}" for t in tenants} == {r["instance"] for r in rows}
    assert {r["target"] for r in rows if r["runnable"] == "query"} == set(tenants)
    return graph


def check_cell_pictures(lab: LabPage) -> dict[str, dict[str, Any]]:
    """One picture at most per cell, the cell's own, legible; returns the cells by their
    first line."""
    cells = lab.cell_pictures()
    for cell in cells:
        assert len(cell["pictures"]) <= 1, f"{cell['first']!r} shows {len(cell['pictures'])}"
        for picture in cell["pictures"]:
            assert picture["cell"] == cell["number"], (cell, lab.diagnostics())
            assert picture["title"].startswith(f"In [{cell['number']}]: "), picture["title"]
            small = [round(px, 1) for px in picture["fonts"] if px < MIN_TEXT_PX]
            assert [] == small, (f"In [{cell['number']}]'s picture has text below 10 px: "
                                 f"{small}{lab.diagnostics()}")
    by_first = {cell["first"]: cell for cell in cells}
    migration = next(c for first, c in by_first.items() if first.startswith(MIGRATION))
    [picture] = migration["pictures"]
    assert {"tenants.globex.db_url": "set", "tenant-db-globex.db_url": "stale"} == \
        touched(picture["nodes"]), picture
    [read] = by_first[READ]["pictures"]
    assert {"tenant-db-globex.db_url": "recomputed"} == touched(read["nodes"]), read
    for quiet in ("%routes", "%why tenant-db-globex.db_url"):
        assert [] == by_first[quiet]["pictures"], f"{quiet} changed nothing reactive"
    return by_first


def check_timeline(lab: LabPage, cells: dict[str, dict[str, Any]]) -> None:
    """Steps are named after their cells; a past step draws the graph of its epoch."""
    steps = lab.epoch_steps()
    numbers = [s["number"] for s in steps]
    assert [*sorted(numbers[:-1]), None] == numbers, (
        f"the strip is not its epochs oldest first, then live: {numbers}{lab.diagnostics()}")
    newest = steps[-2]
    assert [newest["number"]] == [s["number"] for s in steps if s["current"]], steps
    assert [newest["number"], None] == [s["number"] for s in steps if s["selected"]], (
        f"the panel does not follow the newest epoch: {steps}{lab.diagnostics()}")
    prompts = {cell["number"]: first for first, cell in cells.items()}
    for step in steps[:-1]:
        if step["cell"] is None:
            continue
        assert step["head"] == f"In [{step['cell']}]", step
        # the step's command is a line of the cell shown with that prompt number
        assert step["cell"] in prompts, (step, sorted(p for p in prompts if p))

    number = lab.select_epoch(MIGRATION)
    step = next(s for s in lab.epoch_steps() if s["number"] == number)
    assert step["cell"] == cells[next(f for f in cells if f.startswith(MIGRATION))]["number"]
    assert {"tenants.globex.db_url": "set", "tenant-db-globex.db_url": "stale"} == \
        touched(lab.node_status()), f"epoch {number}: {lab.node_status()}{lab.diagnostics()}"
    shown = lab.node_status()
    # The graph of that epoch: initech was still there, umbrella and hooli not yet.
    assert "tenant-db-initech.db_url" in shown, shown
    assert not [n for n in shown if "umbrella" in n or "hooli" in n], shown
    assert "1 set, 1 stale" in step["title"], step

    lab.go_live()
    assert "recomputed" == lab.node_status()["tenant-db-hooli.db_url"], lab.node_status()
    steps = lab.epoch_steps()
    assert [newest["number"], None] == [s["number"] for s in steps if s["selected"]], steps


def check_as_refused(lab: LabPage) -> None:
    """A user's ``%%as tenant-db-acme`` cell reading globex's key gets a one-line refusal."""
    epochs = [s["number"] for s in lab.epoch_steps()]
    cell = lab.append_code_cell(AS_ACME)
    lab.run_cell_in_place(cell)
    outputs = lab.outputs(cell)
    assert [REFUSAL] == [o["text"][:len(REFUSAL)] for o in outputs], (
        f"the %%as cell's outputs: {outputs}{lab.diagnostics()}")
    text = outputs[0]["text"].strip()
    assert "\n" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text, text
    assert [text] == [t.strip() for t in lab.error_outputs()], lab.error_outputs()
    assert epochs == [s["number"] for s in lab.epoch_steps()], "a refused read made an epoch"


@pytest.mark.timeout(RUN_TIMEOUT + 120)  # one bounded run and the page's start
def test_tour_in_jupyterlab(lab_page: LabPage) -> None:
    """Run All: each cell's picture is its own, the sidecar panel shows the tour's end, its
    timeline names cells and draws the past as it was; %%as is refused in one line."""
    lab = lab_page
    lab.graphs = SIDECAR_GRAPHS
    lab.open_notebook(lab.lab.add_notebook(TOUR))
    lab.run_all()
    check_panel(lab, TENANTS_AT_END, gone=["initech"])
    assert_every_node_visible_after_fit(lab)
    assert_no_failures(lab)
    cells = check_cell_pictures(lab)
    check_timeline(lab, cells)
    check_as_refused(lab)
    assert [] == lab.widget_failures(), lab.diagnostics()
    assert [] == lab.console_errors, lab.diagnostics()
