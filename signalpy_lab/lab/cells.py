"""Notebook cells as the lab sees them: their prompt numbers, the line that made a change,
and the one picture each cell leaves.

* **Prompt numbers.** An epoch made by a cell is titled ``In [9]: ...`` with the number shown
  beside the cell. IPython 9 advances ``execution_count`` *before* ``pre_run_cell`` (IPython 8
  after it), so the number is worked out per version and confirmed at ``post_run_cell``,
  whose result carries the cell's own ``execution_count`` (a wrong first guess is corrected
  there, and the guess is not made again).
* **The line that wrote.** Magics label their writes with ``caused_by``; plain Python in a
  cell (``config.set(...)``, ``await kernel.hot_add(...)``) has no label, so the tracker is
  the kernel's *origin resolver* while a cell runs: it walks the writing thread's stack to
  the cell's own frame (``<module>`` code run in the notebook's namespace) and names the
  statement on the line running there, ``config.set("tenants.acme.db_url", ...)`` rather
  than the cell's first line. Outside cells it returns None at once.
* **One picture per cell.** At ``post_run_cell`` the model closes the cell (``cell_finished``)
  and, if the cell did something reactive, the tracker shows that epoch, once, under the cell:
  a small static picture in Jupyter (``inline.epoch_picture``), one summary line in a
  terminal when turned on (``%lab --inline on``). Several magics in a cell give one picture;
  a cell that changed nothing shows none. Like matplotlib's inline figures, it is displayed
  from the cell's own hook, so it is saved with that cell's outputs.
* **Failures the cell caused, said once.** What the kernel logs while a cell runs (an effect
  that raised, an instance that failed to activate) is collected and shown at the end of
  the cell as notes (``⚠ effect 'pricing-acme.publish' failed: ZeroDivisionError: ...``),
  not as stray red stderr from whatever thread it happened on: a deliberate failure in a
  lesson looks like an answer, not a crash. Outside cells, records go where logging sends
  them.
"""

from __future__ import annotations

import ast
import html
import linecache
import logging
import sys
import threading
from typing import Any

from ..kernel.events import set_origin_resolver
from .session import LabSession

__all__ = ["CellTracker", "statement_at"]

#: The longest label a statement gets (the epoch's full commands keep the rest).
STATEMENT_WIDTH = 120


def statement_at(source: str, line: int) -> str | None:
    """The innermost statement of ``source`` running on ``line`` (1-based), on one line.

    >>> statement_at("for t in ts:\\n    config.set(f'tenants.{t}.x', 1)\\n", 2)
    "config.set(f'tenants.{t}.x', 1)"
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a transformed cell is valid Python; anything else: the raw line
        lines = source.splitlines()
        return lines[line - 1].strip() if 0 < line <= len(lines) else None
    best: ast.stmt | None = None
    for node in ast.walk(tree):
        if not isinstance(node, ast.stmt) or not (
                node.lineno <= line <= (node.end_lineno or line)):
            continue
        if best is None or (node.lineno, -(node.end_lineno or 0)) >= (
                best.lineno, -(best.end_lineno or 0)):
            best = node  # the innermost statement running on that line
    if best is None:
        return None
    if isinstance(best, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith,
                         ast.Try, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        text = source.splitlines()[best.lineno - 1].strip()  # its header, not its body
    else:
        text = " ".join((ast.get_source_segment(source, best) or "").split())
    if len(text) > STATEMENT_WIDTH:
        text = text[: STATEMENT_WIDTH - 1] + "…"
    return text or None


class _CellLog(logging.Handler):
    """Collects the lab's and kernel's warnings while a cell runs (any thread)."""

    def __init__(self, tracker: CellTracker) -> None:
        super().__init__(logging.WARNING)
        self.tracker = tracker
        self.records: list[str] = []
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if not self.tracker._running:
            # Outside cells: where logging would send it without us (the root's handlers
            # get it by propagation; with none, logging's last resort, stderr).
            if not logging.getLogger().handlers and logging.lastResort is not None:
                logging.lastResort.handle(record)
            return
        with self._lock_records:
            self.records.append(record.getMessage())

    def drain(self) -> list[str]:
        with self._lock_records:
            records, self.records = self.records, []
        return records


class CellTracker:
    """The lab's ``pre_run_cell`` / ``post_run_cell`` hooks and its origin resolver."""

    def __init__(self, shell: Any, session: LabSession) -> None:
        self.shell = shell
        self.session = session
        self._running = False
        self._pre_count: int | None = None
        # Whether this IPython advances execution_count before pre_run_cell (IPython 9).
        self._advanced: bool | None = None
        self._sources: dict[str, str] = {}  # cell filename -> source, for this cell
        self._log = _CellLog(self)
        self._logger = logging.getLogger("signalpy_lab")

    # -- hooks ---------------------------------------------------------------------------

    def install(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        self.shell.events.register("post_run_cell", self.post_run_cell)
        self._logger.addHandler(self._log)
        set_origin_resolver(self.resolve)

    def uninstall(self) -> None:
        for name, hook in (("pre_run_cell", self.pre_run_cell),
                           ("post_run_cell", self.post_run_cell)):
            try:
                self.shell.events.unregister(name, hook)
            except ValueError:
                pass
        self._logger.removeHandler(self._log)
        set_origin_resolver(None)

    def prompt_number(self, info: Any) -> int | None:
        """The number IPython shows beside the cell that is about to run."""
        count = getattr(self.shell, "execution_count", None)
        if not isinstance(count, int):
            return None
        if self._advanced is None:
            import IPython

            self._advanced = IPython.version_info[0] >= 9
        self._pre_count = count
        stored = getattr(info, "store_history", True)
        return count - 1 if self._advanced and stored else count

    def pre_run_cell(self, info: Any) -> None:
        raw = getattr(info, "raw_cell", "") or ""
        first = next((line.strip() for line in raw.splitlines() if line.strip()), "")
        self._sources.clear()
        self._running = True
        self.session.model.cell_started(first[:80], number=self.prompt_number(info))

    def post_run_cell(self, result: Any) -> None:
        self._running = False
        self._show_notes(self._log.drain())
        number = getattr(result, "execution_count", None)
        if isinstance(number, int) and self._pre_count is not None:
            # Learn this IPython's order once: 9 had already advanced, 8 had not.
            info = getattr(result, "info", None)
            if getattr(info, "store_history", True):
                self._advanced = self._pre_count == number + 1
        record = self.session.model.cell_finished(
            number=number if isinstance(number, int) else None)
        if record is None:
            return
        if any(i.isolation != "inline" for i in self.session.kernel.instances()):
            self.session.settle_relays()  # a worker's echo of this cell's writes
            record = self.session.model.epoch_record(record.number)
        from .inline import show_cell_epoch

        show_cell_epoch(self.shell, self.session, record)

    def _show_notes(self, notes: list[str]) -> None:
        """The warnings the cell caused, once, at its end (see the module docstring)."""
        if not notes:
            return
        from .inline import has_widget_frontend

        if has_widget_frontend(self.shell):
            from IPython.display import HTML, display

            lines = "".join(f"<div>⚠ {html.escape(n)}</div>" for n in notes)
            display(HTML('<div class="signalpy-lab signalpy-notes" style="font-size:12px;'
                         'border-left:3px solid #d97706;padding:2px 8px;color:#78350f;'
                         f'background:#fffbeb">{lines}</div>'))
        else:
            print("\n".join(f"⚠ {n}" for n in notes))

    # -- the origin resolver ----------------------------------------------------------

    def resolve(self) -> str | None:
        """The statement of the running cell on the writing thread's stack, if any."""
        if not self._running:
            return None
        user_ns = self.shell.user_ns
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "<module>" and frame.f_globals is user_ns:
                return self._statement(frame.f_code.co_filename, frame.f_lineno)
            frame = frame.f_back
        return None

    def _statement(self, filename: str, line: int | None) -> str | None:
        if line is None:
            return None
        source = self._sources.get(filename)
        if source is None:
            source = self._sources[filename] = "".join(linecache.getlines(filename))
        return statement_at(source, line) if source else None
