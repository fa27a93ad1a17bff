"""A real JupyterLab in a real headless Chromium, driven the way a user drives it.

Three pieces, used by the browser tests (``conftest.py``) and the screenshot script alike:

* ``JupyterLab``: a server on 127.0.0.1, on a free port, with token auth, in a temporary
  directory with its own ``HOME``, ``JUPYTER_*`` and ``IPYTHONDIR``, so nothing of the
  developer's own Jupyter setup (settings, workspaces, kernels, the news pop-up's answer)
  leaks in or is written to.
* ``launch_chromium``: Debian's ``/usr/bin/chromium`` through the Python ``playwright``
  package (``executable_path``; Playwright never downloads a browser here), headless, with a
  fresh user data dir. A browser that cannot start raises ``BrowserUnavailable`` saying why
  and how to fix it.
* ``LabPage``: what a user does in the notebook UI (open a notebook, select a cell, use the
  Run menu, add a cell with the keyboard and type in it, Shift+Enter, wait for the kernel,
  click a step of the epoch timeline or "live"), plus reads of the lab widgets' DOM through
  the hooks their ES modules document (``signalpy_lab/lab/static/graph.js``: ``data-node``,
  ``data-status``, ``.signalpy-epoch``; ``bus.js``), and the page's console errors, kept so a
  failure can show them.

The server, browser and page fixtures (``conftest.py``) are shared by the tests beside
``test_jupyterlab.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "INSTALL_HINT",
    "NOTEBOOKS",
    "RUN_TIMEOUT",
    "SIDECAR_GRAPHS",
    "BrowserUnavailable",
    "JupyterLab",
    "LabPage",
    "box_inside",
    "launch_chromium",
    "write_kernelspec",
]

#: Debian's Chromium (package ``chromium``); the only browser these tests use.
CHROMIUM = Path("/usr/bin/chromium")
#: How to get it, as ``.ci/run`` does.
INSTALL_HINT = "apt-get update && apt-get install -y chromium  (as root; Debian's package)"
#: As root, without a sandbox; and no connection of Chromium's own (updates, sync, safe
#: browsing): on a closed network they are refused, many at a time, and slow every start.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

#: JupyterLab's page config: no "receive official Jupyter news?" pop-up over the notebook.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}
#: Bounded waits, in seconds.
SERVER_START_TIMEOUT = 60
NOTEBOOK_OPEN_TIMEOUT = 60
RUN_TIMEOUT = 120


class BrowserUnavailable(RuntimeError):
    """Chromium is missing or would not start; the message says why and what to do."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_kernelspec(data_dir: Path, name: str = "signalpy-lab-browser") -> str:
    """A kernelspec running *this* interpreter (the venv's), like tests/conftest.py's."""
    spec = data_dir / "kernels" / name
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "signalpy_lab", "language": "python",
    }))
    return name


@dataclass
class JupyterLab:
    """A JupyterLab server of its own in ``root`` (use as a context manager).

    ``kernel_name`` is a kernelspec that ``env``'s ``JUPYTER_PATH`` (or this server's data
    dir) provides; notebooks copied in with ``add_notebook`` are set to use it, so JupyterLab
    starts that kernel without asking.
    """

    root: Path
    kernel_name: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int = 0
    token: str = ""
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.config_dir = self.root / "jupyter-config"
        self.data_dir = self.root / "jupyter-data"
        self.runtime_dir = self.root / "jupyter-runtime"
        self.ipython_dir = self.root / "ipython"
        self.work = self.root / "work"
        self.log_path = self.root / "jupyterlab.log"

    def __enter__(self) -> JupyterLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server and wait until its REST API answers with our token."""
        for path in (self.home, self.config_dir, self.data_dir, self.runtime_dir,
                     self.ipython_dir, self.work):
            path.mkdir(parents=True, exist_ok=True)
        labconfig = self.config_dir / "labconfig"
        labconfig.mkdir(exist_ok=True)
        (labconfig / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        if self.kernel_name is None:
            self.kernel_name = write_kernelspec(self.data_dir)
        self.port = free_port()
        self.token = os.urandom(16).hex()
        env = {**self.env, "HOME": str(self.home), "JUPYTER_CONFIG_DIR": str(self.config_dir),
               "JUPYTER_DATA_DIR": str(self.data_dir), "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
               "IPYTHONDIR": str(self.ipython_dir), "JUPYTER_PLATFORM_DIRS": "1",
               "PYTHONUNBUFFERED": "1"}
        env.pop("JUPYTER_TOKEN", None)
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.work}", "--LabApp.extension_manager=readonly",
            "--LabApp.news_url=",  # nothing fetched from jupyter.org either
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=self.work, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode} before it "
                                   f"served:\n{self.log_tail()}")
            if self._answers():
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on 127.0.0.1:{self.port} within "
                           f"{SERVER_START_TIMEOUT} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        request = urllib.request.Request(f"{self.base_url}/api/status",
                                         headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, notebook: str, workspace: str = "default") -> str:
        """The lab URL that opens ``notebook`` (a path under ``work``), logged in by token.

        Each page gets a workspace of its own, reset, so two pages never restore each
        other's layout.
        """
        return (f"{self.base_url}/lab/workspaces/{workspace}/tree/{notebook}"
                f"?reset&token={self.token}")

    def add_notebook(self, name: str, source: Path | None = None) -> str:
        """Copy a notebook in, outputs cleared, set to this server's kernel; its path."""
        notebook = json.loads((source or NOTEBOOKS / name).read_text())
        for cell in notebook["cells"]:
            if cell["cell_type"] == "code":
                cell["outputs"], cell["execution_count"] = [], None
        notebook["metadata"]["kernelspec"] = {"name": self.kernel_name,
                                              "display_name": "signalpy_lab",
                                              "language": "python"}
        notebook["metadata"].pop("widgets", None)
        (self.work / name).write_text(json.dumps(notebook, indent=1))
        return name

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@contextmanager
def launch_chromium(viewport: dict[str, int] | None = None) -> Iterator[Any]:
    """A Playwright browser context in Debian's headless Chromium with a fresh profile.

    Raises ``BrowserUnavailable`` with the reason (no Chromium, no playwright, a failed
    start with Chromium's own words) and the fix.
    """
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"{CHROMIUM} is missing; install Debian's Chromium: "
                                 f"{INSTALL_HINT}")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as error:
        raise BrowserUnavailable(f"the playwright package is missing ({error}); install the "
                                 "test extra: .venv/bin/pip install -e '.[test]'") from error
    profile = tempfile.mkdtemp(prefix="signalpy-chromium-")
    try:
        with sync_playwright() as playwright:
            try:
                context = playwright.chromium.launch_persistent_context(
                    profile, executable_path=str(CHROMIUM), headless=True,
                    args=list(CHROMIUM_ARGS), viewport=viewport or {"width": 1280,
                                                                      "height": 800},
                    timeout=60_000)
            except Error as error:
                raise BrowserUnavailable(
                    f"{CHROMIUM} did not start under Playwright: {error.message.strip()}\n"
                    f"(reinstall it with: {INSTALL_HINT})") from None
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def box_inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    """Whether box ``inner`` lies inside ``outer`` (client pixels, ``slack`` px of rounding)."""
    return (inner["left"] >= outer["left"] - slack and inner["right"] <= outer["right"] + slack
            and inner["top"] >= outer["top"] - slack
            and inner["bottom"] <= outer["bottom"] + slack)


# ---- the notebook UI, as a user uses it ------------------------------------------------------

#: Commands of the Run menu (the lumino menu items carry them as data-command).
RUN_ALL = "runmenu:run-all"
RUN_ALL_ABOVE = "notebook:run-all-above"
RUN_ALL_BELOW = "notebook:run-all-below"

#: Whether the notebook's kernel is idle: the notebook toolbar's execution indicator says so
#: or, where a narrow toolbar folded it into its "..." menu (the sidecar splits the main
#: area), the status bar's kernel status does ("<kernel> | Idle").
_IDLE = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
  if (indicator) return indicator.dataset.status === 'idle';
  const bar = document.querySelector('#jp-main-statusbar');
  // the bar runs its items' texts together ("signalpy_lab | IdleUploading…"): no \b
  return !!bar && /\|\s*Idle/.test(bar.textContent);
}"""

_RUN_OVER = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  if (!(""" + _IDLE + """)()) return false;
  // The run is over when nothing is queued ([*]) any more: every cell ran, or one raised
  // and JupyterLab dropped the rest of the queue (the caller tells which).
  return ![...panel.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .some(p => p.textContent.includes('*'));
}"""

_PROMPTS = """([first, last]) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  return cells.map((c, i) => [i, c]).slice(first, last === null ? undefined : last + 1)
    .filter(([, c]) => c.classList.contains('jp-CodeCell'))
    .map(([i, c]) => [i, (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '']);
}"""

_GRAPH = """(sel) => {
  const widgets = [...document.querySelectorAll(sel)];
  return widgets.map(w => {
    const canvas = w.querySelector('.signalpy-canvas');
    const svg = canvas && canvas.querySelector('svg');
    const box = canvas ? canvas.getBoundingClientRect() : null;
    return {
      svg: !!svg, zoom: canvas ? canvas.dataset.zoom : null,
      fitted: canvas ? canvas.dataset.fitted : null,
      canvas: box && {left: box.left, top: box.top, right: box.right, bottom: box.bottom},
      // Graphviz draws a cluster (one per instance) as a sibling group, not a parent of
      // its nodes: a node belongs to the cluster whose box holds it.
      clusters: svg ? [...svg.querySelectorAll('g.cluster')].map(g => {
        const r = g.getBoundingClientRect();
        return {label: [...g.querySelectorAll('text')].map(t => t.textContent).join('\\n'),
                box: {left: r.left, top: r.top, right: r.right, bottom: r.bottom}};
      }) : [],
      // graph.js's hooks: data-id (Graphviz's id), data-node (the node's label,
      // tenant-db-globex.db_url), data-status (the shown epoch's status) and, if the view
      // sets them, data-instance / data-tenant. The legend's sample nodes have none.
      nodes: svg ? [...svg.querySelectorAll('g.node[data-id]')].map(g => {
        const r = g.getBoundingClientRect();
        return {id: g.dataset.id, node: g.dataset.node, status: g.dataset.status || '',
                instance: g.dataset.instance || null, tenant: g.dataset.tenant || null,
                cls: g.getAttribute('class'),
                label: [...g.querySelectorAll('text')].map(t => t.textContent).join('\\n'),
                box: {left: r.left, top: r.top, right: r.right, bottom: r.bottom}};
      }) : [],
    };
  });
}"""

_BUS = """() => [...document.querySelectorAll('.signalpy-bus')].map(table => ({
  rows: [...table.querySelectorAll('tr.signalpy-bus-row')].map(tr => ({
    target: tr.dataset.target, instance: tr.dataset.instance, runnable: tr.dataset.runnable,
    handler: tr.dataset.handler, text: tr.textContent})),
  summary: (table.querySelector('.signalpy-bus-summary') || {}).textContent || '',
}))"""

#: A prompt of a cell that ran: [12]:
_RAN = re.compile(r"\[\d+\]")
_ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|^\s*\w*(Error|Exception)\b",
                         re.MULTILINE)

#: The graph widgets of the panel ``%lab --sidecar`` opened beside the notebook.
SIDECAR_GRAPHS = ".jupyterlab-sidecar .signalpy-graph-widget"

#: Each code cell of the notebook shown: its index, its prompt number (None before it ran),
#: its source's first line, and the epoch pictures in its outputs (data-epoch, data-cell,
#: title, and each SVG text's font size as rendered, in px: its font-size in the SVG's user
#: units times the SVG's on-screen scale).
_CELL_PICTURES = r"""() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  return [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map((c, i) => [i, c])
    .filter(([, c]) => c.classList.contains('jp-CodeCell')).map(([i, c]) => {
      const prompt = (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '';
      const number = prompt.match(/\[(\d+)\]/);
      const first = [...c.querySelectorAll('.cm-line')].map(l => l.textContent)[0] || '';
      const pictures = [...c.querySelectorAll('.signalpy-inline-epoch')].map(p => {
        const svg = p.querySelector('svg');
        const scale = svg && svg.getScreenCTM() ? svg.getScreenCTM().a : 0;
        return {
          epoch: Number(p.dataset.epoch), cell: p.dataset.cell ? Number(p.dataset.cell) : null,
          title: p.getAttribute('title'),
          nodes: Object.fromEntries([...p.querySelectorAll('g.node[data-node]')].map(
            g => [g.dataset.node, g.dataset.status])),
          fonts: svg ? [...svg.querySelectorAll('g.node text')].map(
            t => parseFloat(t.getAttribute('font-size') || '14') * scale) : [],
        };
      });
      return {index: i, number: number ? Number(number[1]) : null, first, pictures};
    });
}"""

#: Text ipywidgets' manager puts where a widget could not render.
WIDGET_FAILURES = ("Error displaying widget", "Failed to load model class",
                   "Error rendering view", "Could not render")


@dataclass
class LabPage:
    """One JupyterLab tab in Chromium, and what the user sees in it."""

    page: Any
    lab: JupyterLab
    console_errors: list[str] = field(default_factory=list)
    #: Which graph widgets ``index`` counts: every one on the page, or (``SIDECAR_GRAPHS``)
    #: those of the panel that ``%lab --sidecar`` opened beside the notebook.
    graphs: str = ".signalpy-graph-widget"

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(f"console.error: {message.text}")

    def diagnostics(self) -> str:
        """The page's console errors and the server log's tail, for a failure message."""
        errors = "\n".join(self.console_errors) or "(none)"
        return (f"\n--- browser console errors ---\n{errors}\n"
                f"--- JupyterLab log (tail) ---\n{self.lab.log_tail(25)}")

    # -- opening and running ---------------------------------------------------------------

    def open_notebook(self, path: str) -> None:
        """Open ``path`` in the lab; wait until every cell is on the page and the kernel idle.

        JupyterLab attaches cells to the DOM a few at a time (its windowing), so cell
        indexes mean something only once all of them are there.
        """
        count = len(json.loads((self.lab.work / path).read_text())["cells"])
        self.workspace = f"w{id(self):x}"
        self.page.goto(self.lab.url(path, self.workspace), timeout=NOTEBOOK_OPEN_TIMEOUT * 1000)
        self.page.wait_for_function(
            """(n) => document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').length === n""",
            arg=count, timeout=NOTEBOOK_OPEN_TIMEOUT * 1000)
        self.wait_kernel_idle(NOTEBOOK_OPEN_TIMEOUT)

    def wait_kernel_idle(self, timeout: float) -> None:
        self.page.wait_for_function(_IDLE, timeout=timeout * 1000)

    def cells(self) -> Any:
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def select_cell(self, index: int) -> None:
        """Click cell ``index``'s prompt: it becomes the active cell, in command mode."""
        cell = self.cells().nth(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputPrompt").click()
        self.page.wait_for_function(
            """(i) => { const cells = document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
               return cells[i] && cells[i].classList.contains('jp-mod-active'); }""",
            arg=index, timeout=10_000)

    def first_code_cell(self) -> int:
        return self.page.evaluate(
            """() => [...document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell')]
               .findIndex(c => c.classList.contains('jp-CodeCell'))""")

    def run_menu(self, command: str) -> None:
        """Open the Run menu of the menu bar and click the item for ``command``."""
        self.page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        self.page.locator(f'.lm-Menu-item[data-command="{command}"]').click()

    def wait_cells_executed(self, first: int = 0, last: int | None = None,
                            timeout: float = RUN_TIMEOUT) -> None:
        """Wait until the kernel is idle and every code cell in [first, last] has run.

        Fails early, with the traceback, when a cell raised; on timeout, with the prompts.
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        which = f"cells {first}..{'end' if last is None else last}"
        try:
            self.page.wait_for_function(_RUN_OVER, timeout=timeout * 1000)
        except PlaywrightTimeout:
            raise AssertionError(f"{which} did not all run within {timeout:g} s; prompts: "
                                 f"{self._prompts(first, last)}{self.diagnostics()}") from None
        not_run = [(i, p.strip()) for i, p in self._prompts(first, last) if not _RAN.search(p)]
        if not_run:
            errors = self.error_outputs()
            raise AssertionError(
                f"{which}: the run stopped; cells not run (index, prompt): {not_run}\n"
                f"{errors[0] if errors else '(no traceback on the page)'}{self.diagnostics()}")

    def _prompts(self, first: int, last: int | None) -> list[list[Any]]:
        """[index, prompt text] of each code cell in [first, last]."""
        return self.page.evaluate(_PROMPTS, [first, last])

    def run(self, command: str, first: int, last: int | None,
            timeout: float = RUN_TIMEOUT) -> None:
        """Use Run menu ``command`` on the selected cell; wait for cells [first, last] to run.

        Waits first for the run to begin (a prompt in the range changes), so a menu command
        that starts the kernel's work a moment later is never taken for a finished run.
        """
        before = self._prompts(first, last)
        self.run_menu(command)
        self.page.wait_for_function(
            f"(before) => JSON.stringify(({_PROMPTS})({json.dumps([first, last])}))"
            " !== JSON.stringify(before)", arg=before, timeout=30_000)
        self.wait_cells_executed(first, last, timeout=timeout)

    def run_all(self, timeout: float = RUN_TIMEOUT) -> None:
        """Run → Run All Cells from a code cell (the first cell may be markdown)."""
        self.select_cell(self.first_code_cell())
        self.run(RUN_ALL, 0, None, timeout)

    def run_through(self, index: int, timeout: float = RUN_TIMEOUT) -> None:
        """Run cells 0..index: select cell index + 1, Run → Run All Above Selected Cell."""
        self.select_cell(index + 1)
        self.run(RUN_ALL_ABOVE, 0, index, timeout)

    def run_from(self, index: int, timeout: float = RUN_TIMEOUT) -> None:
        """Run cell index and all below it: Run → Run Selected Cell and All Below."""
        self.select_cell(index)
        self.run(RUN_ALL_BELOW, index, None, timeout)

    def append_code_cell(self, source: str) -> int:
        """Add a code cell at the end as a user does, type ``source`` in it; its index.

        Escape (command mode), select the last cell, ``b`` (insert below), Enter (edit
        mode), then type it, Enter between lines. The editor may indent or close brackets as
        it goes, so the text is checked afterwards.
        """
        count = self.cells().count()
        self.page.keyboard.press("Escape")
        self.select_cell(count - 1)
        self.page.keyboard.press("b")
        self.page.wait_for_function(
            """(n) => { const cells = document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
               return cells.length === n + 1 && cells[n].classList.contains('jp-mod-active')
                 && cells[n].classList.contains('jp-CodeCell'); }""",
            arg=count, timeout=10_000)
        self.page.keyboard.press("Enter")
        editor = self.cells().nth(count).locator(".cm-content")
        editor.wait_for(state="visible", timeout=10_000)
        self.page.wait_for_function(
            """(n) => { const cells = document.querySelectorAll(
                 '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell');
               return cells[n].contains(document.activeElement); }""",
            arg=count, timeout=10_000)
        for number, line in enumerate(source.split("\n")):
            if number:
                self.page.keyboard.press("Enter")
            self.page.keyboard.type(line)
        typed = self.cell_source(count)
        assert typed == source, (f"the new cell holds {typed!r}, not what was typed "
                                 f"({source!r}){self.diagnostics()}")
        return count

    def cell_source(self, index: int) -> str:
        """The text in cell ``index``'s editor, as the user sees it (one line per row)."""
        return "\n".join(self.cells().nth(index).locator(".cm-line").all_text_contents())

    def run_cell_in_place(self, index: int, timeout: float = 30) -> None:
        """Shift+Enter in the selected cell ``index``; wait until it ran and the kernel idles.

        On the last cell JupyterLab then adds an empty cell below, as it does for a user.
        """
        self.page.keyboard.press("Shift+Enter")
        self.page.wait_for_function(
            f"""() => {{ const p = ({_PROMPTS})([{index}, {index}]);
                 return p.length === 1 && /\\[\\d+\\]/.test(p[0][1]); }}""",
            timeout=timeout * 1000)
        self.wait_kernel_idle(timeout)

    def outputs(self, index: int) -> list[dict[str, str]]:
        """Cell ``index``'s outputs: each one's mime type (data-mime-type) and text."""
        return self.cells().nth(index).locator(".jp-OutputArea-output").evaluate_all(
            "els => els.map(e => ({mime: e.dataset.mimeType || '', "
            "text: e.textContent.slice(0, 3000)}))")

    def error_outputs(self) -> list[str]:
        """Errors shown in the notebook: a traceback, or a one-line ``UsageError: ...``.

        JupyterLab renders an error output with the stderr renderer, so it is told from
        other stderr text by its content.
        """
        texts = self.page.eval_on_selector_all(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
            "els => els.map(e => e.textContent.slice(0, 3000))")
        return [t for t in texts if _ERROR_TEXT.search(t)]

    def widget_failures(self) -> list[str]:
        """What the widget manager wrote where a widget failed to render."""
        text = self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").inner_text()
        return [line for line in text.splitlines() if any(f in line for f in WIDGET_FAILURES)]

    # -- the lab widgets --------------------------------------------------------------------

    def graph(self, index: int = 0) -> dict[str, Any]:
        """Graph widget ``index``: has an svg, zoom state, the canvas box, each node's box."""
        graphs = self.page.evaluate(_GRAPH, self.graphs)
        assert len(graphs) > index, f"no graph widget #{index} on the page{self.diagnostics()}"
        return graphs[index]

    def graph_by_instance(self, index: int = 0) -> dict[str, list[dict[str, Any]]]:
        """Graph ``index``'s nodes grouped by the instance cluster drawn around them.

        The key is the cluster label's first line (the instance name: ``tenant-db-acme``,
        ``config``); nodes outside any cluster are under ``""``. This checks the drawing
        (Graphviz draws a cluster as a sibling of its nodes, so "around" means its box holds
        the node's); a node's ``data-instance``, where the view sets one, must agree.
        """
        graph = self.graph(index)
        groups: dict[str, list[dict[str, Any]]] = {}
        for node in graph["nodes"]:
            owner = next((c["label"].split("\n")[0] for c in graph["clusters"]
                          if box_inside(node["box"], c["box"])), "")
            assert node["instance"] in (None, owner), (
                f"{node['node']} has data-instance={node['instance']!r} but is drawn in "
                f"cluster {owner!r}{self.diagnostics()}")
            groups.setdefault(owner, []).append(node)
        return groups

    def node_status(self, index: int = 0) -> dict[str, str]:
        """Graph ``index``'s nodes: label (``data-node``) -> status (``data-status``)."""
        return {n["node"]: n["status"] for n in self.graph(index)["nodes"]}

    # -- the epoch timeline (graph.js: .signalpy-epochs) -----------------------------------

    def epoch_steps(self, index: int = 0) -> list[dict[str, Any]]:
        """Graph ``index``'s timeline: each step's number, text, title and state, then live.

        ``number`` is None for the live button; ``selected`` is the step shown (.selected),
        ``pressed`` its aria-pressed, ``current`` the newest epoch (.current).
        """
        return self.page.evaluate(
            """([sel, i]) => { const w = document.querySelectorAll(sel)[i];
                 if (!w) return [];
                 return [...w.querySelectorAll('.signalpy-epoch, .signalpy-epoch-live')].map(b => ({
                   number: b.dataset.epoch === undefined ? null : Number(b.dataset.epoch),
                   text: b.textContent, title: b.title,
                   selected: b.classList.contains('selected'),
                   current: b.classList.contains('current'),
                   cell: b.dataset.cell === undefined ? null : Number(b.dataset.cell),
                   head: (b.querySelector('.head') || {}).textContent || '',
                   command: (b.querySelector('.text') || {}).textContent || '',
                   pressed: b.getAttribute('aria-pressed') === 'true'})); }""",
            [self.graphs, index])

    def _widget(self, index: int) -> Any:
        return self.page.locator(self.graphs).nth(index)

    def select_epoch(self, containing: str, index: int = 0, timeout: float = 10) -> int:
        """Click the timeline step whose text contains ``containing``; wait until it is shown.

        Returns the step's epoch number. Shown means: the step is .selected and
        aria-pressed, and the caption names that epoch (the kernel sent its statuses).
        """
        step = self._widget(index).locator(".signalpy-epoch", has_text=containing)
        assert step.count() == 1, (f"{step.count()} timeline steps contain {containing!r}; "
                                   f"steps: {[s['text'] for s in self.epoch_steps(index)]}"
                                   f"{self.diagnostics()}")
        number = int(step.get_attribute("data-epoch"))
        step.scroll_into_view_if_needed()
        step.click()
        self.wait_epoch_shown(number, index, timeout)
        return number

    def go_live(self, index: int = 0, timeout: float = 10) -> None:
        """Click the timeline's "live" button; wait until the newest epoch is shown."""
        self._widget(index).locator(".signalpy-epoch-live").click()
        self.wait_epoch_shown(None, index, timeout)

    def wait_epoch_shown(self, number: int | None, index: int = 0, timeout: float = 10) -> None:
        """Wait until graph ``index`` shows epoch ``number`` (None: live, the newest)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(
                """([sel, i, n]) => {
                     const w = document.querySelectorAll(sel)[i];
                     if (!w) return false;
                     const caption = w.querySelector('.signalpy-caption').textContent;
                     const head = caption.match(/^epoch (\\d+)\\b/);  // "epoch 2 'cell [10]: ...'"
                     const live = w.querySelector('.signalpy-epoch-live');
                     const current = w.querySelector('.signalpy-epoch.current');
                     if (n === null)
                       return live.classList.contains('selected') && !!current
                         && current.classList.contains('selected')
                         && !!head && head[1] === current.dataset.epoch
                         && !caption.includes('(past epoch');
                     const step = w.querySelector(`.signalpy-epoch[data-epoch="${n}"]`);
                     return !!step && step.classList.contains('selected')
                       && step.getAttribute('aria-pressed') === 'true'
                       && !live.classList.contains('selected')
                       && !!head && head[1] === String(n);
                   }""", arg=[self.graphs, index, number], timeout=timeout * 1000)
        except PlaywrightTimeout:
            caption = self._widget(index).locator(".signalpy-caption").text_content()
            raise AssertionError(
                f"graph #{index} did not show epoch {'live' if number is None else number} "
                f"within {timeout:g} s; caption {caption!r}; steps "
                f"{self.epoch_steps(index)}{self.diagnostics()}") from None

    def cell_pictures(self) -> list[dict[str, Any]]:
        """Every code cell's prompt number, first line and epoch pictures (``_CELL_PICTURES``).

        JupyterLab renders only the cells near the viewport in full (its windowing), so each
        cell is scrolled into view once before it is read."""
        count = self.cells().count()
        for index in range(count):
            self.cells().nth(index).scroll_into_view_if_needed()
        return self.page.evaluate(_CELL_PICTURES)

    def bus(self, index: int = 0) -> dict[str, Any]:
        """Bus table ``index``: its rows' data-* hooks and the summary line."""
        tables = self.page.evaluate(_BUS)
        assert len(tables) > index, f"no bus table #{index} on the page{self.diagnostics()}"
        return tables[index]

    def wait_for_graph_labels(self, labels: list[str], absent: Sequence[str] = (),
                              timeout: float = 30) -> None:
        """Wait until graph 0's SVG shows every label and none of ``absent``."""
        self.page.wait_for_function(
            """([sel, want, absent]) => {
                 const w = document.querySelector(sel);
                 const svg = w && w.querySelector('.signalpy-canvas svg');
                 if (!svg) return false;
                 const text = [...svg.querySelectorAll('g.node text')].map(t => t.textContent);
                 const has = l => text.some(t => t.includes(l));
                 return want.every(has) && !absent.some(has);
               }""", arg=[self.graphs, labels, list(absent)], timeout=timeout * 1000)

    def wait_for_bus_targets(self, targets: list[str], timeout: float = 30) -> None:
        """Wait until bus table 0 has rows for exactly ``targets`` (data-target)."""
        self.page.wait_for_function(
            """(want) => {
                 const rows = document.querySelectorAll('.signalpy-bus tr.signalpy-bus-row');
                 const got = new Set([...rows].map(r => r.dataset.target).filter(Boolean));
                 return want.length === got.size && want.every(t => got.has(t));
               }""", arg=targets, timeout=timeout * 1000)

    def fit_graph(self, index: int = 0) -> None:
        """Scroll graph ``index`` into view and press its "fit" button."""
        widget = self.page.locator(self.graphs).nth(index)
        widget.scroll_into_view_if_needed()
        widget.locator(".signalpy-zoom-fit").click()
        self.page.wait_for_function(
            """([sel, i]) => { const w = document.querySelectorAll(sel)[i];
               const c = w && w.querySelector('.signalpy-canvas');
               return c && c.dataset.fitted === 'true'; }""", arg=[self.graphs, index],
            timeout=10_000)

    def hide_left_sidebar(self) -> None:
        """Click the left sidebar's open tab (the file browser) to fold it: a wider notebook."""
        if self.page.evaluate(
                "() => document.querySelector('#jp-left-stack').classList"
                ".contains('lm-mod-hidden')"):
            return
        self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").click()
        self.page.wait_for_function(
            "() => document.querySelector('#jp-left-stack').classList.contains('lm-mod-hidden')",
            timeout=10_000)

    def panel(self, index: int = 0) -> Any:
        """The output area holding graph ``index`` (the %lab panel: graph, bus, log)."""
        return self.page.locator(".jp-OutputArea-output",
                                 has=self.page.locator(self.graphs)).nth(index)
