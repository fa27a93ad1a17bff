"""``ConfigProvider``: reactive, layered configuration with per-key subscriptions.

    kernel.instantiate("config", properties={"defaults": {"tenants": {"acme": {...}}}})
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.db_url", "postgres://new/acme")   # only acme's readers react
    config.explain("tenants.acme.db_url")                      # value and where it came from

Scoping: an untargeted component gets this service itself (the whole config, for admin or
analytics components). A targeted instance (``{"target": "acme"}``) gets a ``TenantConfig``
that reads shared keys and its own ``tenants.acme.`` section, writes only inside that section,
and raises ``TenantIsolationError`` for anything under another tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TenantIsolationError
from ..kernel import component, lifecycle, provides
from ..kernel.reactive import batch, current_scope
from ..kernel.registry import Consumer
from ..kernel.sealed import Sealed, seal, service_proxy, unseal
from .keyspace import MISSING, Keyspace, Path, parse_key

__all__ = ["APPS", "TENANTS", "ConfigProvider", "ConfigValue", "TenantConfig", "is_secret_key"]

#: The top-level section holding one subsection per tenant.
TENANTS = "tenants"
#: The top-level section holding one private subsection per component: its credentials.
APPS = "apps"


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
        self._keys = Keyspace(defaults, owner=current_scope(), tenant_of=tenant_of)

    # -- the service -------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        """The value at ``key`` (reactive: a computed reading it re-runs when it changes)."""
        value = self._keys.read(parse_key(key))
        return default if value is MISSING else value

    def set(self, key: str, value: Any) -> None:
        """Set ``key`` in the runtime layer; its readers, and only they, go stale."""
        self._keys.write(parse_key(key), value)

    def unset(self, key: str) -> bool:
        """Remove runtime values at or below ``key``; returns whether anything was removed."""
        return self._keys.delete(parse_key(key))

    def merge(self, values: Mapping[str, Any], prefix: str = "") -> int:
        """Set every leaf of a nested mapping (siblings keep their values); one batch.

        Returns how many keys were set.
        """
        base = parse_key(prefix) if prefix else ()
        count = 0
        with batch():
            stack: list[tuple[Path, Any]] = [(base, values)]
            while stack:
                path, value = stack.pop()
                if isinstance(value, Mapping) and value:
                    for key, sub in value.items():
                        stack.append((path + parse_key(str(key)), sub))
                else:
                    if not path:
                        raise TypeError(f"merge needs a mapping, got {value!r}")
                    self._keys.write(path, value)
                    count += 1
        return count

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

    def scoped_for(self, consumer: Consumer) -> Any:
        """What a component receives: this service, or a tenant view for a targeted one."""
        if consumer.target is None:
            return service_proxy(self, hidden=frozenset({"activate"}))
        return _issue_tenant_config(self, consumer.target, consumer.name)

    def __repr__(self) -> str:
        return "<ConfigProvider>"


class TenantConfig(Sealed):
    """A targeted instance's view of config: shared keys plus its own tenant section.

    A sealed handle: the service and the target live outside the object, and no method
    returns the service, so neither can be read or rewritten through it.
    """

    __slots__ = ()

    @property
    def target(self) -> str:
        return unseal(self, TenantConfig)[1]  # type: ignore[no-any-return]

    @property
    def section(self) -> str:
        """This instance's own section, e.g. ``'tenants.acme'``."""
        return f"{TENANTS}.{unseal(self, TenantConfig)[1]}"

    def get(self, key: str, default: Any = None) -> Any:
        """Like ``ConfigProvider.get``, within this tenant's view."""
        config, path = _readable_path(self, key)
        value = config._keys.read(path)
        return default if value is MISSING else value

    def peek(self, key: str, default: Any = None) -> Any:
        return _readable(self, key).peek(key, default)

    def source(self, key: str) -> str | None:
        return _readable(self, key).source(key)

    def explain(self, key: str) -> ConfigValue:
        return _readable(self, key).explain(key)

    def set(self, key: str, value: Any) -> None:
        """Set a key inside this tenant's own section."""
        _writable(self, key).set(key, value)

    def unset(self, key: str) -> bool:
        return _writable(self, key).unset(key)

    def keys(self, prefix: str = "") -> list[str]:
        """Readable leaf keys: shared ones and this tenant's section."""
        if prefix:
            return _readable(self, prefix).keys(prefix)
        config, target, _instance = unseal(self, TenantConfig)
        own = f"{TENANTS}.{target}."
        return [k for k in config.keys()  # noqa: SIM118 (our method, not dict.keys)
                if not k.startswith(f"{TENANTS}.") or k.startswith(own)]

    def __repr__(self) -> str:
        _config, target, instance = unseal(self, TenantConfig)
        return f"<config view of {instance!r} (tenant {target!r})>"


def _issue_tenant_config(config: ConfigProvider, target: str, instance: str) -> TenantConfig:
    return seal(TenantConfig, (config, target, instance))


def _readable(handle: TenantConfig, key: str) -> ConfigProvider:
    """The service, if ``key`` is readable through ``handle`` (never handed to the tenant)."""
    return _readable_path(handle, key)[0]


def _readable_path(handle: TenantConfig, key: str) -> tuple[ConfigProvider, Path]:
    config, target, instance = unseal(handle, TenantConfig)
    path = parse_key(key)
    if path[0] == TENANTS and (len(path) == 1 or path[1] != target):
        owner = "every tenant" if len(path) == 1 else f"tenant {path[1]!r}"
        raise TenantIsolationError(
            f"Instance {instance!r} (target {target!r}) may not read {key!r}: it belongs "
            f"to {owner}. Readable: shared keys and '{TENANTS}.{target}.*'."
        )
    return config, path


def _writable(handle: TenantConfig, key: str) -> ConfigProvider:
    config, target, instance = unseal(handle, TenantConfig)
    path = parse_key(key)
    if len(path) < 3 or path[0] != TENANTS or path[1] != target:
        section = f"{TENANTS}.{target}"
        raise TenantIsolationError(
            f"Instance {instance!r} (target {target!r}) may not write {key!r}: it may "
            f"write only inside '{section}.' (e.g. '{section}.db_url')."
        )
    return config  # type: ignore[no-any-return]
