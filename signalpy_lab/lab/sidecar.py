"""``%lab --sidecar``: the live panel beside the notebook, so it stays in view.

In a tour the panel is drawn once near the top, and the cell that says "the graph shows
globex's computed recomputed" is seven screens below it. JupyterLab can show widgets in a
panel of their own next to the notebook (the ``sidecar`` package, in the ``[jupyterlab]``
extra): the lab's panel goes there, split to the right of the notebook, and stays in view
while the cells are stepped through. One sidecar per lab session: a second
``%lab --sidecar`` replaces the panel in it.

Elsewhere the sidecar cannot show: the ``sidecar`` package missing, or a front end without
JupyterLab's sidecar extension (classic Notebook, VS Code, nbconvert). So the cell that asked
for it says where the panel went, and carries the panel as it was then, folded (``<details>``),
which is what those front ends show. Without the package the panel is simply shown in the
cell, with a note saying how to get the sidecar.
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["SIDECAR_TITLE", "show_in_sidecar"]

SIDECAR_TITLE = "signalpy_lab"


def show_in_sidecar(session: Any, panel: Any) -> Any:
    """Show ``panel`` in the session's sidecar; returns what the cell should display."""
    from IPython.display import HTML, display

    try:
        from sidecar import Sidecar
    except ImportError:
        display(HTML('<div class="signalpy-lab" style="color:#4b5563;font-size:12px">'
                     "%lab --sidecar: the <code>sidecar</code> package is not installed "
                     "(<code>pip install 'signalpy-lab[jupyterlab]'</code>), so the panel is "
                     "shown here.</div>"))
        return panel
    old = getattr(session, "sidecar", None)
    if old is None:
        session.sidecar = Sidecar(title=SIDECAR_TITLE, anchor="split-right")
    sidecar = session.sidecar
    previous = getattr(session, "sidecar_panel", None)
    sidecar.clear_output()
    with sidecar:
        display(panel)
    session.sidecar_panel = panel
    if previous is not None and previous is not panel:
        previous.close()
    static = panel.static_html()
    return HTML(
        '<div class="signalpy-lab signalpy-sidecar-note" style="font-size:12px;'
        'color:#374151">The lab panel is open beside the notebook (the '
        f"<b>{html.escape(SIDECAR_TITLE)}</b> tab, JupyterLab's sidecar) and follows every "
        "cell. Front ends without it (classic Notebook, VS Code, a saved copy) show the "
        "panel as it was here:"
        f"<details><summary>the panel at this cell</summary>{static}</details></div>")
