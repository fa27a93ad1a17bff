"""Magic lines as a person types them: a trailing ``# comment`` is a comment.

IPython hands a line magic everything after its name, comment included. This module applies
Python's rule to the lab's magics, and leaves everything that is not the lab's untouched.

**The comment rule** (``strip_comment``), as in Python and the shell: a ``#`` that begins a
word (the first character, or one after whitespace) outside quotes starts a comment that
runs to the end of the line. A ``#`` glued to a word (``a#b``, ``postgres://db/x#frag``) or
inside quotes (``"a # b"``, ``'#1'``) is part of the value; a quote that never closes
(``it's``) is an ordinary character. So ``%config set KEY VALUE  # why`` stores ``VALUE``,
and a value with `` #`` in it is written in quotes.

``without_comments(magics)`` applies it to every magic of the lab: line magics, and the first
line of ``%%config`` and ``%%as`` (a cell's body is YAML or Python, with comments of their
own). ``%config`` / ``%reset`` lose a comment only where the line is ours
(``LabMagics.handles``); IPython's own uses get their line as IPython would. The comment goes
*before* ``{var}`` expansion, as Python drops comments before it evaluates anything: a
variable whose value holds `` #`` is never cut. It is done in the magic, not in an input
transformer, so it also holds in the cell that runs ``%load_ext signalpy_lab`` (read before
the lab existed) and for ``get_ipython().run_line_magic(...)`` from code.

``%load_ext signalpy_lab  # ...`` itself is IPython's magic, run before the lab exists: there
the comment is still part of the module name (the README puts that comment on the line above).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR

__all__ = ["strip_comment", "without_comments"]

_QUOTES = "\"'"


def _closing(line: str, start: int) -> int | None:
    """Index of the quote closing the one at ``start`` (a backslash escapes), or None."""
    quote, i = line[start], start + 1
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == quote:
            return i
        i += 1
    return None


def strip_comment(line: str) -> str:
    """``line`` without its trailing comment (see the module doc for the rule).

    >>> strip_comment("set tenants.acme.db_url postgres://db/x#frag  # moved")
    'set tenants.acme.db_url postgres://db/x#frag'
    >>> strip_comment('set motd "we are # 1"')
    'set motd "we are # 1"'
    """
    i = 0
    while i < len(line):
        char = line[i]
        if char in _QUOTES:
            end = _closing(line, i)
            if end is not None:
                i = end + 1
                continue
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
        i += 1
    return line


def _uncommented(magics: Any, kind: str, name: str, fn: Callable[..., Any]
                 ) -> Callable[..., Any]:
    expands = not getattr(fn, MAGIC_NO_VAR_EXPAND_ATTR, False)

    @wraps(fn)
    def magic(line: str, *cell: str) -> Any:
        stripped = strip_comment(line)
        if stripped != line and magics.handles(kind, name, stripped):
            line = stripped
        if expands:
            # What IPython would have done before calling us. Frames from var_expand: itself,
            # this wrapper, IPython's run_line_magic / run_cell_magic, then the cell's code.
            line = magics.shell.var_expand(line, 2)
        return fn(line, *cell)

    setattr(magic, MAGIC_NO_VAR_EXPAND_ATTR, True)  # IPython hands us the line as typed
    return magic


def without_comments(magics: Any) -> None:
    """Make every magic of ``magics`` (a ``Magics`` instance, before it is registered) drop
    a trailing comment from its line, before ``{var}`` expansion (see the module doc).

    ``magics.handles(kind, name, line)`` says whether a line is the magics' own (``%config
    InlineBackend...`` is IPython's, and keeps its line).
    """
    for kind, table in magics.magics.items():
        for name, fn in table.items():
            table[name] = _uncommented(magics, kind, name, fn)
