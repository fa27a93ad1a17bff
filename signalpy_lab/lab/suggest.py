"""Did-you-mean for everything typed into a magic line.

Names (factories, handlers, targets, instances, nodes) already come with the closest match
(``errors.choices``). This module does the same for the rest of a line, so a typo is a
one-line ``UsageError`` instead of a silent default:

- **flags**: ``parse_args(magic, line)`` is ``parse_argstring`` that names an unknown flag,
  suggests the closest and lists the valid ones (``%lab --bogus`` → "Valid flags: --inline,
  --record, --tenant, --text"). Tab completion reads the same parsers (``flags_of``,
  ``flag_choices``), so the two cannot drift.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

from ..errors import choices

__all__ = ["flag_choices", "flags_of", "parse_args"]

_FLAG = re.compile(r"^--?[A-Za-z]")


# -- flags ------------------------------------------------------------------------------------


def _actions(magic: Callable[..., Any]) -> list[argparse.Action]:
    parser = getattr(magic, "parser", None)
    return list(parser._actions) if parser is not None else []  # argparse keeps no public list


def flags_of(magic: Callable[..., Any]) -> list[str]:
    """The flags a ``magic_arguments`` magic accepts, sorted: ``['--inline', '--record', ...]``."""
    return sorted(o for action in _actions(magic) for o in action.option_strings)


def flag_choices(magic: Callable[..., Any], flag: str) -> list[str]:
    """The values ``flag`` accepts when it has a fixed set (``--inline``: on, off, auto)."""
    for action in _actions(magic):
        if flag in action.option_strings and action.choices:
            return [str(c) for c in action.choices]
    return []


def _usage(magic: Callable[..., Any]) -> str:
    # IPython's formatter writes usage as an RST block ("::\n\n  %lab [--text] ..."): one line.
    usage: str = magic.parser.format_usage()  # type: ignore[attr-defined]
    return " ".join(usage.replace("::", "").split())


def parse_args(magic: Callable[..., Any], line: str) -> argparse.Namespace:
    """``parse_argstring(magic, line)``, where a mistake names the magic and what is valid.

    ``parse_args(self.lab, "--bogus")`` raises ``UsageError("%lab: unknown flag '--bogus'.
    Valid flags: --inline, --record, --tenant, --text.")``; a magic without flags or
    positionals (``%boot``) refuses any argument.
    """
    parser = magic.parser  # type: ignore[attr-defined]
    name = f"%{parser.prog}"
    try:
        argv = arg_split(line, strict=True)  # the split parse_argstring uses
    except ValueError as exc:
        raise UsageError(f"{name}: could not parse {line!r}: {exc} (unbalanced quotes?)") \
            from None
    if argv and not _actions(magic):
        raise UsageError(f"{name} takes no arguments, got {line.strip()!r}.")
    try:
        namespace, extras = parser.parse_known_args(argv)
    except UsageError as exc:  # argparse's own message: a missing value, a bad choice
        raise UsageError(f"{name}: {exc}. Usage: {_usage(magic)}") from None
    unknown = [word.partition("=")[0] for word in extras if _FLAG.match(word)]
    if unknown:
        flags = flags_of(magic)
        valid = choices(unknown[0], flags, noun="flags", quoted=False) if flags else \
            f"{name} takes no flags."
        raise UsageError(f"{name}: unknown flag {unknown[0]!r}. {valid}")
    if extras:
        raise UsageError(f"{name}: unexpected {' '.join(extras)!r}. Usage: {_usage(magic)}")
    return namespace
