"""Refresh the README's screenshots of the lab: ``make screenshots``.

Runs the tour notebook through JupyterLab's UI in Debian's headless Chromium (the same
harness as the browser tests: Run All, then clicks in the panel's epoch timeline) and saves
three PNGs under ``docs/``:

* ``lab-cell-pictures.png``: the globex migration in the notebook, two cells and their own
  pictures: ``In [N]: %config set tenants.globex.db_url ...`` (its key written, amber; its
  ``db_url`` stale, dashed) and the read after it (only globex's ``db_url`` recomputed,
  green; the key it read faded);
* ``lab-globex-migration.png``: the panel beside the notebook (``%lab --sidecar``) with the
  migration's step of the epoch timeline selected: the graph *of that epoch* (initech,
  offboarded later, still there; umbrella and hooli, onboarded later, not yet);
* ``lab-after-tour.png``: "live" again, the end of the tour: umbrella onboarded, initech
  offboarded, hooli served by another factory under the same routed name.

Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import SIDECAR_GRAPHS, BrowserUnavailable, JupyterLab, LabPage, launch_chromium

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOUR = "01_multi_tenant_tour.ipynb"
MIGRATION = "%config set tenants.globex.db_url"
READ = "r = %invoke tenant-db.query table=users target=globex"
TENANTS_AT_END = ["acme", "globex", "hooli", "umbrella"]
VIEWPORT = {"width": 1440, "height": 1000}
MAX_HEIGHT = 800
MARGIN = 6  # px of the notebook around the panel


def save(lab: LabPage, path: Path, box: dict[str, float] | None) -> None:
    """Save the part of the page in ``box`` (with a margin, within the viewport)."""
    if box is None:
        raise RuntimeError(f"nothing to shoot for {path.name}{lab.diagnostics()}")
    left, top = max(box["x"] - MARGIN, 0), max(box["y"] - MARGIN, 0)
    clip = {"x": left, "y": top,
            "width": min(box["width"] + 2 * MARGIN, VIEWPORT["width"] - left),
            "height": min(box["height"] + 2 * MARGIN, MAX_HEIGHT, VIEWPORT["height"] - top)}
    lab.page.screenshot(path=str(path), clip=clip)
    print(f"{path}: {int(clip['width'])}x{int(clip['height'])}, "
          f"{path.stat().st_size // 1024} KB")


def shoot_panel(lab: LabPage, path: Path) -> None:
    """The sidecar panel, its graph fitted."""
    lab.fit_graph()
    lab.page.wait_for_timeout(400)  # the graph's style transitions (0.25 s) settle
    save(lab, path, lab.page.locator(".jupyterlab-sidecar").bounding_box())


def shoot_cells(lab: LabPage, path: Path) -> None:
    """The migration cell and the read after it, each with its picture."""
    cells = lab.cells()
    first = next(i for i in range(cells.count())
                 if lab.cell_source(i).startswith(MIGRATION))
    cells.nth(first).evaluate("e => e.scrollIntoView({block: 'start'})")
    lab.page.wait_for_timeout(400)
    top, bottom = cells.nth(first).bounding_box(), cells.nth(first + 1).bounding_box()
    if top is None or bottom is None:
        raise RuntimeError(f"the migration cells are not on screen{lab.diagnostics()}")
    save(lab, path, {"x": top["x"], "y": top["y"], "width": top["width"],
                     "height": bottom["y"] + bottom["height"] - top["y"]})


def take(context: Any, server: JupyterLab, out: Path) -> None:
    """Run the tour in a new tab; shoot the cells' pictures, the panel at the migration's
    epoch, then live."""
    lab = LabPage(context.new_page(), server, graphs=SIDECAR_GRAPHS)
    lab.open_notebook(server.add_notebook(TOUR))
    lab.hide_left_sidebar()
    lab.run_all()
    lab.wait_for_graph_labels(["tenants.hooli.db_url"], absent=["tenants.initech."])
    lab.wait_for_bus_targets(TENANTS_AT_END)
    shoot_cells(lab, out / "lab-cell-pictures.png")
    lab.select_epoch(MIGRATION)
    shoot_panel(lab, out / "lab-globex-migration.png")
    lab.go_live()
    shoot_panel(lab, out / "lab-after-tour.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DOCS, help="folder for the PNGs (docs/)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="signalpy-screenshots-") as root, \
            JupyterLab(Path(root)) as server:
        try:
            with launch_chromium(VIEWPORT) as context:
                take(context, server, args.out)
        except BrowserUnavailable as error:
            print(f"screenshots need Chromium: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
