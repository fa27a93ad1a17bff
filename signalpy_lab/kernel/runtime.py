"""The per-instance Runtime (``self.rt``): properties and scoped handles to the providers.

The kernel issues one Runtime per instance. Its handles are bound on first use through the
registry, so each provider decides the scope: config sees the instance's own tenant section,
credentials live under ``apps.<instance-name>.``, storage under the instance's own prefix.

The Runtime is a sealed handle: its name, target and the registry it binds through live
outside the object, so tenant code cannot read the registry from it nor rewrite its own
identity. Properties are a deep read-only copy (``MappingProxyType``); the kernel keeps its
own copy, so nothing an instance holds is shared with the kernel's record of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .registry import Consumer, Registry
from .sealed import Sealed, seal, unseal

__all__ = ["CONTRACTS", "Runtime", "freeze", "issue_runtime", "thaw"]

#: Runtime attribute -> contract of the provider that serves it.
CONTRACTS: dict[str, str] = {
    "config": "IConfig",
    "creds": "ICredentials",
    "storage": "IStorage",
    "log": "ILogging",
}


def freeze(value: Any) -> Any:
    """A deep read-only copy: mappings become ``MappingProxyType``, lists become tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A plain mutable deep copy of a frozen (or any) value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class _Record:
    consumer: Consumer
    properties: Mapping[str, Any]
    registry: Registry
    bus: Any
    handles: dict[str, Any] = field(default_factory=dict)


class Runtime(Sealed):
    """What an instance knows of the world: its name, properties and scoped services."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """The instance name (also its component name for credentials and storage scoping)."""
        return unseal(self, Runtime).consumer.name  # type: ignore[no-any-return]

    component_name = name

    @property
    def factory(self) -> str:
        return unseal(self, Runtime).consumer.factory  # type: ignore[no-any-return]

    @property
    def properties(self) -> Mapping[str, Any]:
        """The instance properties given to ``instantiate`` (deeply read-only)."""
        return unseal(self, Runtime).properties  # type: ignore[no-any-return]

    @property
    def target(self) -> str | None:
        """The tenant this instance serves (fixed at instantiation)."""
        return unseal(self, Runtime).consumer.target  # type: ignore[no-any-return]

    @property
    def bus(self) -> Any:
        """Call handlers and publish events as this instance."""
        return unseal(self, Runtime).bus

    async def publish(self, topic: str, data: Any = None) -> int:
        """Publish an event as this instance (the same as ``rt.bus.publish``, awaitable)."""
        return unseal(self, Runtime).bus.publish(topic, data)  # type: ignore[no-any-return]

    def service(self, contract: str) -> Any:
        """The consumer-scoped handle of any contract, bound once and cached."""
        record: _Record = unseal(self, Runtime)
        handle = record.handles.get(contract)
        if handle is None:
            handle = record.registry.bind(contract, record.consumer)
            record.handles[contract] = handle
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
        consumer = unseal(self, Runtime).consumer
        return f"Runtime(name={consumer.name!r}, factory={consumer.factory!r}, " \
               f"target={consumer.target!r})"


def issue_runtime(consumer: Consumer, properties: Mapping[str, Any], registry: Registry,
                  bus_handle: Any) -> Runtime:
    """The kernel's way to make a Runtime (the class itself cannot be constructed)."""
    return seal(Runtime, _Record(consumer, freeze(properties), registry, bus_handle))
