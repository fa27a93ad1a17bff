"""``%%as INSTANCE``: run a cell as an instance's own code, to try the boundary by hand.

    %%as tenant-db-acme
    rt.config.get("tenants.globex.db_url")      # refused, exactly as in acme's own code

    %%as db-client
    rt.creds.rotate("api_key", "key-v3", target="prod")   # its effect re-runs
    self.dsn()                                             # its own computeds, by name

The body runs on the kernel's loop (top-level ``await`` works) in a namespace of its own,
holding only what the instance's code holds: ``rt`` (its sealed Runtime), ``self`` (its
component object, so its own ``@computed`` values and attributes) and the builtins. The
notebook's variables, ``kernel`` among them, are *not* there. The last line's value is the
cell's result; writes are labelled ``%%as INSTANCE`` in the event log and on the epoch.

**A scope for learning, not a sandbox.** In-process ``%%as`` runs in the notebook's own Python
process, like an in-process component: code in the cell can still import the kernel's private
modules, walk ``gc``, reach ``__main__`` or IPython's shell, and so on (the README's security
model lists these paths). The boundary it shows is the handle API. For code you do not trust,
host the instance in a worker process (``%instantiate ... --process``).

How errors show:

* a **refusal** (one of the kernel's own errors, ``TenantIsolationError`` and the rest: what
  the cell tried is not allowed) is one line naming the error, ``TenantIsolationError:
  Instance 'tenant-db-acme' (target 'acme') may not read ...``, no traceback: it is the answer,
  not a crash;
* a **bug** in the cell (a ``NameError`` on its line 3) shows a traceback of the cell's own
  frames, with the cell's line numbers and source lines (line 1 is the ``%%as`` line), and
  nothing of the lab's machinery.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import itertools
import linecache
import traceback
from types import TracebackType
from typing import Any

from ..errors import SignalpyLabError
from ..kernel.events import caused_by

__all__ = ["compile_as", "run_as"]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
_runs = itertools.count(1)


def compile_as(cell: str, filename: str, *, first_line: int = 1) -> tuple[Any, Any]:
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


async def _execute(body: Any, tail: Any, namespace: dict[str, Any]) -> Any:
    result = eval(body, namespace)
    if inspect.iscoroutine(result):
        await result
    if tail is None:
        return None
    value = eval(tail, namespace)
    return await value if inspect.iscoroutine(value) else value


def _cell_frames(tb: TracebackType | None, filename: str) -> TracebackType | None:
    """The traceback from the cell's first frame on (the lab's frames before it dropped)."""
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return tb


def _shown_as_answer(error: BaseException, shell: Any, filename: str) -> BaseException:
    """``error`` with how IPython should show it (``_render_traceback_``): one line for a
    refusal, the cell's own frames for a bug."""
    if isinstance(error, SignalpyLabError):
        line = f"{type(error).__name__}: {error}".splitlines()[0]
        error._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
        return error.with_traceback(None)
    tb = _cell_frames(error.__traceback__, filename) or error.__traceback__

    def render() -> list[str]:
        formatter = getattr(shell, "InteractiveTB", None)
        if formatter is not None:
            try:
                return list(formatter.structured_traceback(type(error), error, tb))
            except Exception:  # an IPython without this signature: plain text below
                pass
        return "".join(traceback.format_exception(type(error), error, tb)).splitlines()

    error._render_traceback_ = render  # type: ignore[attr-defined]
    return error.with_traceback(tb)


def run_as(session: Any, name: str, cell: str, *, shell: Any = None, header: str = "") -> Any:
    """Run ``cell`` as instance ``name`` on the kernel's loop; return its last value.

    ``header`` is the cell's first line (``%%as NAME``): with it, tracebacks number the lines
    as the notebook shows them and quote them from the cell.
    """
    component = session.kernel.component(name)  # UnknownInstanceError names the valid ones
    filename = f"<%%as {name} #{next(_runs)}>"
    source = f"{header}\n{cell}" if header else cell
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True),
                                 filename)
    body, tail = compile_as(cell, filename, first_line=2 if header else 1)
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": f"as:{name}",
                                 "rt": component.rt, "self": component}

    async def as_instance() -> Any:
        with caused_by(f"%%as {name}"):
            return await _execute(body, tail, namespace)

    try:
        return session.run(as_instance())
    except Exception as error:
        raise _shown_as_answer(error, shell, filename) from None
