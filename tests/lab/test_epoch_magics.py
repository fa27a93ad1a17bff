"""The epoch timeline from the terminal: ``%graph --epoch N``, ``%why --epoch N``, export,
and the inline epoch picture of a state-changing magic."""

from __future__ import annotations

import json

import pytest

from signalpy_lab.lab.inline import epoch_picture
from signalpy_lab.testing import LabShell

TOUR = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
"""


@pytest.fixture
def lab():
    """The three tenants, each queried once, then globex migrated and queried (the epochs of
    the write and of the recompute it caused, a cell later, noted) and acme after it."""
    with LabShell() as shell:
        shell.run(TOUR)
        for tenant in ("acme", "globex", "initech"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        for tenant in ("acme", "globex", "initech"):
            shell.run(f"%invoke tenant-db.query target={tenant}")
        shell.run("%config set tenants.globex.db_url postgres://migrated/globex")
        shell.globex_write_epoch = _model(shell).epoch.number
        shell.run("%invoke tenant-db.query target=globex")
        shell.globex_epoch = _model(shell).epoch.number
        shell.run("%config set tenants.acme.db_url postgres://migrated/acme")
        shell.run("%invoke tenant-db.query target=acme")
        yield shell


def _model(shell: LabShell):
    from signalpy_lab.lab.session import current_session

    return current_session().model


def test_graph_epoch_shows_the_migration_as_it_was(lab) -> None:
    """`%graph --epoch N --text`: globex recomputed then, acme and initech untouched."""
    table = str(lab.run(f"%graph --epoch {lab.globex_epoch} --text"))
    rows = {word: line for line in table.splitlines() for word in line.split()
            if word.startswith("tenant-db-") and word.endswith(".db_url")}
    assert "recomputed" in rows["tenant-db-globex.db_url"]
    assert "untouched" in rows["tenant-db-acme.db_url"]
    assert "untouched" in rows["tenant-db-initech.db_url"]


def test_why_epoch_explains_the_past(lab) -> None:
    """`%why NODE --epoch N` gives that epoch's verdict, not the newest one's."""
    past = lab.run(f"%why tenant-db-globex.db_url --epoch {lab.globex_epoch}")
    assert past.status == "recomputed"
    assert "postgres://migrated/globex" in str(past)
    assert lab.run("%why tenant-db-globex.db_url").status == "untouched"


def test_an_unknown_epoch_is_a_one_line_error(lab) -> None:
    """`--epoch 999` says which epochs are kept."""
    from signalpy_lab.testing import CellError

    with pytest.raises(CellError, match="No epoch 999"):
        lab.run("%graph --epoch 999 --text")


def test_the_json_export_has_the_epochs(lab, tmp_path) -> None:
    """`%graph --export f.json` writes the timeline beside the graph."""
    path = tmp_path / "graph.json"
    lab.run(f"%graph --export {path}")
    data = json.loads(path.read_text())
    numbers = [e["number"] for e in data["epochs"]]
    assert lab.globex_epoch in numbers
    epoch = data["epochs"][numbers.index(lab.globex_write_epoch)]
    assert "%config set tenants.globex.db_url" in epoch["label"]
    assert "%invoke tenant-db.query target=globex" in data["epochs"][
        numbers.index(lab.globex_epoch)]["label"]


def test_inline_is_off_in_a_terminal_and_can_be_turned_on(lab) -> None:
    """In a terminal no picture by default; `%lab --inline on` prints a one-line summary."""
    lab.run("%config set tenants.initech.db_url postgres://x/initech")
    assert "epoch " not in lab.output
    lab.run("%lab --inline on")
    lab.run("%invoke tenant-db.query target=initech")
    assert "recomputed tenant-db-initech.db_url" in lab.output
    lab.run("%lab --inline off")
    lab.run("%invoke tenant-db.query target=initech")
    assert "epoch " not in lab.output


def test_the_inline_picture_is_the_touched_nodes_and_neighbours(lab) -> None:
    """The picture of globex's epoch draws globex's nodes and the key, not acme's."""
    picture = epoch_picture(_model(lab), lab.globex_epoch)
    assert picture is not None
    assert f'data-epoch="{lab.globex_epoch}"' in picture
    assert "tenants.globex.db_url" in picture
    assert "tenant-db-acme" not in picture


def test_record_off_pauses_the_lab_and_on_resumes_in_a_new_epoch(lab) -> None:
    """`%lab --record off` for a bulk load: the kernel is not observed at all (no listener,
    so no engine hooks), what it did is not recorded; `--record on` starts a new epoch whose
    stale nodes come from the kernel itself."""
    from signalpy_lab.kernel import graph as engine

    model = _model(lab)
    lab.run("%lab --record off")
    assert "paused" in lab.output
    assert (model.paused, engine.context.hooks) == (True, None)
    version = model.version
    lab.run("%config set tenants.initech.db_url postgres://bulk/initech")
    assert model.version == version  # nothing heard
    lab.run("%lab --record on")
    assert f"lab recording on (epoch {model.epoch.number})" in lab.output
    assert "resumed" in model.epoch.label
    rows = {n["label"]: n for n in model.snapshot()["nodes"]}
    assert rows["tenant-db-initech.db_url"]["status"] == "stale"  # written while paused
    assert rows["tenant-db-acme.db_url"]["status"] == "untouched"
    lab.run("%invoke tenant-db.query target=initech")
    assert model.status_of(rows["tenant-db-initech.db_url"]["id"]) == "recomputed"
    lab.run("%lab --record on")
    assert "already on" in lab.output
