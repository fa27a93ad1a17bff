"""The tour notebook, run through JupyterLab's UI in headless Chromium, shows the live lab.

What a user does: open ``01_multi_tenant_tour.ipynb``, run it from the Run menu, look at the
``%lab`` panel. The notebook is run in two steps so the migration can be checked while it is
the panel's newest epoch (the panel shows only the latest change; an epoch timeline will let a
later check select it instead):

    cells 0..16   three tenants, calls, the globex migration  -> globex recomputed, rest not
    cells 17..    onboard umbrella, offboard initech, hooli   -> the panel followed along

Every check reads the page's DOM through the hooks the widgets' ES modules document; a
failure message carries the page's console errors and the server log's tail.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from .harness import RUN_TIMEOUT, LabPage, box_inside

TOUR = "01_multi_tenant_tour.ipynb"
#: The tour's cell 16 reads globex's db_url after its migration (cell 15).
MIGRATION_READ = 16
TENANTS_AT_MIGRATION = ["acme", "globex", "initech"]
TENANTS_AT_END = ["acme", "globex", "hooli", "umbrella"]  # umbrella on, initech off, hooli


def db_url_status(lab: LabPage) -> dict[str, str]:
    """Each tenant instance's ``db_url`` computed -> its status class (recomputed, ...)."""
    status = {}
    for instance, nodes in lab.graph_by_instance().items():
        for node in nodes:
            classes = node["cls"].split()
            if "computed" in classes and node["label"].startswith("db_url"):
                status[instance] = next(
                    (c for c in classes if c not in {"node", "computed", "highlight"}), "")
    return status


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


def check_panel(lab: LabPage, tenants: list[str], gone: Sequence[str] = ()) -> dict[str, Any]:
    """The graph has each tenant's config key and db_url; the bus table exactly their rows."""
    lab.wait_for_graph_labels([f"tenants.{t}.db_url" for t in tenants],
                              absent=[f"tenants.{t}.db_url" for t in gone])
    lab.wait_for_bus_targets(tenants)
    graph = lab.graph()
    assert graph["svg"], f"the graph widget shows no <svg>{lab.diagnostics()}"
    by_instance = lab.graph_by_instance()
    for tenant in tenants:
        labels = [n["label"] for n in by_instance.get(f"tenant-db-{tenant}", [])]
        assert any(label.startswith("db_url") for label in labels), (
            f"no db_url node in tenant-db-{tenant}'s cluster; clusters: "
            f"{sorted(by_instance)}{lab.diagnostics()}")
    for tenant in gone:
        assert f"tenant-db-{tenant}" not in by_instance
    rows = lab.bus()["rows"]
    assert {f"tenant-db-{t}" for t in tenants} == {r["instance"] for r in rows}
    assert {r["target"] for r in rows if r["runnable"] == "query"} == set(tenants)
    return graph


@pytest.mark.timeout(RUN_TIMEOUT * 2 + 60)  # two bounded runs and the page's start
def test_tour_in_jupyterlab(lab_page: LabPage) -> None:
    """Run through the UI, the tour's panel shows the tenants, the migration, then the rest."""
    lab = lab_page
    notebook = lab.lab.add_notebook(TOUR)
    lab.open_notebook(notebook)

    lab.run_through(MIGRATION_READ)
    check_panel(lab, TENANTS_AT_MIGRATION)
    assert {"tenant-db-acme": "untouched", "tenant-db-globex": "recomputed",
            "tenant-db-initech": "untouched"} == db_url_status(lab), lab.diagnostics()
    assert_every_node_visible_after_fit(lab)
    assert_no_failures(lab)

    lab.run_from(MIGRATION_READ + 1)
    check_panel(lab, TENANTS_AT_END, gone=["initech"])
    assert "recomputed" == db_url_status(lab)["tenant-db-hooli"], lab.diagnostics()
    assert_every_node_visible_after_fit(lab)
    assert_no_failures(lab)
