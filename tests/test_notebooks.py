"""Every notebook runs top to bottom in a real kernel, twice in a row in the same folder (as a
teacher re-runs it), and both runs' cells produce the story."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(name: str, tmp_path: Path, kernel_name: str,
                 *, extra: str | None = None) -> nbformat.NotebookNode:
    """Run notebook ``name`` in ``tmp_path``; ``extra``, if given, is one more code cell at
    the end (its outputs are the last cell's)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if extra is not None:
        notebook.cells.append(nbformat.v4.new_code_cell(extra))
    NotebookClient(notebook, timeout=180, kernel_name=kernel_name, store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return notebook


def run_twice(name: str, tmp_path: Path, kernel_name: str) -> Iterator[nbformat.NotebookNode]:
    """Run ``name`` twice in a row in one folder, each time in a new kernel; yield each run."""
    for run in (1, 2):
        try:
            notebook = run_notebook(name, tmp_path, kernel_name)
        except CellExecutionError as exc:
            raise AssertionError(f"run {run} of {name} failed: {exc}") from None
        yield notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    """All stream and plain-text outputs, in order.

    Consecutive pieces of one stream are joined as a reader sees them: a busy kernel may
    flush one ``print`` in two messages, and the seam must not show up as a line break.
    """
    parts: list[str] = []
    for cell in notebook.cells:
        last_stream = None
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                if last_stream == output["name"]:
                    parts[-1] += output["text"]
                else:
                    parts.append(output["text"])
                last_stream = output["name"]
                continue
            last_stream = None
            if "data" in output:
                parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


_PICTURE = re.compile(r'<div class="signalpy-lab signalpy-inline-epoch" data-epoch="(\d+)"'
                      r'(?: data-cell="(\d+)")? title="([^"]*)"')


def pictures(cell: nbformat.NotebookNode) -> list[dict]:
    """The epoch pictures in a cell's saved outputs: epoch, cell, title, and what each drawn
    node did (label -> status, from the SVG's data-node / data-status)."""
    found = []
    for output in cell.get("outputs", []):
        markup = output.get("data", {}).get("text/html", "")
        match = _PICTURE.search(markup)
        if match:
            nodes = dict(re.findall(r'data-node="([^"]+)" data-status="([^"]+)"', markup))
            found.append({"epoch": int(match[1]), "cell": match[2] and int(match[2]),
                          "title": html.unescape(match[3]), "nodes": nodes,
                          "touched": {k: v for k, v in nodes.items() if v != "untouched"},
                          "html": markup})
    return found


def code_cell(notebook: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """The one code cell whose source starts with ``source``."""
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source)]
    assert len(cells) == 1, f"{len(cells)} cells start with {source!r}"
    return cells[0]


def check_every_picture_is_its_cells(notebook: nbformat.NotebookNode) -> None:
    """At most one picture under a cell, and it is that cell's: titled with the cell's own
    prompt number, as IPython numbered it."""
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        found = pictures(cell)
        assert len(found) <= 1, f"In [{cell.execution_count}] has {len(found)} pictures"
        for picture in found:
            assert picture["cell"] == cell.execution_count, (cell.source, picture["title"])
            assert picture["title"].startswith(f"In [{cell.execution_count}]: "), picture


def widget_states(notebook: nbformat.NotebookNode) -> list[dict]:
    bundle = notebook.metadata.get("widgets", {}).get(
        "application/vnd.jupyter.widget-state+json", {})
    return [w["state"] for w in bundle.get("state", {}).values()]


@pytest.mark.slow
def test_multi_tenant_tour(tmp_path, kernel_name) -> None:
    """The tour routes to each tenant, migrates only globex, onboards and offboards."""
    for notebook in run_twice("01_multi_tenant_tour.ipynb", tmp_path, kernel_name):
        check_tour(notebook)


def check_tour(notebook: nbformat.NotebookNode) -> None:
    out = text_of(notebook)
    assert "tenant-db.query[globex] via target → tenant-db-globex.query" in out
    assert "stale now: tenant-db-globex.db_url" in out
    assert "tenant-db-globex.db_url: recomputed" in out
    assert "tenant-db-acme.db_url: did NOT recompute" in out
    assert "UnknownTargetError" in out or "No instance serves 'tenant-db.query' for target " \
        "'initech'" in out
    assert "tenant-db.query[hooli] → tenant-db-hooli.query" in out
    graphs = [s for s in widget_states(notebook) if "classes" in s]
    assert graphs, "the live graph widget's state was saved"
    check_tour_pictures(notebook)


def check_tour_pictures(notebook: nbformat.NotebookNode) -> None:
    """Each cell's picture is what that cell did: the write marks only globex stale, the read
    recomputes it, a key nobody reads is said in words, reads and tables draw nothing."""
    check_every_picture_is_its_cells(notebook)
    [seed] = pictures(code_cell(notebook, "%%config"))
    assert {} == seed["touched"] or set(seed["touched"].values()) == {"set"}
    assert seed["html"].count("no readers yet, nothing recomputes") >= 3
    [migration] = pictures(code_cell(notebook, "%config set tenants.globex.db_url"))
    assert {"tenants.globex.db_url": "set", "tenant-db-globex.db_url": "stale"} == \
        migration["touched"]
    [read] = pictures(code_cell(notebook, "r = %invoke tenant-db.query table=users "
                                          "target=globex"))
    assert {"tenant-db-globex.db_url": "recomputed"} == read["touched"]
    assert read["epoch"] == migration["epoch"] + 1
    for quiet in ("%routes", "for tenant in", "%why"):
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.source.startswith(quiet):
                assert [] == pictures(cell), f"{cell.source!r} changed nothing reactive"
    [removal] = pictures(code_cell(notebook, "%remove tenant-db-initech"))
    assert "removed" == removal["touched"]["tenant-db-initech.db_url"]
    [panel] = [o for o in code_cell(notebook, "%lab --sidecar").outputs
               if "signalpy-sidecar-note" in o.get("data", {}).get("text/html", "")]
    assert "<svg" in panel["data"]["text/html"], "the panel as it was, for static views"


@pytest.mark.slow
def test_debugging_reactive_chains(tmp_path, kernel_name) -> None:
    """The chain notebook shows a cascade, an equal-value stop and a cached failure."""
    for notebook in run_twice("02_debugging_reactive_chains.ipynb", tmp_path, kernel_name):
        check_debugging(notebook)


def check_debugging(notebook: nbformat.NotebookNode) -> None:
    out = text_of(notebook)
    assert "pricing-acme.rounded: recomputed in" in out
    assert "returned an equal value, so the cascade stopped here" in out
    assert "label() raises: ZeroDivisionError" in out
    assert "effect errors: 1" in out
    check_every_picture_is_its_cells(notebook)
    [stop] = pictures(code_cell(notebook, "%config set tenants.acme.price 120.4"))
    assert {"tenants.acme.price": "set", "pricing-acme.net": "recomputed",
            "pricing-acme.rounded": "unchanged", "pricing-acme.label": "verified"} == \
        stop["touched"]
    failing = code_cell(notebook, "%config set tenants.acme.units 0")
    assert [] == [o for o in failing.outputs if o.get("name") == "stderr"], \
        "the deliberate failure is a note, not stray stderr"
    assert any("⚠ effect &#x27;pricing-acme.publish&#x27;" in o.get("data", {}).get(
        "text/html", "") or "⚠ effect 'pricing-acme.publish'" in o.get("data", {}).get(
        "text/html", "") for o in failing.outputs)


@pytest.mark.slow
def test_isolation(tmp_path, kernel_name) -> None:
    """Every attempt is blocked, credentials rotate through config (masked), grants work;
    a tenant moved out of process is shown, recomputes there, dies clearly and restarts;
    hostile code typed into %%as inside its worker is refused by the OS, one line each."""
    for notebook in run_twice("03_isolation.ipynb", tmp_path, kernel_name):
        check_isolation(notebook)


def check_isolation(notebook: nbformat.NotebookNode) -> None:
    out = text_of(notebook)
    assert "NOT BLOCKED" not in out
    assert out.count("blocked: ") == 12 + 3 + 1
    assert "['acme']" in out
    assert "'apps.<name>' is private to component <name>" in out
    assert "apps.db-client.targets.prod.api_key = ••••••" in out
    assert "key-v1" not in out
    assert "key-v2" not in out
    assert "Instance 'reporting' may not call 'tenant-db.query'" in out
    assert "after the grant: postgres://db1.prod/acme" in out
    # Moving a tenant out of process (the new section prints no "blocked: ")
    assert "tenant-db-hooli: active (activated, in worker pid " in out
    assert "different processes: True" in out
    assert "tenant-db.query via transport in" in out
    assert re.search(r"tenant-db-hooli +tenant-db +hooli +active +process +\d+", out)
    assert re.search(r"tenant-db\.query\[hooli\] → tenant-db-hooli\.query +transport", out)
    assert "tenant-db-hooli.db_url: recomputed in epoch" in out
    assert "because tenants.hooli.db_url changed from 'postgres://db1.prod/hooli' to " \
        "'postgres://db2.prod/hooli'" in out
    assert "body runs for this change, in the worker: 1" in out
    assert re.search(r"the call failed after \d+\.\d ms: TransportError: .*exited with code -9",
                     out)
    assert re.search(r"tenant-db-hooli +tenant-db +hooli +failed +process +0 .*WorkerError", out)
    assert "acme: postgres://db1.prod/acme" in out
    assert "hooli again: postgres://db2.prod/hooli from a new worker: True" in out
    # Inside the worker: %%as runs there, and the OS refuses each reach (one line each)
    assert re.search(r"tenant-db-hooli +tenant-db +hooli +active +process +\d+ +connected +"
                     r"landlock v\d", out)
    for reach in ("list acme's storage folder", "read acme's orders",
                  "read the notebook's environment", "connect to the notebook's port"):
        assert re.search(rf"{reach} +refused: PermissionError: \[Errno 13\] Permission "
                         rf"denied", out), reach
    assert re.search(r"signal the notebook \(kill 0\) +refused: PermissionError: \[Errno 1\] "
                     r"Operation not permitted", out)
    assert re.search(r"write a file in its own temp dir +allowed", out)
    check_every_picture_is_its_cells(notebook)
    table = next(o["data"]["text/html"] for o in code_cell(notebook, "from signalpy_lab.lab.text")
                 .outputs if "text/html" in o.get("data", {}))
    assert 12 == table.count("<tr>") - 1  # a header, then one row per attempt, in full
    assert "handles keep no state in slots or __dict__" in table
    [refusal] = [o for o in notebook.cells[-1].outputs if o["output_type"] == "error"]
    assert "TenantIsolationError" == refusal["ename"]
    assert 1 == len(refusal["traceback"]), "a refusal is one line, not a traceback"
    graphs = [s for s in widget_states(notebook) if "classes" in s]
    assert re.search(r"<GraphWidget instance='tenant-db-hooli': [1-9]\d* of", out)
    relayed = [s for s in graphs
               if any(n[1:].isdigit() and int(n[1:]) >= 10**9 for n in s["details"])]
    assert relayed, "a graph widget shows the worker's nodes (relayed ids are >= 10**9)"
    assert "config@w&#45;tenant&#45;db&#45;hooli" in relayed[-1]["svg"]


@pytest.mark.slow
def test_production(tmp_path, kernel_name) -> None:
    """Real SQLite files: onboarding, a live migration, a quota hit, the admin, offboarding."""
    for notebook in run_twice("04_production.ipynb", tmp_path, kernel_name):
        check_production(notebook)


def check_production(notebook: nbformat.NotebookNode) -> None:
    out = text_of(notebook)
    check_every_picture_is_its_cells(notebook)
    [quota] = pictures(code_cell(notebook, "%config set tenants.acme.quota.rate 2/minute"))
    assert "recomputed" == quota["touched"].get("quota-acme.limit"), quota["touched"]
    assert "straight from tenant-db-globex/globex.db : ['globex user 0'" in out
    assert "globex now in globex-v2.db with 3 users" in out
    assert "connects before: {'acme': 1, 'globex': 1, 'initech': 1}" in out
    assert "connects after:  {'acme': 1, 'globex': 2, 'initech': 1}" in out
    assert "refused: DbUrlError:" in out
    assert "acme call 3: Tenant 'acme' is over its quota of 2 per 1 minute" in out
    assert "acme's limit raised live to 10 per 1 minute" in out
    assert ("refused: UndeclaredCallError: Instance 'curious-acme' (target 'acme') may not call "
            "'tenant-admin.tenants'") in out
    assert "granted: ['acme', 'globex', 'initech']" in out
    assert "open files of initech: none" in out
    assert "tenants now: ['acme', 'globex']" in out
    assert "as expected, the second call is refused: Tenant 'acme' is over its quota of 1" in out


@pytest.mark.slow
def test_the_tour_under_ipython_8(tmp_path, ipython8_kernel) -> None:
    """IPython 8 numbers cells after their hooks run (9 before): the pictures and labels
    still say the prompt shown beside each cell."""
    notebook = run_notebook("01_multi_tenant_tour.ipynb", tmp_path, ipython8_kernel,
                            extra="import IPython\nIPython.version_info[0]")
    assert "8" == notebook.cells[-1].outputs[0]["data"]["text/plain"]
    notebook.cells.pop()
    check_tour(notebook)


@pytest.mark.slow
def test_shared_config(tmp_path, kernel_name) -> None:
    """Two kernels in two processes, one bucket on a real nats-server: B's write recomputes
    only globex on A, B's call reads its own write, and a stale compare-and-set is refused."""
    for notebook in run_twice("05_shared_config.ipynb", tmp_path, kernel_name):
        check_shared_config(notebook)


def check_shared_config(notebook: nbformat.NotebookNode) -> None:
    out = text_of(notebook)
    check_every_picture_is_its_cells(notebook)
    assert "config shared through bucket 'spl-config' on nats://127.0.0.1:" in out
    [written] = pictures(code_cell(notebook, "revision = b.set("))
    assert re.search(r": set on kernel-b, rev \d+: config.set\('tenants.globex.db_url'",
                     written["title"]), written["title"]
    assert written["touched"] == {"tenants.globex.db_url": "set",
                                  "tenant-db-globex.db_url": "stale"}, written["touched"]
    [called] = pictures(code_cell(notebook, "answer = b.call("))
    assert called["touched"] == {"tenant-db-globex.db_url": "recomputed"}, called["touched"]
    assert ("globex postgres://moved/globex | runs here: {'tenant-db-acme.db_url': 1, "
            "'tenant-db-globex.db_url': 2}") in out
    assert re.search(r"tenant-db-globex.db_url: recomputed .*\n  because tenants.globex.db_url "
                     r"changed from 'postgres://db2/globex' to 'postgres://moved/globex' by "
                     r"`set on kernel-b, rev \d+: config.set", out), out
    assert "tenant-db-acme.db_url: did NOT recompute" in out
    assert re.search(r"\d+ +'postgres://moved/globex' +kernel-b +config.set", out), out
    assert re.search(r"as expected, refused: 'tenants.globex.db_url' was not written: expected "
                     r"its revision \d+, found \d+ \(another writer came first\)", out), out
