"""``%%as INSTANCE``: run a cell as an instance's own code, to try the boundary by hand.

    %%as tenant-db-acme
    rt.config.get("tenants.globex.db_url")      # refused, exactly as in acme's own code

    %%as db-client
    rt.creds.rotate("api_key", "key-v3", target="prod")   # its effect re-runs
    self.dsn()                                             # its own computeds, by name

The body runs on the kernel's loop (top-level ``await`` works) in a namespace of its own,
holding only what the instance's code holds: ``rt`` (its sealed Runtime), ``self`` (its
component object, so its own ``@computed`` values and attributes) and the builtins. The
notebook's variables, ``kernel`` among them, are *not* there, so nothing in the cell reaches
past the instance's scoping through the lab. (Like component code, a cell could still import
the kernel's private modules: the boundary is the handle API; see the README's security
model.) The last line's value is the cell's result; writes are labelled ``%%as INSTANCE``
in the event log and on the epoch.
"""

from __future__ import annotations

import ast
import builtins
import inspect
from typing import Any

from ..kernel.events import caused_by

__all__ = ["compile_as", "run_as"]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


def compile_as(cell: str, filename: str) -> tuple[Any, Any]:
    """``(body, last expression or None)`` code objects for ``cell`` (top-level await allowed)."""
    tree = ast.parse(cell, filename, "exec")
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


def run_as(session: Any, name: str, cell: str) -> Any:
    """Run ``cell`` as instance ``name`` on the kernel's loop; return its last value."""
    component = session.kernel.component(name)  # UnknownInstanceError names the valid ones
    body, tail = compile_as(cell, f"<%%as {name}>")
    namespace: dict[str, Any] = {"__builtins__": builtins, "__name__": f"as:{name}",
                                 "rt": component.rt, "self": component}

    async def as_instance() -> Any:
        with caused_by(f"%%as {name}"):
            return await _execute(body, tail, namespace)

    return session.run(as_instance())
