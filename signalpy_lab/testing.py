"""Helpers for testing lab sessions (and your own components) without a browser.

    from signalpy_lab.testing import LabShell

    with LabShell() as lab:
        lab.run("%instantiate tenant-db tenant-db-acme target=acme")
        assert lab.run("%invoke tenant-db.query target=acme")["tenant"] == "acme"
        lab.usage_error("%invoke tenant-db.query target=nobody")  # the one-line error text
        error, shown = lab.failure('%%as tenant-db-acme\nrt.config.get("tenants.globex.x")')
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

__all__ = ["CellError", "LabShell"]


class CellError(AssertionError):
    """A cell raised where the test expected it to succeed."""


class LabShell:
    """An IPython InteractiveShell with ``signalpy_lab`` loaded; cells raise on errors."""

    def __init__(self, *, load: bool = True) -> None:
        from IPython.core.interactiveshell import InteractiveShell

        self.shell = InteractiveShell.instance()
        self._load = load
        self.output = ""

    def __enter__(self) -> LabShell:
        self.shell.reset(new_session=False)  # the shell is a process-wide singleton
        if self._load:
            self.run("%load_ext signalpy_lab")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._load:
            self.run("%unload_ext signalpy_lab")

    @property
    def user_ns(self) -> dict[str, Any]:
        return self.shell.user_ns  # type: ignore[no-any-return]

    def _execute(self, cell: str) -> Any:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            result = self.shell.run_cell(cell, store_history=True)
        self.output = stdout.getvalue() + stderr.getvalue()
        return result

    def execute(self, cell: str) -> Any:
        """Run ``cell``; return IPython's ``ExecutionResult`` (its ``execution_count`` is the
        prompt number). Raise ``CellError`` on error."""
        result = self._execute(cell)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise CellError(f"cell failed: {type(error).__name__}: {error}\n{self.output}") \
                from error
        return result

    def run(self, cell: str) -> Any:
        """Run ``cell``; return the value of its last expression. Raise ``CellError`` on error."""
        result = self._execute(cell)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            raise CellError(f"cell failed: {type(error).__name__}: {error}\n{self.output}") \
                from error
        return result.result

    def usage_error(self, cell: str) -> str:
        """Run ``cell`` expecting IPython's one-line ``UsageError``; return its message."""
        from IPython.core.error import UsageError

        result = self._execute(cell)
        error = result.error_before_exec or result.error_in_exec
        if not isinstance(error, UsageError):
            raise CellError(f"expected a UsageError from {cell!r}, got {error!r}\n{self.output}")
        return str(error)

    def failure(self, cell: str) -> tuple[BaseException, str]:
        """Run ``cell`` expecting it to fail; return the error and what IPython showed for it
        (the one line of a refusal, or a traceback)."""
        result = self._execute(cell)
        error = result.error_before_exec or result.error_in_exec
        if error is None:
            raise CellError(f"expected {cell!r} to fail; it returned {result.result!r}")
        render = getattr(error, "_render_traceback_", None)
        if callable(render):
            import re

            shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(render()))  # no colours
        else:
            shown = self.output
        return error, shown
