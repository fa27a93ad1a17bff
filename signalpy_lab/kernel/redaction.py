"""Masking secrets wherever the kernel turns a value into text for people to read.

Secret values must never appear in the lab's graph, tables, ``%why``, event log or exports.
Every such text is made by ``events.short_repr`` (events, handler results, graph values) or
passes through ``redact`` here, so masking happens in one place, at the observability
boundary, and never in the values components and host code receive.

Two rules, because a secret can show up in two ways:

* **A secret node** (a config signal under ``apps.``, the credentials tree) and every node
  whose dependencies reach one, at any depth: its value is never rendered; ``MASK`` stands
  in for it (and for the message of its error, whose type is kept). The providers mark such
  signals with ``SecretSignal``; the engine marks their readers, and theirs, when a
  dependency link is made, for good (a stale ``dsn`` built from a rotated-out password holds
  exactly the value that must not show). The graph still shows the dependency and the key,
  never the value.
* **A secret value inside other text** (a computed that builds a DSN from a password, a
  handler that returns its key): every string a ``SecretSource`` reports is replaced by
  ``MASK`` wherever it occurs, the way CI systems mask secrets in build logs. Strings shorter
  than ``MIN_SECRET_LENGTH`` are not searched for (masking every ``"1"`` would make every
  table unreadable); such secrets are still masked where their own node is shown.

**Rotated-out secrets stay masked.** A value replaced by a rotation does not stop being a
secret: a stale computed, a copy kept in a plain key or a handler's last result may still hold
it. A source reports what it replaces (``secrets_changed(source, retired)``), and the redactor
keeps searching for it for as long as the source lives (a kernel's config: the kernel's life,
not longer, so one kernel's old secrets never mask another's text): every current secret plus
the source's last ``RETIRED_SECRETS`` (4,096) rotated-out ones, up to ``RETIRED_CHARACTERS``
(256 Ki) characters in all, oldest forgotten first. Memory is not what bounds it (under a
megabyte); the time to compile the pattern is, which grows with the characters remembered
(about 50 ms per 20,000) and is paid once per change, never per text.

**Cost.** The secrets are compiled into one regular expression shaped as a trie (common
prefixes factored out), so masking a text costs about the same with ten secrets or ten
thousand: a flat alternation tries every secret at every position (150 µs for a 60-character
line at 1,000 secrets, against 10 µs as a trie). With no secret registered, ``redact`` costs
one attribute test.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from .reactive import Signal

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "RETIRED_CHARACTERS",
    "RETIRED_SECRETS",
    "SecretSignal",
    "SecretSource",
    "is_secret_node",
    "redact",
    "redact_tree",
    "register_secret_source",
    "retired_secrets",
    "secrets_changed",
]

#: What a masked value looks like, in every view.
MASK = "••••••"
#: Secret strings shorter than this are masked only where their own node is shown.
MIN_SECRET_LENGTH = 4
#: Rotated-out secret strings remembered besides the current ones (oldest forgotten first)...
RETIRED_SECRETS = 4096
#: ... and their characters in all (a few rotated private keys must not make every compile slow).
RETIRED_CHARACTERS = 256 * 1024
#: Trie levels nested in the pattern before the rest of a branch is a flat alternation: keeps
#: ``re``'s parser (recursive per group) safe from secrets that are prefixes of each other.
_MAX_NESTING = 32


class SecretSource(Protocol):
    """Something that knows the current secret strings (the config provider's ``apps.`` tree)."""

    def secret_values(self) -> Iterable[str]: ...


class SecretSignal(Signal[Any]):
    """A signal whose value is a secret: views show its key and edges, never its value.

    Whatever reads it, directly or through other computeds, is secret too (the engine marks
    it when the link is made): its value is never rendered either.
    """

    __slots__ = ()

    def __init__(self, value: Any, **kwargs: Any) -> None:
        super().__init__(value, **kwargs)
        self.secret = True


def is_secret_node(node: Any) -> bool:
    """Whether ``node``'s own value must never be rendered: a secret signal, or a node whose
    dependencies reached one (at any depth, once: see ``graph._spread_secret``)."""
    return getattr(node, "secret", False) is True


def _searchable(value: object) -> bool:
    return isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH


def _alternatives(words: list[str], depth: int) -> str:
    """Regex source matching any of ``words`` (distinct; one may be empty), the longest one
    where several match at the same place: a trie, each branch a common prefix."""
    if len(words) == 1:
        return re.escape(words[0])
    optional = "" in words
    rest = [w for w in words if w]
    if depth >= _MAX_NESTING:
        alternatives = [re.escape(w) for w in sorted(rest, key=len, reverse=True)]
    else:
        branches: dict[str, list[str]] = {}
        for word in rest:
            branches.setdefault(word[0], []).append(word)
        alternatives = []
        for _first, branch in sorted(branches.items()):
            if len(branch) == 1:
                alternatives.append(re.escape(branch[0]))
                continue
            prefix = _common_prefix(branch)
            alternatives.append(re.escape(prefix) + _alternatives(
                [w[len(prefix):] for w in branch], depth + 1))
    if optional:  # greedy: the longer words are tried before this one ends here
        return "(?:" + "|".join(alternatives) + ")?"
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"


def _common_prefix(words: list[str]) -> str:
    low, high = min(words), max(words)  # the common prefix of all is that of these two
    size = 0
    while size < len(low) and low[size] == high[size]:
        size += 1
    return low[:size]


def _compile(values: set[str]) -> re.Pattern[str] | None:
    return re.compile(_alternatives(sorted(values), 0)) if values else None


#: ``_Redactor.pattern`` while a source's values changed since the last compile.
_STALE: Any = object()


class _Retired:
    """One source's rotated-out values, oldest first, within the two bounds."""

    __slots__ = ("characters", "values")

    def __init__(self) -> None:
        self.values: dict[str, None] = {}  # insertion-ordered: the oldest first
        self.characters = 0

    def add(self, retired: list[str]) -> None:
        values = self.values
        for value in retired:
            if value in values:  # retired again: it becomes the newest
                del values[value]
                self.characters -= len(value)
            values[value] = None
            self.characters += len(value)
        while len(values) > RETIRED_SECRETS or self.characters > RETIRED_CHARACTERS:
            oldest = next(iter(values))
            del values[oldest]
            self.characters -= len(oldest)


class _Redactor:
    """The secret strings of every live source (current and retired), in one pattern.

    ``pattern`` is what ``redact`` reads: None (nothing to mask), a compiled pattern, or
    ``_STALE`` (compile on next use). No lock is held while asking a source for its values:
    a source takes the engine's lock, and a write holding that lock may call ``changed``.
    Sources are held weakly, and so is each one's history: a kernel's rotated-out secrets
    are remembered for as long as its config lives, and go with it.
    """

    def __init__(self) -> None:
        self._sources: weakref.WeakKeyDictionary[Any, _Retired] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()  # guards the sources and their histories, briefly
        self._version = 0
        self.pattern: Any = None

    def register(self, source: SecretSource) -> None:
        with self._lock:
            if source in self._sources:
                return
            self._sources[source] = _Retired()
        weakref.finalize(source, self.changed)  # its values leave the pattern with it
        self.changed(source)

    def changed(self, source: SecretSource | None = None, retired: Iterable[Any] = ()) -> None:
        """Some source's values changed; ``retired`` are values it no longer holds."""
        kept = [v for v in retired if _searchable(v)]
        if kept and source is not None:
            with self._lock:
                history = self._sources.get(source)
                if history is not None:
                    history.add(kept)
        # Version before the flag: a compile that finishes in between sees the new version
        # and puts the flag back (see rebuild), so no change is ever lost.
        self._version += 1
        self.pattern = _STALE

    def rebuild(self) -> re.Pattern[str] | None:
        """Compile the current and retired values (two threads may both do it: no harm)."""
        version = self._version
        with self._lock:
            sources = [(source, list(history.values)) for source, history in
                       list(self._sources.items())]
        values: set[str] = set()
        for source, retired in sources:
            values.update(v for v in source.secret_values() if _searchable(v))
            values.update(retired)
        pattern = _compile(values)
        self.pattern = pattern
        if self._version != version:
            self.pattern = _STALE  # changed while compiling: the next use compiles again
        return pattern

    def retired(self, source: SecretSource) -> list[str]:
        """The rotated-out values of ``source`` still searched for, oldest first."""
        with self._lock:
            history = self._sources.get(source)
            return list(history.values) if history is not None else []


_redactor = _Redactor()


def register_secret_source(source: SecretSource) -> None:
    """Search ``source.secret_values()`` in every rendered text (held weakly)."""
    _redactor.register(source)


def secrets_changed(source: SecretSource | None = None, retired: Iterable[Any] = ()) -> None:
    """Tell the redactor that ``source``'s secret values changed (compiled again on next
    use); ``retired`` are the values the change replaced or removed, searched for from now
    on as well, for as long as ``source`` lives (its last ``RETIRED_SECRETS``)."""
    _redactor.changed(source, retired)


def retired_secrets(source: SecretSource) -> list[str]:
    """The rotated-out values of ``source`` the redactor still masks, oldest first."""
    return _redactor.retired(source)


def redact(text: str) -> str:
    """``text`` with every known secret value, current or rotated out, replaced by ``MASK``."""
    pattern = _redactor.pattern
    if pattern is None:  # no secret anywhere: this one test
        return text
    if pattern is _STALE:
        pattern = _redactor.rebuild()
        if pattern is None:
            return text
    return pattern.sub(MASK, text)  # type: ignore[no-any-return]


def redact_tree(value: Any) -> Any:
    """A copy of plain data (dicts, lists, tuples, strings) with secret strings masked."""
    pattern = _redactor.pattern
    if pattern is None or (pattern is _STALE and _redactor.rebuild() is None):
        return value
    return _redact_tree(value)


def _redact_tree(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact_tree(v) for v in value)
    return value
