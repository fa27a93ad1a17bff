"""The kernel's rules about who may provide what and who may call whom, in one place.

Scoping stops a tenant's code from *reaching* another tenant's data. These rules stop it from
being *handed* something it should not have, or from *becoming* what trusted code is handed
(a confused deputy):

* **Reserved contracts.** The kernel's own contracts (``RESERVED_CONTRACTS``: config,
  credentials, storage, logging) and any contract an untargeted (platform) component provides
  are provided by untargeted instances only. A tenant instance that ``@provides`` one is
  refused at ``instantiate`` / ``hot_add`` (``ReservedContractError``): were it registered,
  ``Registry.pick_for`` would hand it, the consumer's own tenant's provider, to that tenant's
  other instances, the platform's own components among them (an acme class providing
  ``IStorage`` would have become the storage of acme's ``SqliteTenantDatabase`` and pointed
  it at globex's file). The registry keeps its side too: where an untargeted provider exists,
  consumers get it, never a tenant's (``Registry.pick_for``), and the host's
  ``registry.require(contract)`` names it without ambiguity.
* **Cross-tenant components.** A component that answers cross-tenant questions (the admin's
  overview of every tenant) says so with ``@component(..., cross_tenant=True)``: tenant
  instances may call it only by the host's grant (``kernel.set_policy``), never merely by
  declaring it in ``depends`` or ``@requires`` (declaring would be granting itself every
  tenant's data). Declaring stays enough for ordinary shared services. A cross-tenant
  component is untargeted.

Host-owned config keys (a tenant reads them, only the host writes them: its quota) are the
config provider's rule, beside its data (``providers/config.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..errors import InvalidPropertiesError, ReservedContractError, UndeclaredCallError

if TYPE_CHECKING:
    from .lifecycle import ComponentInstance

__all__ = ["RESERVED_CONTRACTS", "check_cross_tenant_instance", "check_provides",
           "cross_tenant_refusal"]

#: The kernel's own contracts: only untargeted instances provide them.
RESERVED_CONTRACTS = frozenset({"IConfig", "ICredentials", "IStorage", "ILogging"})


def check_provides(inst: ComponentInstance, others: Iterable[ComponentInstance]) -> None:
    """Refuse a tenant instance that would provide a reserved contract or one an untargeted
    instance provides (``ReservedContractError``, one line naming the rule)."""
    if inst.target is None or not inst.meta.provides:
        return
    others = list(others)
    for contract in inst.meta.provides:
        if contract in RESERVED_CONTRACTS:
            why = "it is one of the kernel's own contracts"
        else:
            owner = next((o.name for o in others
                          if o.target is None and contract in o.meta.provides), None)
            if owner is None:
                continue
            why = f"untargeted instance {owner!r} provides it"
        raise ReservedContractError(
            f"Instance {inst.name!r} (target {inst.target!r}) may not provide {contract!r}: "
            f"{why}, and such contracts are provided by untargeted instances only (a tenant's "
            f"provider would be handed to its tenant's other components, the platform's own "
            f"included). Instantiate it without a target, or provide another contract.")


def check_cross_tenant_instance(inst: ComponentInstance) -> None:
    """A cross-tenant component serves every tenant: it has no target of its own."""
    if inst.meta.cross_tenant and inst.target is not None:
        raise InvalidPropertiesError(
            f"Instance {inst.name!r} of {inst.factory!r} has target {inst.target!r}, but "
            f"{inst.factory!r} is cross-tenant (@component(cross_tenant=True)): it answers "
            f"for every tenant, so it is instantiated without a target.")


def cross_tenant_refusal(caller: str, target: str | None, requested: str,
                         served_factory: str) -> UndeclaredCallError:
    """The error for a tenant instance calling a cross-tenant component without a grant."""
    return UndeclaredCallError(
        f"Instance {caller!r} (target {target!r}) may not call {requested!r}: "
        f"{served_factory!r} is cross-tenant (it answers with every tenant's data), so tenant "
        f"instances reach it only by the host's grant, even when they declare it: "
        f"kernel.set_policy({caller!r}, invoke_allow=[{requested!r}]).")
