"""A rotated-out secret stays masked: in the graph, the lab's rows, past epochs and exports.

The attacker here is anyone who can see the notebook (a projected screen, a shared export):
after the host rotates a credential, the nodes built from the old one keep their old value
until someone reads them again. ``dsn`` below is two levels away from the secret, and is
never read after the rotation, so it stays stale holding the old password::

    apps.db-client.targets.prod.password ─▶ db-client.password ─▶ db-client.dsn   (stale)
                        (rotated)                                 'postgres://app:<old>@db/app'

Every view is searched for the old password and the new one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from signalpy_lab.kernel.redaction import MASK
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.widgets import LabPanel
from signalpy_lab.testing import LabShell

OLD, NEW = "hunter2-pw-old", "hunter3-pw-new"

CLIENT = f"""
from signalpy_lab.kernel import component, computed, requires, runnable

@component("db-client", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class DbClient:
    @computed
    def password(self):
        return self.creds.get("password", target="prod")

    @computed
    def dsn(self):
        return f"postgres://app:{{self.password()}}@db/app"

    @computed
    def shout(self):
        # derived from the secret, but no longer containing it as written: only the
        # node's lineage says what it is
        return self.dsn().upper()[::-1]

    @runnable("remember")
    def remember(self, params):
        # a copy outside the graph's lineage: a plain tenant key holding the DSN
        self.config.set("tenants.prod.last_dsn", self.dsn())
        return "remembered"

%discover DbClient
%config set apps.db-client.targets.prod.password {OLD}
%instantiate db-client
"""

ROTATIONS = {
    "ICredentials.rotate": 'kernel.registry.require("ICredentials").rotate('
                           f'"db-client", "password", "{NEW}", target="prod")',
    "%config set": f"%config set apps.db-client.targets.prod.password {NEW}",
}


@pytest.fixture
def lab() -> Iterator[LabShell]:
    with LabShell() as shell:
        shell.run(CLIENT)
        yield shell


@pytest.fixture
def model(lab: LabShell) -> LabModel:
    """The lab's own model: listening since the extension loaded, one epoch per cell."""
    return lab.session.model  # type: ignore[no-any-return]


def read_then_rotate(lab: LabShell, rotation: str) -> None:
    """Read every node (so each holds a value built from the old password), then rotate
    and read nothing again: ``dsn`` and ``shout`` stay stale, holding the old values."""
    lab.run('client = kernel.component("db-client")')
    lab.run("_ = client.dsn(), client.shout()")
    lab.run("%invoke db-client.remember")
    lab.run(ROTATIONS[rotation])
    lab.run("%graph --text")  # a view drawn after the rotation, before anything re-reads


#: What gives each password away, even in a value cut short for a table: its first seven
#: characters, as written and as ``shout`` spells them.
TELLS = {OLD: ("hunter2", "2RETNUH"), NEW: ("hunter3", "3RETNUH")}


def leaks(text: str) -> list[str]:
    """The passwords (old or new) that ``text`` gives away, in either spelling."""
    return [secret for secret, tells in TELLS.items() if any(t in text for t in tells)]


def static_html(widget: Any) -> str:
    bundle = widget._repr_mimebundle_()
    return (bundle[0] if isinstance(bundle, tuple) else bundle)["text/html"]


@pytest.mark.parametrize("rotation", sorted(ROTATIONS))
def test_a_stale_node_two_levels_from_the_secret_is_masked_whole(lab, model, rotation
                                                                 ) -> None:
    """``dsn`` and ``shout`` stay stale after the rotation, and every view shows the mask."""
    read_then_rotate(lab, rotation)
    graph = lab.user_ns["kernel"].graph()
    assert [("stale", MASK)] * 2 == [(graph.node(f"db-client.{name}").state,
                                      graph.node(f"db-client.{name}").value)
                                     for name in ("dsn", "shout")]
    rows = {n["label"]: n for n in model.snapshot()["nodes"]}
    assert [MASK] * 3 == [rows[f"db-client.{name}"]["value"]
                          for name in ("password", "dsn", "shout")]


@pytest.mark.parametrize("rotation", sorted(ROTATIONS))
def test_no_view_or_export_shows_the_old_or_new_password(lab, model, rotation,
                                                        tmp_path: Path) -> None:
    """The graph, the model's rows, every kept epoch, exports, tables, `%why`, `%events` and
    the widgets' pictures: neither password, in any of them."""
    read_then_rotate(lab, rotation)
    kernel = lab.user_ns["kernel"]
    views: dict[str, str] = {
        "kernel.graph().to_json()": kernel.graph().to_json(),
        "LabModel.snapshot()": json.dumps(model.snapshot(include_epochs=True)),
    }
    numbers = [record.number for record in model.epochs()]
    assert len(numbers) >= 4  # the reads, the call, the rotation, the view after it
    for number in numbers:
        views[f"snapshot(epoch={number})"] = json.dumps(model.snapshot(epoch=number))
        views[f"epoch {number} record"] = json.dumps(model.epoch_record(number).to_dict())
    for cell in ("%graph --text", "%graph --text --providers", "%events --limit 200",
                 "%why db-client.dsn", "%why db-client.shout", "%why db-client.password",
                 "%config show tenants", "%lab"):
        shown = lab.run(cell)
        views[cell] = lab.output + ("" if shown is None else str(shown))
    for epoch in numbers:
        shown = lab.run(f"%graph --text --epoch {epoch}")
        views[f"%graph --text --epoch {epoch}"] = str(shown)
    for suffix in ("json", "dot", "svg"):
        path = tmp_path / f"graph.{suffix}"
        lab.run(f"%graph --export {path}")
        views[f"%graph --export .{suffix}"] = path.read_text()
    panel = LabPanel(model)
    try:
        for form in ("svg", "dot", "json"):
            views[f"LabPanel.export({form!r})"] = panel.export(form)
        views["LabPanel text/html"] = static_html(panel)
        for view in panel.views:
            views[f"{type(view).__name__} text/html"] = static_html(view)
    finally:
        panel.close()
    assert {name: [] for name in views} == {name: leaks(text) for name, text in views.items()}
    drawn = ("kernel.graph().to_json()", "LabModel.snapshot()", "%graph --text",
             "%graph --export .json", "%graph --export .svg", "%why db-client.dsn",
             "LabPanel.export('svg')", "GraphWidget text/html")
    assert [] == [name for name in drawn if "db-client.dsn" not in views[name]]  # not vacuous


def test_a_copy_of_the_old_secret_outside_its_lineage_stays_masked(lab, model) -> None:
    """``tenants.prod.last_dsn`` is a plain key holding the old DSN: the redactor still
    knows the rotated-out password, so that key's value is masked inside the text."""
    read_then_rotate(lab, "%config set")
    kernel = lab.user_ns["kernel"]
    assert f"postgres://app:{OLD}@db/app" == kernel.registry.require("IConfig").peek(
        "tenants.prod.last_dsn")  # the copy is really there, in clear, for code
    lab.run("last = %config get tenants.prod.last_dsn")
    assert f"tenants.prod.last_dsn = 'postgres://app:{MASK}@db/app'" in lab.output
    assert f"postgres://app:{OLD}@db/app" == lab.user_ns["last"]  # code gets the value

