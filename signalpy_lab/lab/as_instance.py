"""``%%as INSTANCE``: run a cell as an instance's own code, to try the boundary by hand.

    %%as tenant-db-acme
    rt.config.get("tenants.globex.db_url")      # refused, exactly as in acme's own code

    %%as db-client
    rt.creds.rotate("api_key", "key-v3", target="prod")   # its effect re-runs
    self.dsn()                                             # its own computeds, by name

The body runs on the kernel's loop (top-level ``await`` works) in a namespace of its own,
holding only what the instance's code holds: ``rt`` (its sealed Runtime), ``self`` (its
component object, so its own ``@computed`` values and attributes) and Python's builtins,
without what IPython adds to them (``get_ipython``, ``display``). The notebook's variables,
``kernel`` among them, are *not* there, and the lab's session is reachable from nothing in the
package's public API. The last line's value is the cell's result; writes are labelled
``%%as INSTANCE`` in the event log and on the epoch.

**In process: a scope for learning, not a sandbox.** In-process ``%%as`` runs in the
notebook's own Python process, like an in-process component: code in the cell can still
``import __main__`` (the notebook's namespace) or ``IPython`` (``IPython.get_ipython()``, the
shell), import the kernel's private modules, walk ``gc``, and so on (the README's security
model lists these paths). The boundary it shows is the handle API.

**In a worker: the operating system's boundary.** For a process-isolated instance
(``%instantiate ... --process``) the cell runs *inside its worker*, with the ``rt`` and
``self`` it has there, under the worker's sandbox (``remote/sandbox.py``): opening another
tenant's folder, ``/proc/<host>/environ`` or a port other than NATS's, or signalling the
host, is refused by the kernel of the operating system, and the cell shows that refusal.
The cell travels to the worker as a control message only the host may send
(``spl.v1.control.<node>``, ``wire.py``); its prints come back and are printed here, its
last value comes back as itself when it is JSON (a dict, a list, a string...) and as its
repr otherwise (``WorkerValue``); the notebook's objects never reach the worker.

How errors show (both paths, ``kernel/as_code.py``):

* a **refusal** (one of the kernel's own errors, ``TenantIsolationError`` and the rest, or the
  operating system's ``PermissionError``: what the cell tried is not allowed) is one line
  naming the error, ``TenantIsolationError: Instance 'tenant-db-acme' (target 'acme') may
  not read ...`` or ``PermissionError: [Errno 13] Permission denied: '/proc/1/environ'``, no
  traceback: it is the answer, not a crash;
* a **bug** in the cell (a ``NameError`` on its line 3) shows a traceback of the cell's own
  frames, with the cell's line numbers and source lines (line 1 is the ``%%as`` line), and
  nothing of the lab's machinery.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

from ..kernel.as_code import (
    cell_frames,
    compile_cell,
    execute_cell,
    is_refusal,
    namespace_for,
    new_filename,
    one_line,
    remember_source,
)
from ..kernel.events import caused_by

__all__ = ["WorkerValue", "compile_as", "run_as"]

#: The compiler both paths use (``kernel/as_code.py``), under the name this module had.
compile_as = compile_cell


class WorkerValue:
    """A cell's result from inside a worker that is not JSON: shown as the worker's repr."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown_as_answer(error: BaseException, shell: Any, filename: str) -> BaseException:
    """``error`` with how IPython should show it (``_render_traceback_``): one line for a
    refusal, the cell's own frames for a bug."""
    if is_refusal(error):
        line = one_line(error)
        error._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
        return error.with_traceback(None)
    tb = cell_frames(error.__traceback__, filename) or error.__traceback__

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
    inst = session.kernel.instance(name)  # UnknownInstanceError names the valid ones
    if inst.isolation == "process":
        return _run_in_worker(session, name, cell, header)
    component = session.kernel.component(name)
    filename = new_filename(name)
    remember_source(filename, f"{header}\n{cell}" if header else cell)
    body, tail = compile_cell(cell, filename, first_line=2 if header else 1)
    namespace = namespace_for(name, component)

    async def as_instance() -> Any:
        with caused_by(f"%%as {name}"):
            return await execute_cell(body, tail, namespace)

    try:
        return session.run(as_instance())
    except Exception as error:
        raise _shown_as_answer(error, shell, filename) from None


def _run_in_worker(session: Any, name: str, cell: str, header: str) -> Any:
    """Run ``cell`` inside ``name``'s worker (``ProcessHost.run_cell``): its prints are
    printed here, its value returned, its error raised as the same type with the worker's
    one line (a refusal) or traceback (a bug), numbered as the notebook shows the cell."""
    from ..remote import wire

    host = session.kernel.isolation_host("process")
    result = session.run(host.run_cell(name, cell, first_line=2 if header else 1,
                                       header=header))
    if result.stdout:
        print(result.stdout, end="" if result.stdout.endswith("\n") else "\n")
    if result.stderr:
        print(result.stderr, end="" if result.stderr.endswith("\n") else "\n",
              file=sys.stderr)
    if result.ok:
        return result.value if result.is_json else WorkerValue(result.repr or "None")
    error = wire.remote_error({"type": result.error_type, "message": result.message})
    lines = [result.error] if result.refusal else list(result.traceback)
    error._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
    raise error
