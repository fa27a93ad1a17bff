"""``CredentialProvider``: secrets scoped structurally to the component (instance) name.

Secrets live under ``apps.<component-name>.<key>``. A component's handle (``self.rt.creds``)
only ever prefixes its own name, so no argument reaches another component's secrets. Reads
are reactive: an effect or computed that read a secret re-runs when it is rotated.

    kernel.instantiate("credentials", properties={
        "secrets": {"tenant-db-acme": {"password": "s3cret"}}})
    creds = kernel.registry.require("ICredentials")
    creds.rotate("tenant-db-acme", "password", "n3w")     # admin side
    self.rt.creds.get("password")                          # component side
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..kernel import component, lifecycle, provides
from ..kernel.reactive import current_scope
from ..kernel.registry import Consumer
from ..kernel.sealed import Sealed, seal, unseal
from .keyspace import MISSING, Keyspace, Path, parse_key

__all__ = ["CredentialHandle", "CredentialProvider"]

APPS = "apps"


def _component_of(path: Path) -> str | None:
    return path[1] if len(path) > 1 else None


@component("credentials", version="1.0")
@provides("ICredentials")
class CredentialProvider:
    """Properties: ``secrets``, a mapping of component name to its secrets."""

    @lifecycle.activate
    def activate(self) -> None:
        secrets = self.rt.properties.get("secrets", {})
        if not isinstance(secrets, Mapping):
            raise TypeError(f"credentials 'secrets' must be a mapping, got {secrets!r}")
        self._keys = Keyspace({APPS: secrets}, owner=current_scope(),
                              label_prefix="creds:", tenant_of=lambda p: None)

    def _path(self, name: str, key: str) -> Path:
        parse_key(name, what="component name", example="tenant-db-acme")
        return (APPS, name, *parse_key(key, what="credential key", example="db.password"))

    def get(self, name: str, key: str, default: Any = None) -> Any:
        """Secret ``key`` of component ``name`` (reactive)."""
        value = self._keys.read(self._path(name, key))
        return default if value is MISSING else value

    def rotate(self, name: str, key: str, value: Any) -> None:
        """Replace a secret; everything that read it re-runs."""
        self._keys.write(self._path(name, key), value)

    set = rotate

    def revoke(self, name: str, key: str) -> bool:
        """Remove a runtime-set secret (the configured one shows through again)."""
        return self._keys.delete(self._path(name, key))

    def keys(self, name: str) -> list[str]:
        """Secret names of component ``name`` (never their values)."""
        prefix = f"{APPS}.{name}."
        return sorted(k[len(prefix):] for k, _ in self._keys.leaves((APPS, name))
                      if k.startswith(prefix))

    def components(self) -> list[str]:
        tree = self._keys.peek((APPS,))
        return sorted(tree) if isinstance(tree, Mapping) else []

    def scoped_for(self, consumer: Consumer) -> CredentialHandle:
        return seal(CredentialHandle, (self, consumer.name))

    def __repr__(self) -> str:
        return "<CredentialProvider>"


class CredentialHandle(Sealed):
    """``self.rt.creds``: one component's own secrets, under ``apps.<its name>.``.

    A sealed handle: the provider and the name it prefixes live outside the object.
    """

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        """Own secret ``key`` (reactive: rotation re-runs what read it)."""
        provider, name = unseal(self, CredentialHandle)
        return provider.get(name, key, default)

    def rotate(self, key: str, value: Any) -> None:
        """Replace one of this component's own secrets."""
        provider, name = unseal(self, CredentialHandle)
        provider.rotate(name, key, value)

    set = rotate

    def keys(self) -> list[str]:
        provider, name = unseal(self, CredentialHandle)
        return provider.keys(name)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<credentials of {unseal(self, CredentialHandle)[1]!r}: {len(self.keys())} keys>"
