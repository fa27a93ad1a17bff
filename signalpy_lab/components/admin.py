"""``TenantAdmin``: cross-tenant questions, kept apart from tenant instances.

The design note: "For cross-tenant analytics, use a dedicated admin component that reads the
global config directly - keep it separate from tenant-scoped instances." This one is
untargeted, so its config view reads every tenant's ``tenants.*`` section; like every
component it cannot read any other component's ``apps.`` credentials. What only a tenant's
database knows (its row counts, its file size), it asks that tenant's instance over the bus,
which it declared (``depends=["tenant-db"]``): it never opens a tenant's file itself.

It is cross-tenant (``@component(cross_tenant=True)``): a tenant instance that calls it is
refused (``UndeclaredCallError``) unless the host granted it with ``kernel.set_policy``;
declaring ``tenant-admin`` in its own ``depends`` is not enough (that would be granting
itself every tenant's data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..errors import RoutingError
from ..kernel import component, requires, runnable

__all__ = ["TenantAdmin"]


class Empty(BaseModel):
    pass


@component("tenant-admin", version="1.0", depends=["config", "tenant-db"], cross_tenant=True)
@requires(config="IConfig")
class TenantAdmin:
    """Tenant list, per-tenant counts and database sizes."""

    @runnable("tenants", params=Empty, description="Every tenant with a config section")
    def tenants(self, params: Empty) -> list[str]:
        section = self.config.get("tenants", {})
        return sorted(section) if isinstance(section, Mapping) else []

    @runnable("overview", params=Empty, description="Per tenant: db_url, counts, file size")
    async def overview(self, params: Empty) -> dict[str, Any]:
        rows: dict[str, Any] = {}
        for tenant in self.tenants(params):
            section = self.config.get(f"tenants.{tenant}")
            try:
                status = await self.rt.bus.invoke("tenant-db.status", {"target": tenant})
            except RoutingError:
                status = {"db_url": None}  # configured, not (or no longer) served
            rows[tenant] = {
                "db_url": status.get("db_url") or (section or {}).get("db_url"),
                "served": "size_bytes" in status,
                "users": status.get("users"), "orders": status.get("orders"),
                "queries": status.get("queries"), "size_bytes": status.get("size_bytes"),
            }
        return rows
