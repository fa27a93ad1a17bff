"""Refresh the README's screenshots of the lab: ``make screenshots``.

Runs the tour notebook through JupyterLab's UI in Debian's headless Chromium (the same
harness as the browser tests: Run All, then clicks in the panel's epoch timeline) and saves
two PNGs of the ``%lab`` panel under ``docs/``:

* ``lab-globex-migration.png``: the timeline's step for the globex migration selected
  (``[N] cell [k]: %config set tenants.globex.db_url ...``): globex's config key written
  (amber), its ``db_url`` recomputed for the new URL (green), every other node untouched
  (faded). A past epoch is drawn on today's graph: umbrella and hooli, added later, are
  there, faded; initech, offboarded later, is not;
* ``lab-after-tour.png``: "live" again, the end of the tour: umbrella onboarded, initech
  offboarded, hooli served by another factory under the same routed name (recomputed).

Each is the panel's top (caption, timeline, legend, zoom bar, graph after "fit", the bus
table), at most 1280x800. Needs ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from .harness import BrowserUnavailable, JupyterLab, LabPage, launch_chromium

DOCS = Path(__file__).resolve().parents[2] / "docs"
TOUR = "01_multi_tenant_tour.ipynb"
MIGRATION = "%config set tenants.globex.db_url"
TENANTS_AT_END = ["acme", "globex", "hooli", "umbrella"]
VIEWPORT = {"width": 1280, "height": 1000}
MAX_HEIGHT = 800
MARGIN = 6  # px of the notebook around the panel


def shoot(lab: LabPage, path: Path) -> None:
    """Fit the graph, put the panel at the top of the notebook and save its top part."""
    lab.fit_graph()
    panel = lab.panel()
    panel.evaluate("e => e.scrollIntoView({block: 'start'})")
    lab.page.wait_for_timeout(400)  # the graph's style transitions (0.25 s) settle
    box = panel.bounding_box()
    if box is None:
        raise RuntimeError(f"the lab panel is not on screen{lab.diagnostics()}")
    left, top = max(box["x"] - MARGIN, 0), max(box["y"] - MARGIN, 0)
    clip = {"x": left, "y": top,
            "width": min(box["width"] + 2 * MARGIN, VIEWPORT["width"] - left),
            "height": min(box["height"] + 2 * MARGIN, MAX_HEIGHT, VIEWPORT["height"] - top)}
    lab.page.screenshot(path=str(path), clip=clip)
    print(f"{path}: {int(clip['width'])}x{int(clip['height'])}, "
          f"{path.stat().st_size // 1024} KB")


def take(context: Any, server: JupyterLab, out: Path) -> None:
    """Run the tour in a new tab; shoot the panel at the migration's epoch, then live."""
    lab = LabPage(context.new_page(), server)
    lab.open_notebook(server.add_notebook(TOUR))
    lab.hide_left_sidebar()
    lab.run_all()
    lab.wait_for_graph_labels(["tenants.hooli.db_url"], absent=["tenants.initech."])
    lab.wait_for_bus_targets(TENANTS_AT_END)
    lab.select_epoch(MIGRATION)
    shoot(lab, out / "lab-globex-migration.png")
    lab.go_live()
    shoot(lab, out / "lab-after-tour.png")


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
