"""Did-you-mean for everything typed into a magic line: flags, parameters, config keys.

Names (factories, handlers, targets, instances, nodes) already come with the closest match
(``errors.choices``). This module does the same for the rest of a line, so a typo is a
one-line ``UsageError`` instead of a silent default:

- **flags**: ``parse_args(magic, line)`` is ``parse_argstring`` that names an unknown flag,
  suggests the closest and lists the valid ones (``%lab --recrod`` → "Did you mean --record?
  Valid flags: --inline, --record, --sidecar, --tenant, --text"). Tab completion reads the
  same parsers (``flags_of``, ``flag_choices``), so the two cannot drift.
- **parameters**: ``check_params`` refuses a key the handler's params model does not declare
  (``tabel`` → ``table``), unless the model keeps extras (``extra="allow"``) or the key
  routes the call (``target``, ``bus.ROUTING_PARAMS``). Only the lab's ``%invoke`` checks:
  the bus leaves undeclared keys to the model, as pydantic and the original signalpy-kernel
  do, so code written for it that passes extras keeps working (``kernel/bus.py``).
- **config keys**: ``near_keys`` finds set keys one typo away from an unset one.
"""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.utils.process import arg_split
from pydantic import AliasChoices, BaseModel

from ..errors import choices
from ..kernel.bus import ROUTING_PARAMS

__all__ = [
    "check_params",
    "flag_choices",
    "flags_of",
    "near_keys",
    "params_model",
    "parse_args",
]

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
    Valid flags: --inline, --record, --sidecar, --tenant, --text.")``; a magic without flags or
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


# -- parameters -------------------------------------------------------------------------------


def _accepted(model: type[BaseModel]) -> set[str]:
    """Field names and their string aliases: every key validation may read."""
    names = set()
    for field_name, info in model.model_fields.items():
        names.add(field_name)
        for alias in (info.alias, info.validation_alias):
            if isinstance(alias, str):
                names.add(alias)
            elif isinstance(alias, AliasChoices):
                names.update(a for a in alias.choices if isinstance(a, str))
    return names


def params_model(kernel: Any, handler: str, params: Mapping[str, Any]
                 ) -> type[BaseModel] | None:
    """The params model of the handler a call reaches, when this kernel knows it.

    A local handler's own; a process-isolated instance's from its class (discovered here);
    ``None`` for another kernel's handler, which validates where it lives.
    """
    found = kernel.bus.resolve(handler, params)
    if found is not None:
        return found[0].model  # type: ignore[no-any-return]
    target = params.get("target")
    for route in kernel.routes():
        if route.via != "local" and (route.handler == handler or
                                     (route.route == handler and route.target == target)):
            runnable = route.handler.rpartition(".")[2]
            specs = {r.name: r for r in kernel.instance(route.instance).meta.runnables}
            return specs[runnable].params if runnable in specs else None
    return None


def check_params(where: str, model: type[BaseModel] | None, params: Mapping[str, Any]) -> None:
    """Refuse keys ``model`` does not declare, with the closest; routing keys always pass.

    A model that keeps extras (``model_config = ConfigDict(extra="allow")``, such as a quota
    that hands them on) takes anything; ``model=None`` (a remote handler) is not checked.
    """
    if model is None or model.model_config.get("extra") == "allow":
        return
    valid = _accepted(model) | ROUTING_PARAMS
    unknown = [key for key in params if key not in valid]
    if not unknown:
        return
    if len(unknown) == 1:
        raise UsageError(f"{where}: unknown parameter {unknown[0]!r}. "
                         f"{choices(unknown[0], valid, noun='parameters')}")
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    listed = ", ".join(repr(v) for v in sorted(valid))
    raise UsageError(f"{where}: unknown parameters {', '.join(hints)}. "
                     f"Valid parameters: {listed}.")


# -- config keys ------------------------------------------------------------------------------


def _one_typo(given: str, known: str) -> bool:
    """A typo, not another name: close spelling (or two letters swapped), and not a different
    number (``t10`` and ``t100`` are two tenants; ``db1`` and ``db2`` two databases)."""
    if re.sub(r"\d", "", given) == re.sub(r"\d", "", known):
        return False
    if difflib.SequenceMatcher(None, given, known).ratio() >= 0.8:
        return True
    diff = [i for i, (a, b) in enumerate(zip(given, known)) if a != b]
    return len(given) == len(known) and len(diff) == 2 and diff[1] == diff[0] + 1 and \
        given[diff[0]] == known[diff[1]] and given[diff[1]] == known[diff[0]]


def near_keys(key: str, keys: Iterable[str], *, limit: int = 3) -> list[str]:
    """Keys (or key prefixes) of ``keys`` that ``key`` looks like a typo of.

    Near means: as many dotted parts, all equal but one, and that one a typo of the other
    (``tenants.acme.db_ur`` → ``tenants.acme.db_url``; ``tenants.acm.pool`` →
    ``tenants.acme.pool``). ``tenants.initech.db_url`` is not near ``tenants.acme.db_url``:
    an unset key that is a different name is just unset.

    >>> near_keys("tenants.acme.db_ur", ["tenants.acme.db_url", "tenants.globex.db_url"])
    ['tenants.acme.db_url']
    """
    parts = key.split(".")
    candidates: set[str] = set()
    for known in keys:
        known_parts = known.split(".")
        for depth in range(1, len(known_parts) + 1):  # the key and every prefix of it
            candidates.add(".".join(known_parts[:depth]))
    near = []
    for candidate in sorted(candidates):
        other = candidate.split(".")
        if len(other) != len(parts):
            continue
        differ = [(a, b) for a, b in zip(parts, other) if a != b]
        if len(differ) == 1 and _one_typo(*differ[0]):
            near.append(candidate)
    near.sort(key=lambda c: -difflib.SequenceMatcher(None, key, c).ratio())
    return near[:limit]
