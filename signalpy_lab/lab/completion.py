"""Tab completion for the lab's magics: factories, instances, handlers, config keys, targets.

Installed as one IPython custom matcher (removed again on unload). IPython splits the token
at ``=``, so after ``target=`` the matcher offers the targets of the handler being called.
Flags, and the values of a flag with fixed choices, come from each magic's own parser: the
one ``suggest.parse_args`` checks a line against, so completion and checking cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..kernel.metadata import meta_of
from .magics import CONFIG_SUBCOMMANDS, LabMagics
from .session import LabSession
from .suggest import flag_choices, flags_of

__all__ = ["candidates", "install_completers"]


def _magic(name: str) -> Any:
    """The method behind line magic ``%name`` (its ``parser`` lists its flags), or None."""
    method = LabMagics.magics["line"].get(name)  # type: ignore[attr-defined]
    return getattr(LabMagics, method) if isinstance(method, str) else None


def _targets(session: LabSession, handler: str | None = None) -> list[str]:
    kernel = session.kernel
    if handler is not None and handler in kernel.bus.routes():
        return kernel.bus.targets(handler)
    return sorted({i.target for i in kernel.instances() if i.target})


def _config_keys(session: LabSession) -> list[str]:
    if not session.booted:
        return []
    keys = session.config.keys()
    prefixes = {k.rsplit(".", i)[0] for k in keys for i in range(1, k.count(".") + 1)}
    return sorted({*keys, *prefixes})


def candidates(session: LabSession, line: str, user_ns: dict[str, Any] | None = None
               ) -> list[str]:
    """Completions for the last word of ``line`` (the text up to the cursor)."""
    stripped = line.lstrip()
    if not stripped.startswith("%"):
        return []
    words = stripped.split()
    magic = words[0].lstrip("%")
    finished = words[1:] if line.endswith(" ") else words[1:-1]
    current = "" if line.endswith(" ") else (words[-1] if len(words) > 1 else None)
    if current is None:
        return []
    kernel = session.kernel
    position = len(finished)
    options: Iterable[str] = ()
    method = _magic(magic)
    previous = finished[-1] if finished else ""
    if previous == "--tenant":
        options = _targets(session)
    elif previous == "--instance":
        options = [i.name for i in kernel.instances()]
    elif method is not None and previous.startswith("-") and flag_choices(method, previous):
        options = flag_choices(method, previous)
    elif current.startswith("-"):
        options = flags_of(method) if method is not None else []
    elif "=" in current and magic in ("invoke", "instantiate"):
        key, _, _value = current.partition("=")
        if key == "target":
            handler = finished[0] if magic == "invoke" and finished else None
            options = [f"target={t}" for t in _targets(session, handler)]
    elif magic == "invoke":
        options = kernel.bus.names() if position == 0 else ["target="]
    elif magic == "instantiate":
        options = [f.name for f in kernel.factories()] if position == 0 else ["target="]
    elif magic in ("remove", "restart") and position == 0:
        options = [i.name for i in kernel.instances()]
    elif magic == "why" and position == 0:
        options = [n.label for n in kernel.graph().nodes if n.kind != "signal"]
    elif magic == "config":
        if position == 0:
            options = CONFIG_SUBCOMMANDS
        elif position == 1 and finished[0] in CONFIG_SUBCOMMANDS:
            options = _config_keys(session)
    elif magic == "discover" and user_ns is not None:
        options = [name for name, value in user_ns.items()
                   if isinstance(value, type) and meta_of(value) is not None]
    return sorted(o for o in set(options) if o.startswith(current))


def install_completers(ip: Any, session: LabSession) -> Callable[[], None]:
    """Add the lab's matcher to IPython's completer; returns the function that removes it."""
    completer = ip.Completer

    def matcher(text: str) -> list[str]:
        line = getattr(completer, "text_until_cursor", "") or ""
        found = candidates(session, line, ip.user_ns)
        # IPython replaces only the current token (split at '='), so drop what precedes it.
        return [c.rpartition("=")[2] if "=" in c and "=" not in text else c for c in found]

    completer.custom_matchers.append(matcher)

    def uninstall() -> None:
        if matcher in completer.custom_matchers:
            completer.custom_matchers.remove(matcher)

    return uninstall
