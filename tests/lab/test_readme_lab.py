"""The README's "The lab" cells run as written: pasted into IPython, and in a notebook.

The cells are read from README.md itself, never copied here, so the README cannot drift from
what works. Their trailing `# comments` are part of what is tested.

`%load_ext` is IPython's own magic, run before the lab (and its comment handling) exists: it
still reads `%load_ext signalpy_lab  # ...` as the module `signalpy_lab  # ...`, and nothing
inside this package can change that. So the README puts that one comment on the line above.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from signalpy_lab.testing import LabShell
from tests.markdown import code_blocks

README = Path(__file__).resolve().parents[2] / "README.md"
CONFIG = {"tenants": {"acme": {"db_url": "postgres://db1/acme"},
                      "globex": {"db_url": "postgres://new/globex"}}}
RESULT = {"tenant": "globex", "db_url": "postgres://db2/globex", "table": "users",
          "rows": [{"id": 1, "tenant": "globex"}]}  # the routed call, before the migration


def readme_lab_cells() -> list[str]:
    """The ``ipython`` blocks of the README's "The lab" section, in order."""
    cells = [b.source for b in code_blocks(README, "ipython") if b.section == "The lab"]
    assert len(cells) == 5, ("the section's cells: load + discover, %%config, instantiate + "
                             "invoke, the migration + %why, %lab")
    return cells


def test_the_cells_carry_comments_on_magic_lines() -> None:
    """The README shows trailing comments on magic lines: what this file tests is there."""
    firsts = [cell.splitlines()[0] for cell in readme_lab_cells()]
    assert re.fullmatch(r"%%config +# YAML or JSON.*", firsts[1])
    assert re.fullmatch(r"%config set \S+ \S+ +# prints what went stale", firsts[3])


def test_pasted_into_ipython_cell_by_cell() -> None:
    """Each README cell run as one IPython cell: keys stored without the comments, the
    routed call's result in `r`, and globex's db_url (alone) gone stale."""
    with LabShell(load=False) as lab:  # the README's own %load_ext loads it
        try:
            outputs = []
            for cell in readme_lab_cells():
                lab.run(cell)
                outputs.append(lab.output)
            kernel = lab.user_ns["kernel"]
            assert kernel.registry.require("IConfig").as_dict() == CONFIG
            assert lab.user_ns["r"] == RESULT
            assert "discovered: tenant-db" in outputs[0]
            assert outputs[1] == "merged 2 key(s)\n"
            assert "tenant-db.query[globex] via target → tenant-db-globex.query in" in outputs[2]
            assert outputs[3].startswith("tenants.globex.db_url = 'postgres://new/globex' (runtime)"
                                         "; stale now: tenant-db-globex.db_url\n")
            assert "tenant-db-globex.db_url: stale in epoch" in outputs[3]  # %why, the last line
            assert ("because tenants.globex.db_url changed from 'postgres://db2/globex' to "
                    "'postgres://new/globex'") in outputs[3]
            assert "Events (newest first)" in outputs[4]  # %lab, as text in a terminal
        finally:  # the shell is process-wide: leave no lab behind
            lab.run("%unload_ext signalpy_lab")


@pytest.mark.slow
def test_in_a_notebook(tmp_path, kernel_name) -> None:
    """The same cells in a real Jupyter kernel, then one cell of ours that reads the state."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(cell) for cell in readme_lab_cells()]
    notebook.cells.append(nbformat.v4.new_code_cell(
        "import json\nprint(json.dumps([kernel.registry.require('IConfig').as_dict(), r]))"))
    NotebookClient(notebook, timeout=180, kernel_name=kernel_name,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    def text(cell: nbformat.NotebookNode) -> str:
        return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")

    load, config, call, migration, panel, check = notebook.cells
    assert "discovered: tenant-db" in text(load)
    assert text(config) == "merged 2 key(s)\n"
    assert "tenant-db.query[globex] via target → tenant-db-globex.query in" in text(call)
    assert "stale now: tenant-db-globex.db_url" in text(migration)
    assert "tenant-db-globex.db_url: stale in epoch" in "".join(
        o.get("data", {}).get("text/plain", "") for o in migration.outputs)  # %why's Out[]
    assert json.loads(text(check)) == [CONFIG, RESULT]
    widgets = [o for o in panel.outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets, "%lab shows the live panel"
