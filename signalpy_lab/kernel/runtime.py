"""The per-instance Runtime (``self.rt``): properties and scoped handles to the providers.

The kernel builds one Runtime per instance. Its handles are bound on first use through the
registry, so each provider decides the scope: config sees the instance's own tenant section,
credentials live under ``apps.<instance-name>.``, storage under the instance's own prefix.
The Runtime keeps no reference to the kernel itself; its bus handle can only call and publish
as this instance (see ``Bus.scoped_for``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from .registry import Consumer, Registry

__all__ = ["CONTRACTS", "FrozenProperties", "Runtime", "freeze"]

#: Runtime attribute -> contract of the provider that serves it.
CONTRACTS: dict[str, str] = {
    "config": "IConfig",
    "creds": "ICredentials",
    "storage": "IStorage",
    "log": "ILogging",
}


def freeze(value: Any) -> Any:
    """A deep read-only copy: mappings become ``FrozenProperties``, lists become tuples."""
    if isinstance(value, Mapping):
        return FrozenProperties(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set):
        return frozenset(freeze(v) for v in value)
    return value


class FrozenProperties(Mapping[str, Any]):
    """Read-only, deeply frozen instance properties (an instance cannot change its target)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_data", MappingProxyType({k: freeze(v) for k, v in data.items()}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("instance properties are read-only")

    def __repr__(self) -> str:
        return repr(dict(self._data))

    def thaw(self) -> dict[str, Any]:
        """A plain mutable deep copy."""
        return {k: (v.thaw() if isinstance(v, FrozenProperties) else v) for k, v in self.items()}


class Runtime:
    """What an instance knows of the world: its name, properties and scoped services."""

    __slots__ = ("_name", "_factory", "_properties", "_registry", "_bus", "_handles")

    def __init__(self, name: str, factory: str, properties: FrozenProperties,
                 registry: Registry, bus_handle: Any) -> None:
        self._name = name
        self._factory = factory
        self._properties = properties
        self._registry = registry
        self._bus = bus_handle
        self._handles: dict[str, Any] = {}

    @property
    def name(self) -> str:
        """The instance name (also its component name for credentials and storage scoping)."""
        return self._name

    component_name = name

    @property
    def factory(self) -> str:
        return self._factory

    @property
    def properties(self) -> FrozenProperties:
        """The instance properties given to ``instantiate`` (read-only)."""
        return self._properties

    @property
    def target(self) -> str | None:
        """The tenant this instance serves, from its ``target`` property."""
        target = self._properties.get("target")
        return str(target) if target is not None else None

    @property
    def consumer(self) -> Consumer:
        return Consumer(self._name, self._factory, self.target)

    @property
    def bus(self) -> Any:
        """Call handlers and publish events as this instance."""
        return self._bus

    def service(self, contract: str) -> Any:
        """The consumer-scoped handle of any contract, bound once and cached."""
        handle = self._handles.get(contract)
        if handle is None:
            handle = self._registry.bind(contract, self.consumer)
            self._handles[contract] = handle
        return handle

    @property
    def config(self) -> Any:
        """Config as this instance may see it (its own tenant section plus shared keys)."""
        return self.service(CONTRACTS["config"])

    @property
    def creds(self) -> Any:
        """Credentials under ``apps.<instance-name>.``; reads are reactive."""
        return self.service(CONTRACTS["creds"])

    @property
    def storage(self) -> Any:
        """Key/value files under this instance's own prefix."""
        return self.service(CONTRACTS["storage"])

    @property
    def log(self) -> Any:
        """A logger named after this instance."""
        return self.service(CONTRACTS["log"])

    def __repr__(self) -> str:
        return f"Runtime(name={self._name!r}, factory={self._factory!r}, target={self.target!r})"
