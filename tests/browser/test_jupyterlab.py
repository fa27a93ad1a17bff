"""The tour notebook, run through JupyterLab's UI in headless Chromium, shows the live lab.

What a user does: open ``01_multi_tenant_tour.ipynb``, Run -> Run All Cells, then look at the
``%lab`` panel near the top and use it:

* the end of the tour: the graph has the remaining tenants' nodes (each drawn in its
  instance's cluster), the bus table exactly their routes, and after "fit" every node lies
  inside the canvas;
* the epoch timeline: click the globex migration's step (``[N] cell [k]: %config set
  tenants.globex.db_url ...``): globex's key is marked written and its ``db_url``
  recomputed, acme's and every other node untouched, and the step's summary counts one
  recomputed in all, so initech's was not either (initech is offboarded later in the tour,
  and a past epoch is drawn on today's graph, so its nodes are no longer there); "live"
  goes back to the newest epoch (hooli's);
* ``%%as``: a new cell at the end (Escape, ``b``, typed), run with Shift+Enter, reads
  globex's key as acme: a one-line refusal, no traceback, and no epoch of its own.

Every check reads the page's DOM through the hooks the widgets' ES modules document; a
failure message carries the page's console errors and the server log's tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from .harness import RUN_TIMEOUT, LabPage, box_inside

TOUR = "01_multi_tenant_tour.ipynb"
TENANTS_AT_END = ["acme", "globex", "hooli", "umbrella"]  # umbrella on, initech off, hooli
#: The tour's cell 15; its timeline step reads "[N] cell [k]: %config set tenants.globex...".
MIGRATION = "%config set tenants.globex.db_url"
#: The cell a user adds at the end, and the one line the lab answers with.
AS_ACME = '%%as tenant-db-acme\nrt.config.get("tenants.globex.db_url")'
REFUSAL = ("UsageError: %%as tenant-db-acme: TenantIsolationError: Instance 'tenant-db-acme' "
           "(target 'acme') may not read 'tenants.globex.db_url'")


def touched(lab: LabPage) -> dict[str, str]:
    """The graph's nodes whose status in the epoch shown is not ``untouched``."""
    return {node: status for node, status in lab.node_status().items()
            if status != "untouched"}


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


def check_timeline(lab: LabPage) -> None:
    """The migration's step shows globex recomputed and nothing else; "live" comes back."""
    steps = lab.epoch_steps()
    numbers = [s["number"] for s in steps]
    assert [*sorted(numbers[:-1]), None] == numbers, (
        f"the strip is not its epochs oldest first, then live: {numbers}{lab.diagnostics()}")
    newest = steps[-2]
    assert [newest["number"]] == [s["number"] for s in steps if s["current"]], steps
    assert [newest["number"], None] == [s["number"] for s in steps if s["selected"]], (
        f"the panel does not follow the newest epoch: {steps}{lab.diagnostics()}")
    assert "%discover MySQLTenantDatabase" in newest["text"], steps  # the tour's last change

    number = lab.select_epoch(MIGRATION)
    step = next(s for s in lab.epoch_steps() if s["number"] == number)
    assert step["text"].startswith(f"[{number}] cell ["), step
    assert MIGRATION in step["text"], step
    assert [number] == [s["number"] for s in lab.epoch_steps() if s["selected"]]
    assert {"tenants.globex.db_url": "set", "tenant-db-globex.db_url": "recomputed"} == \
        touched(lab), f"epoch {number} as drawn: {lab.node_status()}{lab.diagnostics()}"
    status = lab.node_status()
    assert "untouched" == status["tenant-db-acme.db_url"], status
    # Initech was offboarded after the migration, so today's graph no longer draws it; the
    # epoch's own count (every node then) says globex's was its only recomputed computed.
    assert status.get("tenant-db-initech.db_url", "untouched") == "untouched", status
    assert step["title"].endswith("\n1 set, 1 recomputed"), step

    lab.go_live()
    assert {"tenant-db-hooli.db_url": "recomputed"} == touched(lab), lab.node_status()
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


@pytest.mark.timeout(RUN_TIMEOUT + 60)  # one bounded run and the page's start
def test_tour_in_jupyterlab(lab_page: LabPage) -> None:
    """Run All: the panel shows the tour's end, its timeline the migration; %%as is refused."""
    lab = lab_page
    lab.open_notebook(lab.lab.add_notebook(TOUR))
    lab.run_all()
    check_panel(lab, TENANTS_AT_END, gone=["initech"])
    assert_every_node_visible_after_fit(lab)
    assert_no_failures(lab)

    check_timeline(lab)
    check_as_refused(lab)
    assert [] == lab.widget_failures(), lab.diagnostics()
    assert [] == lab.console_errors, lab.diagnostics()
