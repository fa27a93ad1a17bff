"""The service registry: which active instance provides which contract.

A contract is a name (``'IConfig'``). Several instances may provide one contract (each tenant's
database); ``require`` then needs to know which, and ``bind`` picks the consumer's own
tenant's provider first. Providers that scope per consumer implement ``scoped_for(consumer)``
and consumers receive that handle instead of the service.

A contract an untargeted instance provides is shared: consumers get that provider, never a
tenant's, and ``require`` names it (``kernel.rules``: a tenant instance may not provide such
a contract at all; this side holds even for one registered before the rule could refuse it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..errors import AmbiguousServiceError, ServiceNotFoundError, choices
from .sealed import service_proxy

__all__ = ["Consumer", "Registry", "ScopedProvider", "ServiceEntry"]


@dataclass(frozen=True, slots=True)
class Consumer:
    """Who asks for a service: what a provider needs to scope the handle it gives out."""

    name: str
    factory: str
    target: str | None


@runtime_checkable
class ScopedProvider(Protocol):
    """A service that hands each consumer its own scoped view."""

    def scoped_for(self, consumer: Consumer) -> Any: ...


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    contract: str
    instance: str
    target: str | None
    service: Any
    hidden: frozenset[str] = frozenset()  # methods consumers may not call (lifecycle hooks)


class Registry:
    """Services by contract name, in registration order."""

    def __init__(self) -> None:
        self._by_contract: dict[str, dict[str, ServiceEntry]] = {}

    def register(self, contract: str, instance: str, service: Any,
                 target: str | None = None, hidden: frozenset[str] = frozenset()) -> None:
        self._by_contract.setdefault(contract, {})[instance] = ServiceEntry(
            contract, instance, target, service, hidden
        )

    def unregister_instance(self, instance: str) -> None:
        """Remove every service ``instance`` provides."""
        for contract in list(self._by_contract):
            entries = self._by_contract[contract]
            entries.pop(instance, None)
            if not entries:
                del self._by_contract[contract]

    def contracts(self) -> list[str]:
        return sorted(self._by_contract)

    def providers(self, contract: str) -> list[ServiceEntry]:
        """Every active provider of ``contract`` (possibly none)."""
        return list(self._by_contract.get(contract, {}).values())

    def get(self, contract: str, instance: str | None = None) -> Any | None:
        """The service, or ``None`` if nobody provides it (ambiguity still raises)."""
        if contract not in self._by_contract:
            return None
        return self.require(contract, instance)

    def require(self, contract: str, instance: str | None = None) -> Any:
        """The one service providing ``contract`` (or the one from ``instance``).

        >>> config = kernel.registry.require("IConfig")
        """
        entries = self._by_contract.get(contract)
        if not entries:
            raise ServiceNotFoundError(
                f"No active instance provides {contract!r}. {choices(contract, self._by_contract)}"
            )
        if instance is not None:
            entry = entries.get(instance)
            if entry is None:
                raise ServiceNotFoundError(
                    f"Instance {instance!r} does not provide {contract!r}. "
                    f"Providers: {', '.join(map(repr, sorted(entries)))}."
                )
            return entry.service
        shared = [e for e in entries.values() if e.target is None]
        if len(shared) == 1:  # the platform's provider; tenants' ones are named explicitly
            return shared[0].service
        if len(entries) > 1:
            raise AmbiguousServiceError(
                f"{len(entries)} instances provide {contract!r}; name one with "
                f"require({contract!r}, instance=...): {', '.join(map(repr, sorted(entries)))}."
            )
        return next(iter(entries.values())).service

    def pick_for(self, contract: str, consumer: Consumer) -> ServiceEntry:
        """The provider a consumer gets: the untargeted one if there is one, else its own
        tenant's."""
        entries = self._by_contract.get(contract)
        if not entries:
            raise ServiceNotFoundError(
                f"{consumer.name!r} requires {contract!r} but no active instance provides it. "
                f"{choices(contract, self._by_contract)}"
            )
        shared = [e for e in entries.values() if e.target is None]
        # A shared (untargeted) provider wins: a tenant's provider of the same contract is
        # never handed to anyone (kernel.rules); per-tenant contracts go to the own tenant's.
        candidates = shared or [e for e in entries.values() if e.target == consumer.target]
        if len(candidates) != 1:
            raise AmbiguousServiceError(
                f"{consumer.name!r} requires {contract!r}, which "
                f"{len(candidates) or 'no'} candidate instance(s) of its tenant "
                f"{consumer.target!r} provide: {', '.join(map(repr, sorted(entries)))}."
            )
        return candidates[0]

    def bind(self, contract: str, consumer: Consumer) -> Any:
        """What ``consumer`` gets for ``contract``: a scoped handle when the provider has one."""
        entry = self.pick_for(contract, consumer)
        service = entry.service
        scoped_for = getattr(service, "scoped_for", None)  # ScopedProvider, without the slow
        bound = scoped_for(consumer) if scoped_for is not None else service  # Protocol check
        if bound is service:
            # Another component's object: only its public methods, never its own `rt`.
            return service_proxy(service, entry.hidden)
        return bound
