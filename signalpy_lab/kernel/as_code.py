"""Running a cell of Python as an instance's own code: the part shared by both ``%%as`` paths.

The lab's ``%%as NAME`` runs a cell in the notebook's process for an in-process instance
(``lab/as_instance.py``) and inside the worker for a process-isolated one
(``remote/worker.py``, asked by ``ProcessHost.run_cell``). Both use these rules, so the two
behave alike:

* the namespace holds only ``rt`` (the instance's sealed Runtime), ``self`` (its component
  object) and Python's builtins without what IPython adds (``get_ipython``, ``display``);
* top-level ``await`` works, and the last line's value (if it is an expression) is the
  cell's result;
* line numbers are the notebook's (``first_line``: 2 when line 1 is the ``%%as`` line), and a
  traceback keeps only the cell's own frames (``cell_frames``);
* a **refusal** is an error that *is* the answer (``is_refusal``): one of the kernel's own
  errors (``TenantIsolationError`` and the rest) or the operating system's
  ``PermissionError`` (``EACCES``/``EPERM``: what a sandboxed worker's reach gets); it is
  shown as one line naming the error. Anything else is a bug in the cell, shown as its
  traceback.

No IPython, no NATS: the kernel layer imports nothing of the lab or the transports.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import linecache
from types import TracebackType
from typing import Any

from ..errors import SignalpyLabError

__all__ = ["cell_builtins", "cell_frames", "compile_cell", "execute_cell", "is_refusal",
           "namespace_for", "new_filename", "one_line", "remember_source"]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_runs = itertools.count(1)
#: What IPython puts into ``builtins`` for notebook code; a %%as cell is the instance's code.
_IPYTHON_BUILTINS = frozenset({"get_ipython", "display", "__IPYTHON__"})


def cell_builtins() -> dict[str, Any]:
    """Python's builtins as a %%as cell sees them: without IPython's additions."""
    return {k: v for k, v in vars(builtins).items() if k not in _IPYTHON_BUILTINS}


def namespace_for(name: str, component: Any) -> dict[str, Any]:
    """The cell's globals: ``rt`` and ``self`` of instance ``name``, and the builtins."""
    return {"__builtins__": cell_builtins(), "__name__": f"as:{name}", "rt": component.rt,
            "self": component}


def new_filename(name: str) -> str:
    """A fresh pseudo-filename for one run of a cell as ``name`` (tracebacks name it)."""
    return f"<%%as {name} #{next(_runs)}>"


def remember_source(filename: str, source: str) -> None:
    """Let tracebacks quote the cell's lines (``linecache``), as they do for files."""
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True),
                                 filename)


def compile_cell(cell: str, filename: str, *, first_line: int = 1) -> tuple[Any, Any]:
    """``(body, last expression or None)`` code objects for ``cell`` (top-level await
    allowed), numbered from ``first_line``."""
    tree = ast.parse(cell, filename, "exec")
    if first_line != 1:
        ast.increment_lineno(tree, first_line - 1)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    body = compile(tree, filename, "exec", flags=_FLAGS)
    tail = compile(last, filename, "eval", flags=_FLAGS) if last is not None else None
    return body, tail


async def execute_cell(body: Any, tail: Any, namespace: dict[str, Any]) -> Any:
    """Run a compiled cell in ``namespace``; the last expression's value, or None."""
    result = eval(body, namespace)
    if inspect.iscoroutine(result):
        await result
    if tail is None:
        return None
    value = eval(tail, namespace)
    return await value if inspect.iscoroutine(value) else value


def cell_frames(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """The traceback from the cell's first frame on (the machinery's frames before it
    dropped)."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def is_refusal(error: BaseException) -> bool:
    """Whether ``error`` is a refusal (the answer, one line), not a bug in the cell."""
    return isinstance(error, SignalpyLabError | PermissionError)


def one_line(error: BaseException) -> str:
    """``TypeName: message``, first line only: how a refusal is shown."""
    return f"{type(error).__name__}: {error}".splitlines()[0]
