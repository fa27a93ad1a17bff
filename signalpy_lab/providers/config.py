"""``ConfigProvider``: reactive, layered configuration with per-key subscriptions.

    kernel.instantiate("config", properties={"defaults": {"tenants": {"acme": {...}}}})
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.db_url", "postgres://new/acme")   # only acme's readers react
    config.explain("tenants.acme.db_url")                      # value and where it came from

The tree has two reserved top-level sections:

* ``tenants.<target>.`` - one per tenant, readable and writable by that tenant's instances;
* ``apps.<component-name>.`` - one per component (instance) name, private to it: its
  credentials, with per-target sub-sections ``apps.<name>.targets.<target>.<key>``. The
  ``credentials`` provider is a scoped view of this tree, so a rotation is a config write.

Scoping is structural and per consumer. The host (``kernel.registry.require("IConfig")``, the
lab's ``%config``) holds the service and sees everything. Every component gets a sealed
``ConfigView`` instead:

* every component reads and writes ``apps.<its own name>.*``; ``apps``, ``apps.<another
  name>`` and anything under them raise ``TenantIsolationError``, whoever asks;
* a *targeted* instance (``{"target": "acme"}``) reads shared keys and ``tenants.acme.*``,
  writes only inside ``tenants.acme.`` and its own ``apps.`` section, and ``tenants`` as a
  whole or another tenant's section raise ``TenantIsolationError``;
* an *untargeted* component (an admin or analytics component) reads and writes everything
  else, every tenant's section included, but still no other component's ``apps.`` section.

**Host-owned keys.** Some keys inside a tenant's section are the host's to set: a tenant reads
them but may not write them (``HostOwnedKeyError``). A pattern is dotted parts with ``*``
for one part, and covers its key and everything below: ``tenants.*.quota`` (the default, so
the quota component's limits are the host's) owns ``tenants.acme.quota.rate``. The host
(the unscoped service, ``%config set``) and untargeted components write them; change the
list with the config instance's ``host_owned`` property or ``config.reserve(pattern)`` /
``config.release(pattern)`` on the host's service.

``all()`` is a reactive read of everything a handle may see; ``get_typed(section, Model)``
validates a section with a pydantic model. Values under ``apps.`` are secrets: the lab shows
those keys and their readers, never their values (``kernel.redaction``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import (
    ConfigKeyError,
    ConfigValidationError,
    HostOwnedKeyError,
    TenantIsolationError,
)
from ..kernel import component, lifecycle, provides
from ..kernel.events import short_repr
from ..kernel.reactive import batch, current_scope
from ..kernel.registry import Consumer
from ..kernel.sealed import Sealed, seal, unseal
from .keyspace import MISSING, Keyspace, Path, parse_key

__all__ = [
    "APPS",
    "HOST_OWNED",
    "TENANTS",
    "ConfigProvider",
    "ConfigValue",
    "ConfigView",
    "TenantConfig",
    "is_secret_key",
]

#: The top-level section holding one subsection per tenant.
TENANTS = "tenants"
#: The top-level section holding one private subsection per component: its credentials.
APPS = "apps"
#: Keys the host owns by default: every tenant's quota (limits a tenant must not raise).
HOST_OWNED = ("tenants.*.quota",)

M = TypeVar("M", bound=BaseModel)


def is_secret_key(key: str) -> bool:
    """Whether values at ``key`` are secrets, never to be shown (``apps`` and below)."""
    return key == APPS or key.startswith(APPS + ".")


@dataclass(frozen=True)
class ConfigValue:
    """A config value and where it came from (``runtime``, ``defaults`` or None if unset)."""

    key: str
    value: Any
    source: str | None


def tenant_of(path: Path) -> str | None:
    """``('tenants', 'acme', 'db_url')`` -> ``'acme'``: which tenant a key belongs to."""
    return path[1] if len(path) > 1 and path[0] == TENANTS else None


@component("config", version="1.0")
@provides("IConfig")
class ConfigProvider:
    """The configuration service. Properties: ``defaults`` (a nested mapping)."""

    @lifecycle.activate
    def activate(self) -> None:
        defaults = self.rt.properties.get("defaults", {})
        if not isinstance(defaults, Mapping):
            raise TypeError(f"config 'defaults' must be a mapping, got {defaults!r}")
        self._keys = Keyspace(defaults, owner=current_scope(), tenant_of=tenant_of,
                              secret_prefix=APPS)
        owned = self.rt.properties.get("host_owned", HOST_OWNED)
        if isinstance(owned, str) or not isinstance(owned, (list, tuple)):
            raise TypeError(f"config 'host_owned' is a list of key patterns like "
                            f"['tenants.*.quota'], got {owned!r}")
        self._host_owned: list[tuple[str, ...]] = []
        for pattern in owned:
            self.reserve(pattern)

    # -- the service -------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` (reactive: a computed reading it re-runs when it changes)."""
        value = self._keys.read(parse_key(key))
        return default if value is MISSING else value

    def set(self, key: str, value: Any, *, expect_revision: int | None = None) -> int | None:
        """Set ``key`` in the runtime layer; its readers, and only they, go stale.

        With a shared config (``signalpy_lab.remote.shared_config``), ``expect_revision=n``
        writes only if the key's last revision is ``n`` (0: it must not exist yet), else
        ``ConfigConflictError``; it returns the new revision.
        """
        path = parse_key(key)
        if expect_revision is None:
            self._keys.write(path, value)
            return None
        replica = self._keys.replica
        if replica is None:
            raise ConfigKeyError(
                f"config.set({key!r}, ..., expect_revision={expect_revision!r}): a "
                f"compare-and-set needs a shared config (revisions are the bucket's); this "
                f"kernel's config is its own. Share it: await SharedConfig(transport).start()")
        return replica.compare_and_set(path, value, int(expect_revision))  # type: ignore[no-any-return]

    def history(self, key: str) -> list[Any]:
        """The kept revisions of ``key`` in the shared config, oldest first (``HistoryEntry``:
        revision, value or deleted, who wrote it, with which command, when)."""
        path = parse_key(key)
        replica = self._keys.replica
        if replica is None:
            raise ConfigKeyError(
                f"config.history({key!r}): only a shared config keeps revisions; this "
                f"kernel's config is its own. Share it: await SharedConfig(transport).start()")
        return replica.history(path)  # type: ignore[no-any-return]

    @property
    def shared(self) -> Any:
        """The ``SharedConfig`` this config is shared through, or None (its own)."""
        return self._keys.replica

    def unset(self, key: str) -> bool:
        """Remove runtime values at or below ``key``; returns whether anything was removed."""
        return self._keys.delete(parse_key(key))

    def merge(self, values: Mapping[str, Any], prefix: str = "") -> int:
        """Set every leaf of a nested mapping (siblings keep their values); one batch.

        Returns how many keys were set.
        """
        return _merge(self._keys, values, parse_key(prefix) if prefix else ())

    def all(self) -> dict[str, Any]:
        """The whole effective tree (reactive: re-runs on any change, per-key readers don't)."""
        self._keys.watch(())
        return self._keys.snapshot()

    def get_typed(self, section: str, model: type[M]) -> M:
        """``section`` validated by the pydantic ``model`` (reactive); errors name the key.

        >>> config.get_typed("tenants.acme.quota", QuotaSettings)
        """
        raw = self.get(section) if section else self.all()
        return _validate(section, raw, model)

    def source(self, key: str) -> str | None:
        """Where the value at ``key`` comes from: runtime, defaults, runtime+defaults or None."""
        return self._keys.source(parse_key(key))

    def explain(self, key: str) -> ConfigValue:
        """The value at ``key`` (not tracked) and its source."""
        path = parse_key(key)
        value = self._keys.peek(path)
        return ConfigValue(key, None if value is MISSING else value, self._keys.source(path))

    def peek(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` without subscribing to it."""
        value = self._keys.peek(parse_key(key))
        return default if value is MISSING else value

    def keys(self, prefix: str = "") -> list[str]:
        """Every leaf key (optionally under ``prefix``), sorted."""
        return sorted(k for k, _ in self._keys.leaves(parse_key(prefix) if prefix else ()))

    def as_dict(self, prefix: str = "") -> Any:
        """The effective tree (or the subtree at ``prefix``) as plain data."""
        if not prefix:
            return self._keys.snapshot()
        value = self._keys.peek(parse_key(prefix))
        return None if value is MISSING else value

    def seed_defaults(self, prefix: str, values: Mapping[str, Any]) -> None:
        """Deep-merge ``values`` into the defaults layer at ``prefix`` (runtime values win).

        How another provider contributes its part of the tree, e.g. the credentials
        provider's ``secrets`` property under ``apps.``.
        """
        self._keys.merge_defaults(parse_key(prefix), values)

    # -- host-owned keys (see the module docstring) -----------------------------------

    def reserve(self, pattern: str) -> None:
        """Make keys matching ``pattern`` (``*`` for one part; the key and everything below)
        host-owned: tenant instances read them, only the host and untargeted components
        write them.

        >>> kernel.registry.require("IConfig").reserve("tenants.*.plan")
        """
        path = parse_key(pattern, what="host-owned key pattern", example="tenants.*.quota")
        if path not in self._host_owned:
            self._host_owned.append(path)

    def release(self, pattern: str) -> bool:
        """Stop owning ``pattern`` (as given to ``reserve``); returns whether it was owned."""
        path = parse_key(pattern, what="host-owned key pattern", example="tenants.*.quota")
        if path in self._host_owned:
            self._host_owned.remove(path)
            return True
        return False

    def host_owned(self) -> list[str]:
        """The host-owned key patterns, as given."""
        return [".".join(p) for p in self._host_owned]

    def owner_of(self, key: str) -> str | None:
        """The host-owned pattern covering ``key`` (or below it: writing the key would
        replace it), else None."""
        return _owned_by(self._host_owned, parse_key(key))

    def scoped_for(self, consumer: Consumer) -> ConfigView:
        """What a component receives: a view scoped to its name (and tenant, if targeted)."""
        return seal(ConfigView, (self, consumer.target, consumer.name))

    def __repr__(self) -> str:
        return "<ConfigProvider>"


class ConfigView(Sealed):
    """A component's view of config: its own ``apps.<name>`` section, plus shared keys and
    its own tenant section (targeted) or everything but other components' sections.

    A sealed handle: the service, the target and the name live outside the object, and no
    method returns the service, so neither can be read or rewritten through it.
    """

    __slots__ = ()

    @property
    def target(self) -> str | None:
        """The tenant this view is scoped to (``None`` for an untargeted component)."""
        return unseal(self, ConfigView)[1]  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        """The component (instance) name whose ``apps.<name>`` section this view owns."""
        return unseal(self, ConfigView)[2]  # type: ignore[no-any-return]

    @property
    def section(self) -> str | None:
        """This instance's own tenant section, e.g. ``'tenants.acme'`` (``None`` untargeted)."""
        target = unseal(self, ConfigView)[1]
        return f"{TENANTS}.{target}" if target is not None else None

    @property
    def apps_section(self) -> str:
        """This component's private section, e.g. ``'apps.tenant-db-acme'``."""
        return f"{APPS}.{unseal(self, ConfigView)[2]}"

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``ConfigProvider.get``, within this view."""
        config, path = _readable(self, key, "read")
        value = config._keys.read(path)
        return default if value is MISSING else value

    def peek(self, key: str, default: Any = None) -> Any:
        config, path = _readable(self, key, "read")
        value = config._keys.peek(path)
        return default if value is MISSING else value

    def source(self, key: str) -> str | None:
        config, path = _readable(self, key, "read")
        return config._keys.source(path)  # type: ignore[no-any-return]

    def explain(self, key: str) -> ConfigValue:
        config, _path = _readable(self, key, "read")
        return config.explain(key)  # type: ignore[no-any-return]

    def set(self, key: str, value: Any) -> None:
        """Set a key this view may write (see the module docstring)."""
        config, path = _writable(self, key)
        config._keys.write(path, value)

    def unset(self, key: str) -> bool:
        config, path = _writable(self, key)
        return config._keys.delete(path)  # type: ignore[no-any-return]

    def all(self) -> dict[str, Any]:
        """Everything this view may read, as one tree (reactive, within the view only).

        A targeted instance gets the shared keys, ``tenants.<its target>`` and
        ``apps.<its name>``; it re-runs on a change to any of those and on nothing else.
        """
        config, target, name = unseal(self, ConfigView)
        keys = config._keys
        tree: dict[str, Any] = {}
        for top in sorted(keys.top_keys()):
            if top == APPS:
                own = (APPS, name)
            elif top == TENANTS and target is not None:
                own = (TENANTS, target)
            else:
                keys.watch((top,))
                value = keys.peek((top,))
                if value is not MISSING:
                    tree[top] = value
                continue
            keys.watch(own)
            value = keys.peek(own)
            if value is not MISSING:
                tree[top] = {own[1]: value}
        return tree

    def get_typed(self, section: str, model: type[M]) -> M:
        """``section`` validated by the pydantic ``model`` (reactive); errors name the key."""
        raw = self.get(section) if section else self.all()
        return _validate(section, raw, model)

    def keys(self, prefix: str = "") -> list[str]:
        """Readable leaf keys (optionally under ``prefix``), sorted."""
        config, target, name = unseal(self, ConfigView)
        if prefix:
            _readable(self, prefix, "read")
            return config.keys(prefix)  # type: ignore[no-any-return]
        return [k for k in config.keys()  # noqa: SIM118 (our method, not dict.keys)
                if _refusal(name, target, tuple(k.split(".")), "read") is None]

    def __repr__(self) -> str:
        _config, target, name = unseal(self, ConfigView)
        tenant = f" (tenant {target!r})" if target is not None else ""
        return f"<config view of {name!r}{tenant}>"


#: The name this handle class had when only targeted instances were scoped.
TenantConfig = ConfigView


def _who(name: str, target: str | None) -> str:
    return f"Instance {name!r}" + (f" (target {target!r})" if target is not None else "")


def _refusal(name: str, target: str | None, path: Path, verb: str) -> str | None:
    """Why ``name`` may not ``verb`` ``path``, or None if it may (the rules, in one place)."""
    key = ".".join(path)
    head = path[0]
    if head == APPS and (len(path) == 1 or path[1] != name):
        owner = "every component" if len(path) == 1 else f"component {path[1]!r}"
        return (f"{_who(name, target)} may not {verb} {key!r}: it belongs to {owner}, and "
                f"'{APPS}.<name>' is private to component <name>. Its own section is "
                f"'{APPS}.{name}.*'.")
    if target is not None and head == TENANTS and (len(path) == 1 or path[1] != target):
        owner = "every tenant" if len(path) == 1 else f"tenant {path[1]!r}"
        return (f"{_who(name, target)} may not {verb} {key!r}: it belongs to {owner}. "
                f"Readable: shared keys, '{TENANTS}.{target}.*' and '{APPS}.{name}.*'.")
    return None


def _readable(handle: ConfigView, key: str, verb: str) -> tuple[ConfigProvider, Path]:
    """The service and parsed key, if ``key`` is readable through ``handle``."""
    config, target, name = unseal(handle, ConfigView)
    path = parse_key(key)
    refusal = _refusal(name, target, path, verb)
    if refusal is not None:
        raise TenantIsolationError(refusal)
    return config, path


def _check_write(name: str, target: str | None, path: Path) -> None:
    key = ".".join(path)
    if path[0] == APPS:
        refusal = _refusal(name, target, path, "write")
        if refusal is not None:
            raise TenantIsolationError(refusal)
        if len(path) < 3:
            raise TenantIsolationError(
                f"{_who(name, target)} may not write {key!r}: it may write inside "
                f"'{APPS}.{name}.' (e.g. '{APPS}.{name}.api_key'), not the section itself."
            )
    elif target is not None and not (len(path) >= 3 and path[0] == TENANTS
                                     and path[1] == target):
        section = f"{TENANTS}.{target}"
        raise TenantIsolationError(
            f"{_who(name, target)} may not write {key!r}: it may write only inside "
            f"'{section}.' (e.g. '{section}.db_url') and '{APPS}.{name}.'."
        )


def _owned_by(patterns: list[tuple[str, ...]], path: Path) -> str | None:
    """The pattern covering ``path``: the key or an ancestor matches it (the key is in it),
    or the key is an ancestor of what it matches (a write would replace it)."""
    for pattern in patterns:
        if all(p in ("*", k) for p, k in zip(pattern, path)):
            return ".".join(pattern)
    return None


def _writable(handle: ConfigView, key: str) -> tuple[ConfigProvider, Path]:
    config, target, name = unseal(handle, ConfigView)
    path = parse_key(key)
    _check_write(name, target, path)
    if target is not None:
        owner = _owned_by(config._host_owned, path)
        if owner is not None:
            raise HostOwnedKeyError(
                f"{_who(name, target)} may not write {key!r}: {owner!r} is host-owned (a "
                f"tenant reads it, the host sets it; its quota, say). The host writes it: "
                f"kernel.registry.require('IConfig').set({key!r}, ...) or %config set.")
    return config, path


def _leaves(values: Mapping[str, Any], base: Path) -> list[tuple[Path, Any]]:
    """``(path, value)`` for every leaf of a nested mapping (dotted keys split)."""
    leaves: list[tuple[Path, Any]] = []
    stack: list[tuple[Path, Any]] = [(base, values)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, Mapping) and value:
            stack.extend((path + parse_key(str(k)), v) for k, v in value.items())
        elif not path:
            raise TypeError(f"merge needs a mapping, got {value!r}")
        else:
            leaves.append((path, value))
    return leaves


def _merge(keys: Keyspace, values: Mapping[str, Any], base: Path) -> int:
    leaves = _leaves(values, base)
    with batch():
        for path, value in leaves:
            keys.write(path, value)
    return len(leaves)


def _validate(section: str, raw: Any, model: type[M]) -> M:
    where = section or "(the whole config)"
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"get_typed({section!r}, ...) needs a pydantic model class, got {model!r}")
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigValidationError(
            f"{where} must be a section (a mapping) to validate as {model.__name__}, "
            f"got {short_repr(raw, 40)}."
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for item in exc.errors()[:5]:
            field = ".".join(str(p) for p in item["loc"])
            key = f"{section}.{field}" if section and field else (section or field or where)
            problems.append(f"{key}: {item['msg']} (got {short_repr(item.get('input'), 40)})")
        more = f" (+{exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
        raise ConfigValidationError(
            f"{where} is not a valid {model.__name__}: " + "; ".join(problems) + more
        ) from None
