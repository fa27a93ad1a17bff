"""``CredentialProvider``: secrets scoped structurally to the component (instance) name.

There is one source of truth, config. A component's secrets live in config under
``apps.<component-name>.<key>``, with per-target sub-sections
``apps.<component-name>.targets.<target>.<key>``; this provider is a scoped view of that
tree. A rotation is an ordinary config write, and every reader of that key, and only they,
re-run:

    @effect
    def on_cred_change(self):
        key = self.rt.creds.get("api_key", target="prod")   # apps.<own name>.targets.prod.api_key

    config.set("apps.db-client.targets.prod.api_key", "key-v2")   # the effect re-runs, once

A component's handle (``self.rt.creds``) only ever prefixes its own name, so no argument
reaches another component's secrets. The ``secrets`` property
(``{"db-client": {"targets": {"prod": {"api_key": ...}}}}``) is seeded into config's defaults
layer under ``apps.`` when this provider activates; ``rotate`` writes config's runtime layer.
Values are never shown by the lab: keys under ``apps.`` are masked in every view.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..errors import ConfigKeyError
from ..kernel import component, lifecycle, provides, requires
from ..kernel.registry import Consumer
from ..kernel.runtime import freeze
from ..kernel.sealed import Sealed, seal, unseal
from .config import APPS, ConfigProvider, ConfigView
from .keyspace import parse_key

__all__ = ["TARGETS", "CredentialHandle", "CredentialProvider"]

#: The sub-section of ``apps.<name>`` holding one section of secrets per target.
TARGETS = "targets"


_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")


def _plain_name(value: object, what: str, example: str) -> str:
    if isinstance(value, str) and _NAME.match(value):
        return value
    hint = (" (get's second argument is the target; pass a fallback as default=...)"
            if what == "credential target" else "")
    raise ConfigKeyError(f"A {what} is a plain name like {example!r} (letters, digits, '-', "
                         f"'_'), got {value!r}{hint}.")


def _key(name: str, key: str, target: str | None) -> str:
    """``apps.<name>[.targets.<target>].<key>``, every part checked."""
    parts = [APPS, _plain_name(name, "component name", "tenant-db-acme")]
    if target is not None:
        parts += [TARGETS, _plain_name(target, "credential target", "prod")]
    parts += parse_key(key, what="credential key", example="db.password")
    return ".".join(parts)


@component("credentials", version="1.0", depends=["config"])
@provides("ICredentials")
@requires(config="IConfig")
class CredentialProvider:
    """Properties: ``secrets``, a mapping of component name to its secrets (seeded into config)."""

    @lifecycle.activate
    def activate(self) -> None:
        self._config = _service_behind(self.rt.config)
        secrets = self.rt.properties.get("secrets", {})
        if not isinstance(secrets, Mapping) or not all(
                isinstance(v, Mapping) for v in secrets.values()):
            raise TypeError("credentials 'secrets' must map component names to mappings of "
                            f"secrets, like {{'db-client': {{'api_key': '...'}}}}; got {secrets!r}")
        for name in secrets:
            _plain_name(name, "component name", "tenant-db-acme")
        if secrets:
            self._config.seed_defaults(APPS, secrets)

    # -- the service (host side) -------------------------------------------------------

    def get(self, name: str, key: str, default: Any = None, *, target: str | None = None) -> Any:
        """Secret ``key`` of component ``name`` (reactive), optionally of one ``target``."""
        return self._config.get(_key(name, key, target), default)

    def rotate(self, name: str, key: str, value: Any, *, target: str | None = None) -> None:
        """Replace a secret (a config write); everything that read it re-runs."""
        self._config.set(_key(name, key, target), value)

    set = rotate

    def revoke(self, name: str, key: str, *, target: str | None = None) -> bool:
        """Remove a runtime-set secret (the configured one shows through again)."""
        return self._config.unset(_key(name, key, target))

    def keys(self, name: str) -> list[str]:
        """Secret names of component ``name`` (never their values), per-target ones included."""
        prefix = f"{APPS}.{_plain_name(name, 'component name', 'tenant-db-acme')}."
        return [k[len(prefix):] for k in self._config.keys(prefix[:-1]) if k.startswith(prefix)]

    def for_target(self, name: str, target: str) -> Mapping[str, Any]:
        """Component ``name``'s secrets for ``target`` as a read-only mapping (reactive)."""
        section = self._config.get(
            f"{APPS}.{_plain_name(name, 'component name', 'tenant-db-acme')}.{TARGETS}."
            f"{_plain_name(target, 'credential target', 'prod')}")
        return freeze(section) if isinstance(section, Mapping) else MappingProxyType({})

    def list_targets(self, name: str) -> list[str]:
        """The targets component ``name`` has secrets for, sorted (reactive)."""
        targets = self._config.get(
            f"{APPS}.{_plain_name(name, 'component name', 'tenant-db-acme')}.{TARGETS}")
        return sorted(targets) if isinstance(targets, Mapping) else []

    def components(self) -> list[str]:
        """Components that have secrets."""
        tree = self._config.peek(APPS)
        return sorted(tree) if isinstance(tree, Mapping) else []

    def scoped_for(self, consumer: Consumer) -> CredentialHandle:
        return seal(CredentialHandle, (self, consumer.name))

    def __repr__(self) -> str:
        return "<CredentialProvider: a view of config's 'apps.' tree>"


def _service_behind(view: ConfigView) -> ConfigProvider:
    """The config service behind this provider's own view (module-private, never handed out).

    The credentials provider is the one component that reads every ``apps.`` section, the
    way the host does; it is kernel code, so it unseals its own view rather than asking the
    kernel for a privilege tenant code could also ask for.
    """
    return unseal(view, ConfigView)[0]  # type: ignore[no-any-return]


class CredentialHandle(Sealed):
    """``self.rt.creds``: one component's own secrets, under ``apps.<its name>.``.

    A sealed handle: the provider and the name it prefixes live outside the object.
    """

    __slots__ = ()

    def get(self, key: str, target: str | None = None, default: Any = None) -> Any:
        """Own secret ``key``; with ``target``, ``apps.<own>.targets.<target>.<key>``.

        Reactive: a rotation re-runs exactly the computeds and effects that read this key.
        """
        provider, name = unseal(self, CredentialHandle)
        return provider.get(name, key, default, target=target)

    def for_target(self, target: str) -> Mapping[str, Any]:
        """This component's secrets for ``target``, as a read-only mapping (reactive)."""
        provider, name = unseal(self, CredentialHandle)
        return provider.for_target(name, target)  # type: ignore[no-any-return]

    def list_targets(self) -> list[str]:
        """The targets this component has secrets for, sorted (reactive)."""
        provider, name = unseal(self, CredentialHandle)
        return provider.list_targets(name)  # type: ignore[no-any-return]

    def rotate(self, key: str, value: Any, target: str | None = None) -> None:
        """Replace one of this component's own secrets."""
        provider, name = unseal(self, CredentialHandle)
        provider.rotate(name, key, value, target=target)

    set = rotate

    def keys(self) -> list[str]:
        """This component's secret names (never their values)."""
        provider, name = unseal(self, CredentialHandle)
        return provider.keys(name)  # type: ignore[no-any-return]

    @property
    def name(self) -> str:
        """The component whose secrets these are."""
        return unseal(self, CredentialHandle)[1]  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<credentials of {unseal(self, CredentialHandle)[1]!r}: {len(self.keys())} keys>"
