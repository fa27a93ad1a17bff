"""Nested settings with one signal per dotted key that anybody read: per-key reactivity.

Two layers, ``defaults`` and ``runtime`` (what ``set`` wrote). A value set at a key replaces
the whole subtree below it, from both layers; ``unset`` removes runtime values at or below a
key, so the defaults show through again.

Reading ``tenants.acme.db_url`` subscribes to that key's signal only. A write to key K
updates the signals of K, of every watched key below K, and of every watched ancestor of K
(a subtree read depends on everything within it), and nothing else: setting
``tenants.globex.db_url`` does not touch, or even mark stale, readers of acme's keys. The
cost of a write is proportional to the key's depth plus the watched keys below it, never to
the number of tenants.

Subtree watches serve whole-view reads (``IConfig.all()``): ``watch(path)`` subscribes to a
version counter that moves on every write at, above or below ``path``, and ``top_keys()`` to
the set of top-level keys. A view made of a few subtrees re-runs on any change inside them
and on nothing else. Like value signals, they exist only once someone watched.

A write that changes no signal (nobody reads that key yet, or its readers' value stayed equal)
is reported as one ``UnreadWrite`` event on the owner's hub while someone listens, so the lab
can say "no readers yet, nothing recomputes" instead of showing nothing.

Replication: a keyspace may have a ``replica`` (the shared config on a JetStream key-value
bucket, ``signalpy_lab.remote.shared_config``): every runtime write and delete made here is
first offered to it (``check``: it may refuse, say its server is unreachable) and then handed
to it (``wrote`` / ``deleted``); writes that come *from* the replica are applied with
``apply_remote`` / ``delete_remote``, which do not go back to it.

Secrets: a keyspace made with ``secret_prefix="apps"`` gives the signals under that top-level
key the ``SecretSignal`` class (views never render their values) and reports the strings
stored there to the redactor, which masks them inside any other rendered text; a write,
unset or merge there also reports the strings it replaced, which stay masked after a rotation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..errors import ConfigKeyError
from ..kernel.events import UnreadWrite, current_command, short_repr
from ..kernel.graph import context
from ..kernel.reactive import Scope, Signal, batch, current_scope
from ..kernel.redaction import (
    MASK,
    SecretSignal,
    redact,
    register_secret_source,
    secrets_changed,
)

__all__ = ["MISSING", "Keyspace", "parse_key"]

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "<unset>"})()
_SAME: Any = object()  # "the value before was the value after" (see _old_if_unwatched)

Path = tuple[str, ...]


def parse_key(key: object, *, what: str = "config key",
              example: str = "tenants.acme.db_url") -> Path:
    """``'tenants.acme.db_url'`` -> ``('tenants', 'acme', 'db_url')``; anything else is an error."""
    if isinstance(key, str):
        path = tuple(key.split("."))
        if key and all(path):
            return path
    raise ConfigKeyError(
        f"A {what} is a dotted string like {example!r} (no empty parts), got {key!r}."
    )


def _copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (dict, list, set)) else value


def _get_in(tree: Any, path: Path) -> Any:
    for part in path:
        if not isinstance(tree, Mapping) or part not in tree:
            return MISSING
        tree = tree[part]
    return tree


class _Node:
    """A trie node for one path: its runtime value, its signal, and its children."""

    __slots__ = ("children", "override", "overrides_below", "signal", "version")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.override: Any = MISSING
        self.overrides_below = 0  # runtime values strictly below this node
        self.signal: Signal[Any] | None = None
        self.version: Signal[int] | None = None  # moves on any change in this subtree


class Keyspace:
    """Layered nested settings with lazily created per-key signals (see module docstring)."""

    #: The shared config this keyspace's runtime writes go to, if any (see the module doc).
    replica: Any = None

    def __init__(self, defaults: Mapping[str, Any] | None = None, *,
                 owner: Scope | None = None,
                 tenant_of: Callable[[Path], str | None] | None = None,
                 label_prefix: str = "", secret_prefix: str | None = None) -> None:
        self._defaults: dict[str, Any] = _thaw(defaults or {})
        self._root = _Node()
        self._owner = owner if owner is not None else current_scope()
        self._tenant_of = tenant_of
        self._label_prefix = label_prefix
        self._secret_prefix = secret_prefix
        self._top: Signal[frozenset[str]] | None = None
        if secret_prefix is not None:
            register_secret_source(self)

    # -- reading -----------------------------------------------------------------------

    def read(self, path: Path) -> Any:
        """The value at ``path`` (``MISSING`` if none), tracked per key when read reactively."""
        node = self._node(path, create=True)
        signal = node.signal
        if signal is None:
            kind = SecretSignal if path[0] == self._secret_prefix else Signal
            signal = self._created(node, "signal", lambda: self._signal(
                kind, self._resolve(path), self._label(path), path))
        return _copy(signal.get())

    def watch(self, path: Path) -> None:
        """Subscribe the running computed to every change at, above or below ``path``."""
        node = self._node(path, create=True)
        version = node.version
        if version is None:
            # 'tenants.acme.*' reads as what it is: a change anywhere in there.
            version = self._created(node, "version", lambda: self._signal(
                Signal, 0, self._label((*path, "*")), path))
        version.get()

    def top_keys(self) -> frozenset[str]:
        """The top-level keys of the effective tree (reactive: re-runs when one comes or goes)."""
        signal = self._top
        if signal is None:
            signal = self._created(self, "_top", lambda: Signal(
                self._top_keys(), label=self._label_prefix + "(top-level keys)",
                owner=self._owner))
        return signal.get()

    @staticmethod
    def _created(holder: Any, attr: str, make: Callable[[], Signal[Any]]) -> Signal[Any]:
        """``holder.<attr>``, made by ``make()`` on first use: under the engine's lock, looked
        at again there, since two threads may read a key for the first time at once."""
        with context.lock:
            signal = getattr(holder, attr)
            if signal is None:
                signal = make()
                setattr(holder, attr, signal)
        return signal  # type: ignore[no-any-return]

    def _signal(self, kind: type[Signal[Any]], value: Any, label: str, path: Path
                ) -> Signal[Any]:
        """A signal of this keyspace for ``path``, with the tenant its key belongs to."""
        signal = kind(value, label=label, owner=self._owner)
        if self._tenant_of is not None:
            signal.tenant = self._tenant_of(path)
        return signal

    def secret_values(self) -> list[str]:
        """Every string stored under the secret prefix (for the redactor)."""
        if self._secret_prefix is None:
            return []
        return _strings(self.peek((self._secret_prefix,)))

    def _secrets_at(self, path: Path) -> list[str]:
        """The strings at or below ``path`` if it is under the secret prefix (a write there
        is about to replace them), else none. Called under the engine's lock."""
        if path[0] != self._secret_prefix:
            return []
        return _strings(self._resolve(path))
    def peek(self, path: Path) -> Any:
        """The value at ``path`` without subscribing or creating a signal."""
        with context.lock:
            return _copy(self._resolve(path))

    def source(self, path: Path) -> str | None:
        """``'runtime'``, ``'defaults'``, ``'runtime+defaults'`` (a subtree mixing both) or None."""
        with context.lock:
            nodes = self._walk(path)
            full = len(nodes) == len(path) + 1
            if full and nodes[-1].override is not MISSING:
                return "runtime"
            if self._resolve(path) is MISSING:
                return None
            if any(n.override is not MISSING for n in nodes[: len(path)]):
                return "runtime"  # an ancestor's runtime value replaced the defaults here
            in_defaults = _get_in(self._defaults, path) is not MISSING
            if full and nodes[-1].overrides_below:
                return "runtime+defaults" if in_defaults else "runtime"
            return "defaults"

    def snapshot(self) -> dict[str, Any]:
        """The whole effective tree as a plain dict (a copy)."""
        with context.lock:
            merged = copy.deepcopy(self._defaults)
            _overlay(merged, self._root)
            return merged

    def leaves(self, prefix: Path = ()) -> Iterator[tuple[str, Any]]:
        """``(dotted key, value)`` for every leaf under ``prefix`` in the effective tree."""
        tree = _get_in(self.snapshot(), prefix) if prefix else self.snapshot()
        if tree is MISSING or (not prefix and not tree):  # an empty config has no leaf, not ''
            return
        if not isinstance(tree, Mapping) or not tree:
            yield ".".join(prefix), tree
            return
        stack: list[tuple[Path, Any]] = [(prefix, tree)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, Mapping) and value:
                stack.extend(((*path, k), v) for k, v in reversed(list(value.items())))
            else:
                yield ".".join(path), value

    # -- writing -----------------------------------------------------------------------

    def write(self, path: Path, value: Any) -> None:
        """Set ``path`` in the runtime layer (replacing its subtree) and notify watchers."""
        value = _thaw(value) if isinstance(value, Mapping) else _copy(value)
        replica = self.replica
        if replica is not None:
            replica.check(path)  # refuses before anything changes here
        self._write(path, value)
        if replica is not None:
            replica.wrote(path, value)

    def apply_remote(self, path: Path, value: Any) -> None:
        """``write`` of a value that came from the replica (not sent back to it)."""
        self._write(path, _thaw(value) if isinstance(value, Mapping) else _copy(value))

    def delete_remote(self, path: Path) -> bool:
        """``delete`` of a key the replica deleted (not sent back to it)."""
        return self._delete(path)

    def runtime_items(self) -> list[tuple[Path, Any]]:
        """The runtime layer as ``(path, value)``: what ``write`` calls stored, outermost."""
        out: list[tuple[Path, Any]] = []
        stack: list[tuple[Path, _Node]] = [((), self._root)]
        while stack:
            path, node = stack.pop()
            if node.override is not MISSING:
                out.append((path, _copy(node.override)))
                continue  # a value here replaced everything below
            if node.overrides_below:
                stack.extend(((*path, k), c) for k, c in node.children.items())
        return out

    def _write(self, path: Path, value: Any) -> None:
        hub = self._listening()
        old = self._old_if_unwatched(path) if hub is not None else MISSING
        with batch():
            replaced = self._secrets_at(path)
            nodes = self._walk(path, create=True)
            node = nodes[-1]
            removed = _clear_below(node)
            added = 0 if node.override is not MISSING else 1
            node.override = value
            for ancestor in nodes[:-1]:
                ancestor.overrides_below += added - removed
            changed, readers = self._notify(nodes, path, replaced)
        if hub is not None and not changed:
            self._report_unread(hub, path, old, value, readers)

    def merge_defaults(self, path: Path, value: Mapping[str, Any]) -> None:
        """Deep-merge ``value`` into the defaults layer at ``path`` and notify watchers.

        Runtime values still win; this is how another provider seeds its part of the tree.
        """
        with batch():
            replaced = self._secrets_at(path)
            tree = self._defaults
            for part in path[:-1]:
                sub = tree.get(part)
                if not isinstance(sub, dict):
                    sub = tree[part] = {}
                tree = sub
            current = tree.get(path[-1])
            tree[path[-1]] = _deep_merge(current if isinstance(current, dict) else {},
                                         _thaw(value))
            self._notify(self._walk(path), path, replaced)

    def delete(self, path: Path) -> bool:
        """Remove runtime values at or below ``path``; returns whether anything was removed."""
        replica = self.replica
        if replica is not None:
            replica.check(path)
        removed = self._delete(path)
        if removed and replica is not None:
            replica.deleted(path)
        return removed

    def _delete(self, path: Path) -> bool:
        hub = self._listening()
        old = self._old_if_unwatched(path) if hub is not None else MISSING
        with batch():
            nodes = self._walk(path)
            if len(nodes) != len(path) + 1:
                return False
            node = nodes[-1]
            replaced = self._secrets_at(path)
            removed = _clear_below(node) + (1 if node.override is not MISSING else 0)
            if not removed:
                return False
            node.override = MISSING
            for ancestor in nodes[:-1]:
                ancestor.overrides_below -= removed
            changed, readers = self._notify(nodes, path, replaced)
        if hub is not None and not changed:
            self._report_unread(hub, path, old, self._resolve(path), readers)
        return True

    # -- internals ---------------------------------------------------------------------

    def _label(self, path: Path) -> str:
        return self._label_prefix + ".".join(path)

    def _walk(self, path: Path, create: bool = False) -> list[_Node]:
        """Trie nodes from the root along ``path`` (stops early if not ``create``)."""
        node = self._root
        nodes = [node]
        for part in path:
            child = node.children.get(part)
            if child is None:
                if not create:
                    break
                child = node.children[part] = _Node()
            node = child
            nodes.append(node)
        return nodes

    def _node(self, path: Path, create: bool) -> _Node:
        node = self._root
        for part in path:
            child = node.children.get(part)
            if child is None:
                with context.lock:
                    child = node.children.setdefault(part, _Node())
            node = child
        return node

    def _resolve(self, path: Path) -> Any:
        """The effective value at ``path`` (may share structure: callers copy)."""
        node: _Node | None = self._root
        deepest, depth = MISSING, -1
        for index in range(len(path) + 1):
            if node is None:
                break
            if node.override is not MISSING:
                deepest, depth = node.override, index
            node = node.children.get(path[index]) if index < len(path) else node
        base = _get_in(deepest, path[depth:]) if depth >= 0 else _get_in(self._defaults, path)
        if node is not None and node.overrides_below:
            # runtime values written below this key after (or without) a write at or above it
            base = copy.deepcopy(base) if isinstance(base, dict) else {}
            _overlay(base, node)
            return base or MISSING
        return base

    def _notify(self, nodes: list[_Node], path: Path,
                replaced: list[str] | None = None) -> tuple[bool, int]:
        """Re-resolve every watched signal the write at ``path`` may have changed; returns
        whether any changed and how many signals were notified (the write's readers).

        ``nodes`` may stop short of ``path`` (nobody ever watched that deep): then only the
        ancestors that exist are notified. ``replaced``: the secret strings that were at
        ``path`` before the write (those no longer there are retired, see the docstring).
        """
        if path[0] == self._secret_prefix:
            # First: what watchers see (a command label) is masked already.
            kept = set(_strings(self._resolve(path))) if replaced else set()
            secrets_changed(self, [v for v in replaced or () if v not in kept])
        changed, readers = False, 0
        full = len(nodes) == len(path) + 1
        for depth, node in enumerate(nodes[:-1] if full else nodes):
            if node.signal is not None:
                readers += 1
                changed = node.signal.set(self._resolve(path[:depth])) or changed
            if node.version is not None:
                readers += 1
                changed = node.version.set(node.version.peek() + 1) or changed
        if full:
            stack = [(path, nodes[-1])]
            while stack:
                sub_path, node = stack.pop()
                if node.signal is not None:
                    readers += 1
                    changed = node.signal.set(self._resolve(sub_path)) or changed
                if node.version is not None:
                    readers += 1
                    changed = node.version.set(node.version.peek() + 1) or changed
                stack.extend(((*sub_path, k), child) for k, child in node.children.items())
        if self._top is not None:
            changed = self._top.set(self._top_keys()) or changed
        return changed, readers

    def _listening(self) -> Any:
        """The owner's event hub while someone listens to it, else None (one test)."""
        owner = self._owner
        hub = owner.hub if owner is not None else None
        return hub if hub is not None and hub.active else None

    def _old_if_unwatched(self, path: Path) -> Any:
        """The value before a write, needed only if it turns out unread: with a signal at
        ``path`` an unread write left it equal (``_SAME``), so skip the resolve there."""
        node: _Node | None = self._root
        for part in path:
            node = node.children.get(part) if node is not None else None
        if node is not None and node.signal is not None:
            return _SAME
        return self._resolve(path)

    def _report_unread(self, hub: Any, path: Path, old: Any, new: Any, readers: int) -> None:
        """One ``UnreadWrite``: the write changed no signal (see the module docstring)."""
        secret = path[0] == self._secret_prefix
        if old is _SAME:
            old = new

        def text(value: Any) -> str:
            return "<unset>" if value is MISSING else MASK if secret else short_repr(value)

        owner = self._owner
        command = current_command()
        hub.emit(UnreadWrite(label=self._label(path), instance=owner.name if owner else None,
                             tenant=self._tenant_of(path) if self._tenant_of else None,
                             old=text(old), new=text(new), readers=readers,
                             command=redact(command) if command else None))

    def _top_keys(self) -> frozenset[str]:
        keys = set(self._defaults)
        for key, child in self._root.children.items():
            if child.override is not MISSING or child.overrides_below:
                keys.add(key)
        return frozenset(keys)


def _strings(tree: Any) -> list[str]:
    """Every string in a nested value (mappings, lists, tuples, sets), depth first."""
    found: list[str] = []
    stack = [tree]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)
    return found


def _clear_below(node: _Node) -> int:
    """Drop runtime values strictly below ``node``; returns how many there were."""
    removed = node.overrides_below
    if not removed:
        return 0
    stack = list(node.children.values())
    while stack:
        child = stack.pop()
        if child.override is not MISSING or child.overrides_below:
            child.override = MISSING
            child.overrides_below = 0
            stack.extend(child.children.values())
    node.overrides_below = 0
    return removed


def _overlay(tree: dict[str, Any], node: _Node) -> None:
    """Apply the runtime values below ``node`` onto ``tree`` (in place)."""
    stack: list[tuple[dict[str, Any], _Node]] = [(tree, node)]
    while stack:
        target, current = stack.pop()
        for key, child in current.children.items():
            if child.override is not MISSING:
                target[key] = copy.deepcopy(child.override)
                if child.overrides_below and isinstance(target[key], dict):
                    stack.append((target[key], child))  # written below it after it was set
            elif child.overrides_below:
                sub = target.get(key)
                if not isinstance(sub, dict):
                    sub = target[key] = {}
                stack.append((sub, child))


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` merged into ``base`` (in place): mappings merge, anything else replaces."""
    for key, value in extra.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            _deep_merge(current, value)
        else:
            base[key] = value
    return base


def _thaw(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A deep plain-dict copy of any mapping (frozen properties included)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigKeyError(f"Config keys are strings, got {key!r} in {dict(mapping)!r}.")
        out[key] = _thaw(value) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out
