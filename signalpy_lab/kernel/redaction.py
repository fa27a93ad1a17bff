"""Masking secrets wherever the kernel turns a value into text for people to read.

Secret values must never appear in the lab's graph, tables, ``%why``, event log or exports.
Every such text is made by ``events.short_repr`` (events, handler results, graph values) or
passes through ``redact`` here, so masking happens in one place, at the observability
boundary, and never in the values components and host code receive.

Two rules, because a secret can show up in two ways:

* **A secret node** (a config signal under ``apps.``, the credentials tree): its value is
  never rendered; ``MASK`` stands in for it. The providers mark such signals with
  ``SecretSignal``; the graph still shows the dependency and the key, never the value.
* **A secret value inside other text** (a computed that builds a DSN from a password, a
  handler that returns its key): every string a ``SecretSource`` reports is replaced by
  ``MASK`` wherever it occurs, the way CI systems mask secrets in build logs. Strings shorter
  than ``MIN_SECRET_LENGTH`` are not searched for (masking every ``"1"`` would make every
  table unreadable); such secrets are still masked where their own node is shown.

With no secret registered, ``redact`` costs one attribute test.
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
    "SecretSignal",
    "SecretSource",
    "is_secret_node",
    "redact",
    "redact_tree",
    "register_secret_source",
    "secrets_changed",
]

#: What a masked value looks like, in every view.
MASK = "••••••"
#: Secret strings shorter than this are masked only where their own node is shown.
MIN_SECRET_LENGTH = 4


class SecretSource(Protocol):
    """Something that knows the current secret strings (the config provider's ``apps.`` tree)."""

    def secret_values(self) -> Iterable[str]: ...


class SecretSignal(Signal[Any]):
    """A signal whose value is a secret: views show its key and edges, never its value."""

    __slots__ = ()
    secret = True


def is_secret_node(node: Any) -> bool:
    """Whether ``node``'s own value must never be rendered."""
    return getattr(node, "secret", False) is True


class _Redactor:
    """The process-wide set of secret strings, compiled into one pattern on demand."""

    def __init__(self) -> None:
        self._sources: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._version = 0
        self._compiled_version = -1
        self.pattern: re.Pattern[str] | None = None

    def register(self, source: SecretSource) -> None:
        with self._lock:
            self._sources.add(source)
            self._version += 1

    def changed(self) -> None:
        self._version += 1  # an int bump is atomic enough: a racing redact rebuilds again

    def current(self) -> re.Pattern[str] | None:
        if self._compiled_version != self._version:
            with self._lock:
                version = self._version
                values: set[str] = set()
                for source in list(self._sources):
                    values.update(v for v in source.secret_values()
                                  if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH)
                # Longest first, so a secret containing another is masked whole.
                ordered = sorted(values, key=len, reverse=True)
                self.pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
                self._compiled_version = version
        return self.pattern


_redactor = _Redactor()


def register_secret_source(source: SecretSource) -> None:
    """Search ``source.secret_values()`` in every rendered text (held weakly)."""
    _redactor.register(source)


def secrets_changed() -> None:
    """Tell the redactor that some source's secret values changed (rebuilt on next use)."""
    _redactor.changed()


def redact(text: str) -> str:
    """``text`` with every known secret value replaced by ``MASK``."""
    pattern = _redactor.current()
    if pattern is None:
        return text
    return pattern.sub(MASK, text)


def redact_tree(value: Any) -> Any:
    """A copy of plain data (dicts, lists, tuples, strings) with secret strings masked."""
    if _redactor.current() is None:
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_tree(v) for v in value)
    return value
