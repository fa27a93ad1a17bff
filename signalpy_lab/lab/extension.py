"""``%load_ext signalpy_lab`` / ``%unload_ext signalpy_lab``: symmetric set-up and tear-down.

Loading creates a lab session (a booted kernel on its own loop thread), registers the magics
(keeping IPython's own ``%config`` for every use that is not ours), the input transformer
that suggests the closest magic for a misspelled one (``lines.py``), tab completion, HTML
formatters for kernel objects, and the cell hooks (``cells.CellTracker``): one epoch per cell
that did something reactive, titled with its prompt number and the line that made the change,
and its picture under the cell. Unloading removes every one of them and shuts the kernel
down, so ``%reload_ext`` is clean.
"""

from __future__ import annotations

import html
import sys
from typing import Any

from ..kernel import GraphSnapshot, Kernel
from .cells import CellTracker
from .completion import install_completers
from .lines import MagicLines
from .magics import LabMagics
from .session import LabSession

__all__ = ["load_ipython_extension", "session_of", "unload_ipython_extension"]

_STATE: dict[int, dict[str, Any]] = {}


def _kernel_html(kernel: Kernel) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(i.name)}</td><td>{html.escape(i.factory)}</td>"
        f"<td>{html.escape(i.target or '')}</td><td>{html.escape(i.state)}</td></tr>"
        for i in kernel.instances()
    )
    return (f"<b>Kernel {html.escape(kernel.name)!s}</b> ({kernel.state}, "
            f"{len(kernel.bus.names())} handler names)"
            f"<table><tr><th>instance</th><th>factory</th><th>target</th><th>state</th></tr>"
            f"{rows}</table>")


def _snapshot_html(snapshot: GraphSnapshot) -> str:
    rows = "".join(f"<tr><td>{html.escape(n.label)}</td><td>{n.kind}</td>"
                   f"<td>{html.escape(n.instance or '')}</td><td>{html.escape(n.tenant or '')}"
                   f"</td><td>{n.state}</td><td>{n.runs}</td></tr>" for n in snapshot.nodes)
    return ("<table><tr><th>node</th><th>kind</th><th>instance</th><th>tenant</th>"
            f"<th>state</th><th>runs</th></tr>{rows}</table>")


def session_of(ip: Any) -> LabSession:
    """The lab session loaded in shell ``ip`` (for tests and tools holding the shell).

    Not a global: code that has no handle on the notebook's shell has no way to the lab
    through this package's public API (in-process ``%%as`` cells and components included).
    """
    state = _STATE.get(id(ip))
    if state is None:
        raise LookupError("No lab session in this shell: run `%load_ext signalpy_lab` first.")
    return state["session"]


def load_ipython_extension(ip: Any) -> None:
    """Create the session and register magics, completers, formatters and cell hooks."""
    if id(ip) in _STATE:
        return
    from ..kernel.events import caused_by

    with caused_by("%load_ext signalpy_lab"):
        session = LabSession()
    # find_line_magic resolves IPython's lazily loaded magics to the real bound methods.
    originals = {name: ip.find_line_magic(name) for name in ("config", "reset")}
    magics = LabMagics(ip, session, originals["config"], originals["reset"])
    ip.register_magics(magics)
    magic_lines = MagicLines(ip)
    ip.input_transformers_post.append(magic_lines)

    cells = CellTracker(ip, session)
    cells.install()
    html_formatter = ip.display_formatter.formatters["text/html"]
    previous = {
        Kernel: html_formatter.for_type(Kernel, _kernel_html),
        GraphSnapshot: html_formatter.for_type(GraphSnapshot, _snapshot_html),
    }
    uninstall_completers = install_completers(ip, session)
    added_kernel = "kernel" not in ip.user_ns
    if added_kernel:
        ip.user_ns["kernel"] = session.kernel
    _STATE[id(ip)] = {
        "session": session, "magics": magics, "originals": originals,
        "cells": cells, "previous_formatters": previous,
        "uninstall_completers": uninstall_completers, "added_kernel": added_kernel,
        "magic_lines": magic_lines,
    }
    print("signalpy_lab: kernel booted with config, logging, credentials and storage. "
          "Try %discover, %instantiate, %invoke, %config set, %graph, %lab; `kernel` is the "
          f"Kernel.\nsignalpy_lab: {session.data.describe()}.")


def unload_ipython_extension(ip: Any) -> None:
    """Undo everything ``load_ipython_extension`` did and shut the kernel down."""
    state = _STATE.pop(id(ip), None)
    if state is None:
        return
    state["cells"].uninstall()
    state["uninstall_completers"]()
    if state["magic_lines"] in ip.input_transformers_post:
        ip.input_transformers_post.remove(state["magic_lines"])
    manager = ip.magics_manager
    magics = state["magics"]
    for kind, names in magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    for name, original in state["originals"].items():
        if original is not None:
            manager.magics["line"][name] = original
    manager.registry.pop(type(magics).__name__, None)
    html_formatter = ip.display_formatter.formatters["text/html"]
    for cls, previous in state["previous_formatters"].items():
        html_formatter.type_printers.pop(cls, None)
        if previous is not None:
            html_formatter.for_type(cls, previous)
    if state["added_kernel"] and ip.user_ns.get("kernel") is state["session"].kernel:
        del ip.user_ns["kernel"]
    state["session"].close()
    widgets = sys.modules.get("signalpy_lab.lab.widgets")  # imported only if views were made
    if widgets is not None and not _STATE:  # the last shell with the lab: no flush thread left
        widgets.stop_flush_thread()
