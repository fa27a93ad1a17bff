"""The lab's graph rendering: snapshot -> DOT (``dot``) -> laid-out, restyled SVG (``svg``)."""

from .dot import (
    DETAIL_WIDTH,
    LEGEND,
    STATUSES,
    DotGraph,
    best_rankdir,
    class_of,
    detail_of,
    natural_key,
    short_name,
    to_dot,
)
from .svg import (
    GraphvizNotFoundError,
    LayoutError,
    apply_state,
    clear_cache,
    find_layout_binary,
    layout_count,
    render_svg,
    stylesheet,
)

__all__ = [
    "DETAIL_WIDTH",
    "LEGEND",
    "STATUSES",
    "DotGraph",
    "GraphvizNotFoundError",
    "LayoutError",
    "apply_state",
    "best_rankdir",
    "class_of",
    "clear_cache",
    "detail_of",
    "find_layout_binary",
    "layout_count",
    "natural_key",
    "render_svg",
    "short_name",
    "stylesheet",
    "to_dot",
]
