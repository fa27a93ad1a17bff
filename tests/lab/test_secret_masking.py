"""No view of the lab shows a secret: graph, tables, `%why`, the event log and exports.

A component reads its API key with `self.rt.creds.get("api_key", target="prod")` and returns
a DSN built from its password; the host rotates both. Every magic's output, and every export,
is searched for the secret strings.
"""

from __future__ import annotations

import json

import pytest

from signalpy_lab.kernel.redaction import MASK
from signalpy_lab.testing import LabShell

SECRETS = ("sk-prod-first", "sk-prod-second", "hunter2-pw", "hunter3-pw")

CLIENT = """
from signalpy_lab.kernel import component, computed, effect, requires, runnable

@component("db-client", depends=["config", "credentials"])
@requires(creds="ICredentials")
class DbClient:
    connected = []

    @effect
    def connect(self):
        DbClient.connected.append(self.creds.get("api_key", target="prod"))

    @computed
    def dsn(self):
        return f"postgres://app:{self.creds.get('password')}@db/app"

    @runnable("status")
    def status(self, params):
        return {"dsn": self.dsn(), "key": self.creds.get("api_key", target="prod")}

%discover DbClient
%config set apps.db-client.targets.prod.api_key sk-prod-first
%config set apps.db-client.password hunter2-pw
%instantiate db-client
"""


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run(CLIENT)
        yield shell


def outputs_of(lab: LabShell, cells: list[str]) -> dict[str, str]:
    seen = {}
    for cell in cells:
        value = lab.run(cell)
        seen[cell] = lab.output + (repr(value) if value is not None and
                                   not isinstance(value, dict) else "")
    return seen


def test_rotations_reach_the_effect_but_no_view(lab, tmp_path) -> None:
    lab.run("%lab")  # the widgets listen from here on: events, causes, values
    lab.run("%invoke db-client.status")
    lab.run("%config set apps.db-client.targets.prod.api_key sk-prod-second")
    lab.run("%config set apps.db-client.password hunter3-pw")
    lab.run("%invoke db-client.status")
    assert ["sk-prod-first", "sk-prod-second"] == lab.user_ns["DbClient"].connected
    views = outputs_of(lab, [
        "%config show", "%config show apps", "%config get apps.db-client.password",
        "%graph --text", "%graph --text --providers", "%why db-client.dsn",
        "%why db-client.connect", "%events", "%bus", "%routes", "%instances",
    ])
    for suffix in ("json", "dot", "svg"):
        path = tmp_path / f"graph.{suffix}"
        lab.run(f"%graph --export {path}")
        views[f"export .{suffix}"] = path.read_text()
    for name, text in views.items():
        assert [] == [s for s in SECRETS if s in text], name
    graph = json.loads((tmp_path / "graph.json").read_text())
    values = {n["label"]: n["value"] for n in graph["nodes"]}
    assert MASK == values["apps.db-client.targets.prod.api_key"]
    assert MASK == values["db-client.dsn"]
