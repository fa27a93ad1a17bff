"""Lay DOT out as SVG, once per structure, and restyle the laid-out SVG per epoch.

Layout is the expensive step (``dot`` is superlinear in nodes and clusters); a status or a
value changes nothing that ``dot`` looks at, because ``to_dot`` keeps those out of its
``structure`` text. So ``render_svg`` caches layouts by the hash of the DOT text, and
``apply_state`` rewrites an already laid-out SVG's ``class`` attributes and value lines,
the same thing the widget's ES module does in the browser.

The layout binary is Graphviz's ``dot`` when it is on PATH, else the pip-installed Rust port
``graphviz-pure`` (same command line), looked for next to ``sys.executable`` first so a venv's
copy is found without activating the venv. It is run as a subprocess: the ``graphviz``
package's ``engine=`` picks the layout algorithm (``-K``), not the binary, and its only hook
for the binary is a process-wide global.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

from ...errors import GraphvizNotFoundError, LayoutError
from .dot import DotGraph

__all__ = [
    "CACHE_SIZE",
    "GraphvizNotFoundError",
    "LayoutError",
    "apply_state",
    "clear_cache",
    "find_layout_binary",
    "layout_count",
    "render_svg",
    "stylesheet",
]

#: Layouts kept (least recently used dropped first).
CACHE_SIZE = 64
#: Seconds a single layout may take before it is abandoned.
LAYOUT_TIMEOUT = 120.0


_cache: OrderedDict[str, str] = OrderedDict()
_cache_lock = threading.Lock()
_layouts = 0


def find_layout_binary() -> str:
    """Path of ``dot`` (on PATH), else ``graphviz-pure`` (beside ``sys.executable``, then PATH).

    ``SIGNALPY_LAB_DOT`` overrides both.
    """
    override = os.environ.get("SIGNALPY_LAB_DOT")
    if override:
        return override
    found = shutil.which("dot")
    if found:
        return found
    beside = Path(sys.executable).parent / "graphviz-pure"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("graphviz-pure")
    if found:
        return found
    raise GraphvizNotFoundError(
        "No Graphviz layout binary: 'dot' is not on PATH and 'graphviz-pure' is neither "
        f"beside {sys.executable} nor on PATH; run `pip install graphviz-pure` "
        "(or install Graphviz) to draw the graph.")


def layout_count() -> int:
    """How many layouts actually ran (cache misses) in this process, for tests and benchmarks."""
    return _layouts


def clear_cache() -> None:
    """Forget every cached layout."""
    with _cache_lock:
        _cache.clear()


def _layout(dot_source: str) -> str:
    global _layouts
    binary = find_layout_binary()
    try:
        done = subprocess.run([binary, "-Kdot", "-Tsvg"], input=dot_source.encode(),
                              capture_output=True, timeout=LAYOUT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise LayoutError(f"{Path(binary).name} took longer than {LAYOUT_TIMEOUT:g}s to lay "
                          "out the graph; show less with max_nodes, tenant or instance") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise LayoutError(f"{Path(binary).name} failed (exit {done.returncode}): "
                          f"{message[0] if message else 'no message'}")
    _layouts += 1
    return done.stdout.decode()


def render_svg(dot: str | DotGraph, *, embed_style: bool = False) -> str:
    """SVG for DOT text, laid out once per distinct text (cached by hash).

    Given a ``DotGraph``, only its ``structure`` is laid out (and cached); its classes and
    value lines are then applied to the cached SVG, so a new status costs no layout.
    ``embed_style`` inlines the lab's stylesheet: the file to save for a standalone picture.

    >>> path.write_text(render_svg(to_dot(model.snapshot()), embed_style=True))  # doctest: +SKIP
    """
    if isinstance(dot, DotGraph):
        return apply_state(render_svg(dot.structure), dot.classes, dot.details,
                           embed_style=embed_style, labels=dot.labels)
    if embed_style:
        return apply_state(render_svg(dot), {}, embed_style=True)
    key = hashlib.sha256(dot.encode()).hexdigest()
    with _cache_lock:
        svg = _cache.get(key)
        if svg is not None:
            _cache.move_to_end(key)
            return svg
    svg = _layout(dot)
    with _cache_lock:
        _cache[key] = svg
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return svg


# A node group as Graphviz writes it: <g id="n12" class="node ...">...</g> (no nested <g>,
# since to_dot sets no URL/tooltip that would wrap the shape in an <a>).
_NODE_RE = re.compile(r'<g id="(?P<id>[^"]+)" class="node(?: [^"]*)?"[^>]*>(?P<body>.*?)</g>',
                      re.DOTALL)
_TEXT_RE = re.compile(r"(<text\b[^>]*>)(.*?)(</text>)", re.DOTALL)
_SVG_OPEN_RE = re.compile(r"<svg\b([^>]*)>")


def apply_state(svg: str, classes: Mapping[str, str], details: Mapping[str, str] | None = None,
                highlight: Iterable[str] = (), *, embed_style: bool = False,
                labels: Mapping[str, str] | None = None) -> str:
    """Rewrite a laid-out SVG's node classes (and value lines) without a new layout.

    Each node group ``<g id="n12" class="node ...">`` gets ``class="node <classes[id]>"``
    (plus ``highlight``); its second ``<text>`` line becomes ``details[id]``. With
    ``labels`` (DOT id -> the node's label) it also gets ``data-node`` (the label) and
    ``data-status`` (its status, or ``summary``): the same hooks the live widget puts on
    the page, so a static picture can be checked the same way. The root ``<svg>`` gets
    ``class="signalpy-graph"``, which ``static/lab.css`` styles; ``embed_style`` inlines
    that stylesheet so the file looks the same on its own.
    """
    details = details or {}
    marked = set(highlight)

    def node(match: re.Match[str]) -> str:
        dot_id, body = match["id"], match["body"]
        cls = classes.get(dot_id)
        if cls is None:
            return match[0]
        if dot_id in marked:
            cls += " highlight"
        detail = details.get(dot_id)
        if detail is not None:
            lines = 0

            def text(line: re.Match[str]) -> str:
                nonlocal lines
                lines += 1
                if lines != 2:
                    return line[0]
                return f"{line[1]}{html.escape(detail, quote=False)}{line[3]}"

            body = _TEXT_RE.sub(text, body)
        data = ""
        if labels is not None and dot_id in labels:
            words = cls.split()
            status = "summary" if words[0] == "summary" else (
                words[1] if len(words) > 1 else "untouched")
            data = (f' data-node="{html.escape(labels[dot_id])}"'
                    f' data-status="{html.escape(status)}"')
        return f'<g id="{dot_id}" class="node {html.escape(cls)}"{data}>{body}</g>'

    out = _NODE_RE.sub(node, svg)
    style = f"<style><![CDATA[\n{stylesheet()}]]></style>" if embed_style else ""

    def root(match: re.Match[str]) -> str:
        attrs = match[1]
        if 'class="' not in attrs:
            attrs += ' class="signalpy-graph"'
        if 'style="' not in attrs:
            # Graphviz sizes the picture in pt; a wide graph (a chain laid out left to right)
            # would overflow a notebook's output. With its viewBox it scales down instead.
            attrs += ' style="max-width: 100%; height: auto"'
        return f"<svg{attrs}>{style}"

    return _SVG_OPEN_RE.sub(root, out, count=1)


@cache
def stylesheet() -> str:
    """The lab's CSS (node statuses, legend, tables), as shipped in ``static/lab.css``."""
    return (Path(__file__).parent.parent / "static" / "lab.css").read_text(encoding="utf-8")
