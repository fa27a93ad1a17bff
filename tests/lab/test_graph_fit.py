"""Wide graphs fit the output: deep chains stack, static SVGs scale by their viewBox, the
widget zooms and pans.

A chain like the debugging notebook's, laid out left to right, is wider than an output area;
stacked top to bottom it is not:

    net ──▶ taxed ──▶ rounded ──▶ label ──▶ shouted ──▶ framed
"""

from __future__ import annotations

import re
from pathlib import Path

from signalpy_lab.lab.render import render_svg, to_dot
from signalpy_lab.testing import LabShell

STATIC = Path(__file__).parents[2] / "signalpy_lab" / "lab" / "static"
# A chain of 8 computeds: at natural size far wider than a notebook's ~800 px output.
CHAIN = """
from signalpy_lab.kernel import component, computed, runnable

@component("chain", depends=["config"])
class Chain:
    @computed
    def net(self): return self.rt.config.get(f"tenants.{self.rt.target}.amount", 1)
    @computed
    def taxed(self): return self.net() * 1.2
    @computed
    def rounded(self): return round(self.taxed(), 2)
    @computed
    def label(self): return f"{self.rt.target}: {self.rounded()}"
    @computed
    def shouted(self): return self.label().upper()
    @computed
    def framed(self): return f"[{self.shouted()}]"
    @runnable("show")
    async def show(self, params): return self.framed()
"""


def root_of(svg: str) -> str:
    return re.search(r"<svg\b[^>]*>", svg)[0]


def natural_width_px(root: str) -> float:
    return float(re.search(r'width="([\d.]+)pt"', root)[1]) * 4 / 3


def chain_snapshot() -> dict:
    with LabShell() as lab:
        lab.run(CHAIN)
        lab.run("%discover Chain")
        lab.run("%instantiate chain chain-acme target=acme")
        lab.run("%invoke chain.show target=acme")
        from signalpy_lab.lab.session import current_session

        return current_session().model.snapshot(tenant="acme")


def test_a_deep_chain_is_stacked_so_it_fits_an_output_area() -> None:
    """Six levels of computeds are drawn top to bottom: narrower than an output area and
    taller than wide, where left to right they would be far wider."""
    snapshot = chain_snapshot()
    stacked = root_of(render_svg(to_dot(snapshot), embed_style=True))
    assert 'rankdir=TB' in to_dot(snapshot).structure
    width = natural_width_px(stacked)
    height = float(re.search(r'height="([\d.]+)pt"', stacked)[1]) * 4 / 3
    assert width < 800 < natural_width_px(root_of(render_svg(to_dot(snapshot, rankdir="LR"))))
    assert height > width


def test_a_wide_static_svg_scales_down_to_the_output_width() -> None:
    """The exported/static SVG keeps its viewBox and gets max-width: 100% (no cut-off)."""
    svg = render_svg(to_dot(chain_snapshot(), rankdir="LR"), embed_style=True)
    root = root_of(svg)
    assert natural_width_px(root) > 800  # wider than an output area at natural size
    assert re.search(r'viewBox="0(\.0+)? 0(\.0+)? [\d.]+ [\d.]+"', root)
    assert 'style="max-width: 100%; height: auto"' in root


def test_the_widget_svg_carries_the_same_fit() -> None:
    """What the widget sends is the same fitted SVG (the ES module then owns its size)."""
    from signalpy_lab.lab.model import LabModel  # noqa: F401  (the widget renders a model)
    from signalpy_lab.lab.widgets import GraphWidget

    with LabShell() as lab:
        lab.run(CHAIN)
        lab.run("%discover Chain\n%instantiate chain chain-acme target=acme")
        from signalpy_lab.lab.session import current_session

        widget = GraphWidget(current_session().model, tenant="acme")
        try:
            root = root_of(widget.svg)
            assert "viewBox=" in root
            assert "max-width: 100%" in root
        finally:
            widget.close()


def test_the_graph_module_offers_zoom_pan_and_fit() -> None:
    """The ES module's DOM contract, for the browser test to come: zoom buttons, a fit reset,
    Ctrl+wheel zoom, drag to pan, a scale on the canvas, stable node ids."""
    source = (STATIC / "graph.js").read_text()
    for hook in ("signalpy-zoom-out", "signalpy-zoom-in", "signalpy-zoom-fit",
                 "signalpy-zoom-reset", "dataset.zoom", "dataset.node", '"wheel"',
                 '"pointerdown"', '"pointermove"'):
        assert hook in source
    css = (STATIC / "lab.css").read_text()
    canvas = re.search(r"\.signalpy-lab \.signalpy-canvas \{([^}]*)\}", css)[1]
    assert "overflow: auto" in canvas
    assert "max-width: 100%" in canvas
