"""Magic lines as a person types them: a trailing ``# comment``, and a misspelled magic.

IPython hands a line magic everything after its name, comment included, and answers a name
that does not exist with a bare "not found". This module fixes both for the lab, and leaves
everything that is not the lab's untouched.

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

**Misspelled magics.** ``MagicLines``, in ``shell.input_transformers_post``, sees the code
IPython made of a cell, tokenized (a string that merely contains such text is never
touched). Where a line magic does not exist it calls ``line_magic_or_suggestion`` instead,
which runs the magic if it exists by the time the line runs (a cell may ``%load_ext`` what it
uses next) and otherwise raises a ``UsageError`` naming the closest magics, ours or
IPython's. A cell whose ``%%magic`` does not exist is refused before anything in it runs, as
is a ``%%magic`` below a cell's first line, where IPython cannot run it. A name with no close
match keeps IPython's own message.

``%load_ext signalpy_lab  # ...`` itself is IPython's magic, run before the lab exists: there
the comment is still part of the module name (the README puts that comment on the line above).
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from collections.abc import Callable
from functools import wraps
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import MAGIC_NO_VAR_EXPAND_ATTR

__all__ = [
    "MagicLines",
    "closest_magics",
    "line_magic_or_suggestion",
    "strip_comment",
    "without_comments",
]

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


def closest_magics(shell: Any, given: str) -> list[str]:
    """The magics (``%name`` / ``%%name``) ``given`` (written the same way) may mean."""
    magics = shell.magics_manager.magics
    names = [f"%{n}" for n in magics["line"]] + [f"%%{n}" for n in magics["cell"]]
    names += [f"%{n}" for n in shell.magics_manager.lazy_magics]
    return difflib.get_close_matches(given, sorted(set(names)), n=3, cutoff=0.7)


def _did_you_mean(close: list[str]) -> str:
    return f"Did you mean {' or '.join(close)}? (%lsmagic lists every magic.)"


def line_magic_or_suggestion(shell: Any, name: str, line: str) -> Any:
    """Run ``%name line`` if that magic exists now; else name the closest ones.

    What a line magic that did not exist when its cell was read becomes; with no close match
    IPython's own "not found" (with its hint about a cell magic of that name) is raised.
    """
    if shell.find_line_magic(name) is None and shell.find_cell_magic(name) is None:
        close = closest_magics(shell, f"%{name}")
        if close:
            raise UsageError(f"Line magic function `%{name}` not found. {_did_you_mean(close)}")
    # _stack_depth=2: {var} in the line expands in the cell's frame, one call further up.
    return shell.run_line_magic(name, line, _stack_depth=2)


def _literal(token: tokenize.TokenInfo) -> str | None:
    if token.type != tokenize.STRING:
        return None
    try:
        value = ast.literal_eval(token.string)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


_CALL = ("get_ipython", "(", ")", ".")  # then run_line_magic / run_cell_magic, "(", 'name', ","


class MagicLines:
    """The input transformer that names the closest magic for one that does not exist."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def _exists(self, kind: str, name: str) -> bool:
        manager = self.shell.magics_manager
        # Membership, not find_*_magic: looking a lazy magic up would load it here.
        return name in manager.magics[kind] or name in manager.lazy_magics

    def __call__(self, lines: list[str]) -> list[str]:
        text = "".join(lines)
        if "run_line_magic(" not in text and "run_cell_magic(" not in text:
            return lines
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (tokenize.TokenError, SyntaxError):  # not Python: let compile() say why
            return lines
        rows = io.StringIO(text).readlines()  # the rows tokenize counted
        edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
        for i, token in enumerate(tokens):
            if token.string != "get_ipython" or [t.string for t in tokens[i:i + 4]] != \
                    list(_CALL) or len(tokens) < i + 8:
                continue
            method, paren, name_token, comma = tokens[i + 4:i + 8]
            kind = {"run_line_magic": "line", "run_cell_magic": "cell"}.get(method.string)
            name = _literal(name_token)
            if kind is None or paren.string != "(" or comma.string != "," or name is None \
                    or self._exists(kind, name):
                continue
            if kind == "line":
                self._refuse_misplaced_cell_magic(name)
                edits.append((token.start, paren.end, "__import__('signalpy_lab.lab.lines', "
                              "fromlist=['_']).line_magic_or_suggestion(get_ipython(), "))
            elif token.start == (1, 0):  # IPython's %%magic: the cell's first line
                close = closest_magics(self.shell, f"%%{name}")
                if close:
                    raise UsageError(f"Cell magic `%%{name}` not found. {_did_you_mean(close)}")
        for (row, col), (end_row, end_col), new in reversed(edits):
            if row != end_row:  # IPython writes each call on one line; anything else is not it
                continue
            rows[row - 1] = rows[row - 1][:col] + new + rows[row - 1][end_col:]
        return rows if edits else lines

    def _refuse_misplaced_cell_magic(self, name: str) -> None:
        """``%%config`` below the first line of a cell reaches us as line magic ``%config``."""
        if name.startswith("%") and self._exists("cell", name[1:]):
            raise UsageError(f"%%{name[1:]} is a cell magic: it must be the first line of its "
                             f"cell, with its body below it. Start a new cell with it.")
