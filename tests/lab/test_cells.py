"""One cell, one epoch, its own: prompt numbers, the line that made the change, lazy
recomputes in the cell that read, and one picture per cell.

    In [5]: %config set tenants.globex.db_url …   epoch 4: key set, globex's db_url stale
    In [6]: %invoke tenant-db.query target=globex  epoch 5: globex's db_url recomputed,
                                                   because of the write in epoch 4 (In [5])
    In [7]: %invoke tenant-db.query target=globex  (cached: no epoch, no picture)
"""

from __future__ import annotations

import pytest

from signalpy_lab.lab.cells import statement_at
from signalpy_lab.lab.session import current_session
from signalpy_lab.testing import LabShell

SETUP = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
"""


@pytest.fixture
def lab():
    """Three tenants, each queried once (so each reads its key)."""
    with LabShell() as shell:
        shell.run(SETUP)
        for tenant in ("acme", "globex", "initech"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        for tenant in ("acme", "globex", "initech"):
            shell.run(f"%invoke tenant-db.query target={tenant}")
        yield shell


def model():
    return current_session().model


def run(lab: LabShell, cell: str) -> int:
    """Run ``cell`` as a user would; return the prompt number IPython gave it."""
    return lab.execute(cell).execution_count


def test_an_epoch_is_titled_with_the_cells_prompt_number(lab) -> None:
    """The epoch of the cell shown as In [N] says In [N] (IPython 9 advances the count before
    the cell's hooks run; IPython 8 after: both give N)."""
    number = run(lab, "%config set tenants.globex.db_url postgres://new/globex")
    record = model().epoch_record()
    assert number == record.cell
    assert record.title() == (f"In [{number}]: %config set tenants.globex.db_url "
                              "postgres://new/globex")


def test_a_lazy_recompute_belongs_to_the_cell_that_read_it(lab) -> None:
    """The write's cell marks globex stale; the reading cell recomputes it, in its own epoch,
    and %why names the write's epoch and cell."""
    write = run(lab, "%config set tenants.globex.db_url postgres://new/globex")
    written = model().epoch_record()
    assert {"set": 1, "stale": 1} == written.counts()
    read = run(lab, "%invoke tenant-db.query target=globex")
    recomputed = model().epoch_record()
    assert (read, written.number + 1) == (recomputed.cell, recomputed.number)
    assert {"recomputed": 1} == recomputed.counts()
    why = str(lab.run("%why tenant-db-globex.db_url"))
    assert (f"recomputed in epoch {recomputed.number} (In [{read}]: %invoke "
            "tenant-db.query target=globex)") in why
    assert (f"by `%config set tenants.globex.db_url postgres://new/globex` in epoch "
            f"{written.number} (In [{write}])") in why


def test_a_cell_that_changes_nothing_reactive_has_no_epoch(lab) -> None:
    """A cached read and a table: no epoch begins, and the log says which cell called."""
    before = model().epoch.number
    number = run(lab, "%invoke tenant-db.query target=acme\n%routes")
    assert before == model().epoch.number
    assert model().last_cell_epoch is None
    call = next(e for e in model().recent(5) if e.kind == "handler.invoked")
    assert (None, number) == (call.epoch, call.cell)


def test_several_magics_in_one_cell_are_one_epoch(lab) -> None:
    """Two writes in one cell: one epoch, titled with the first and a count of the rest."""
    before = model().epoch.number
    run(lab, "%config set tenants.acme.db_url postgres://a2/acme\n"
             "%config set tenants.globex.db_url postgres://g2/globex")
    record = model().epoch_record()
    assert before + 1 == record.number
    assert record.label == "%config set tenants.acme.db_url postgres://a2/acme (+1 more)"
    assert 2 == len(record.commands)


def test_a_python_write_is_named_by_its_statement(lab) -> None:
    """Plain Python in a cell is labelled with the statement that wrote, not the cell's first
    line; inside a loop, the statement in the loop."""
    run(lab, 'config = kernel.registry.require("IConfig")\n'
             'config.set("tenants.acme.db_url", "postgres://py/acme")')
    assert 'config.set("tenants.acme.db_url", "postgres://py/acme")' == model().epoch.label
    run(lab, "import os\n"
             "for t in ['acme', 'globex']:\n"
             "    config.set(f'tenants.{t}.db_url', f'postgres://loop/{t}')\n")
    assert "config.set(f'tenants.{t}.db_url', f'postgres://loop/{t}')" == model().epoch.label


def test_an_awaited_kernel_call_is_named_by_its_line(lab) -> None:
    """`await kernel.hot_add(...)` runs on the kernel's own loop thread; its epoch still
    names the cell's line."""
    run(lab, "%config set tenants.umbrella.db_url postgres://db/umbrella")
    run(lab, 'await kernel.hot_add("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})')
    assert ('await kernel.hot_add("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})'
            == model().epoch.label)
    assert "added" in model().epoch_record().counts()


def test_in_a_terminal_with_inline_on_each_changing_cell_prints_one_summary(lab) -> None:
    """`%lab --inline on` in a terminal: one line per cell that changed something, none for a
    cell that did not."""
    lab.run("%lab --inline on")
    number = run(lab, "%config set tenants.acme.db_url postgres://s/acme\n"
                      "%config set tenants.globex.db_url postgres://s/globex")
    assert 1 == lab.output.count(f"In [{number}]: ")
    assert "set tenants.acme.db_url, tenants.globex.db_url" in lab.output
    run(lab, "%routes")
    assert "In [" not in lab.output


@pytest.mark.parametrize(("source", "line", "expected"), [
    ("x = 1\nconfig.set('a.b', 2)\n", 2, "config.set('a.b', 2)"),
    ("for t in ts:\n    config.set(t, 1)\n", 2, "config.set(t, 1)"),
    ("for t in ts:\n    config.set(t, 1)\n", 1, "for t in ts:"),
    ("await kernel.invoke('x', {'a': 1,\n                         'b': 2})\n", 1,
     "await kernel.invoke('x', {'a': 1, 'b': 2})"),
    ("not python (\n", 1, "not python ("),
])
def test_statement_at_names_the_innermost_statement(source, line, expected) -> None:
    assert expected == statement_at(source, line)


def test_a_failure_the_cell_caused_is_one_note_at_its_end(lab) -> None:
    """An effect that raises logs a warning on the kernel's thread: the cell shows it once,
    as a note after its output, not as stray stderr."""
    lab.run("from signalpy_lab.kernel import component, effect\n"
            "@component('fragile', depends=['config'])\n"
            "class Fragile:\n"
            "    @effect\n"
            "    def watch(self):\n"
            "        if self.rt.config.get('fragile.fail', False):\n"
            "            raise ValueError('asked to fail')\n")
    lab.run("%discover Fragile\n%instantiate fragile")
    lab.run("%config set fragile.fail true")
    notes = [line for line in lab.output.splitlines() if line.startswith("⚠ ")]
    assert ["⚠ effect 'fragile.watch' of 'fragile' failed: ValueError: asked to fail"] == notes
