"""signalpy_lab's multi-tenant pattern (the seed example), scaled to N tenants.

Why: the counterpart of ``benchmarks/peers/signalpy_kernel_tenants.py``, with
the same interface (``boot_tenants(n)``, ``set_and_invoke(ctx, i, value)``,
``direct_call(ctx, i)``, ``ctx.db_url_runs()``), so ``benchmarks.run`` measures
both kernels on the same application: boot time at N tenants, "change one
tenant's config, then call that tenant", and routed invoke versus a direct call.

The component is the seed's ``TenantDatabase``
(``signalpy_lab/examples/multi_tenant.py``) reduced to what the peer module
keeps, so both sides run the same body: ``activate`` remembers the target, the
``@computed db_url`` reads ``tenants.<target>.db_url`` from the (tenant-scoped)
config and counts its runs, and ``@runnable("query")`` returns the tenant and
its db_url.  Routed calls go through ``kernel.bus.invoke("tenant-db.query",
{..., "target": t})``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from signalpy_lab.kernel import Kernel, component, computed, lifecycle, requires, runnable
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider

__all__ = [
    "FACTORY",
    "QueryParams",
    "TenantDatabase",
    "TenantsContext",
    "boot_tenants",
    "direct_call",
    "instance_name",
    "routed_invoke",
    "set_and_invoke",
]

FACTORY = "tenant-db"


class QueryParams(BaseModel):
    table: str = "users"
    limit: int = 10


@component(FACTORY, version="1.0", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class TenantDatabase:
    """One tenant's database adapter, as in the seed example.

    ``db_url_runs`` counts executions of the ``db_url`` body so a benchmark can
    check that a config change recomputes exactly one tenant.
    """

    rt: Any  # the kernel attaches a Runtime before activation

    @lifecycle.activate
    def activate(self) -> None:
        self.target: str = self.rt.properties.get("target", "unknown")
        self.db_url_runs = 0

    @computed
    def db_url(self) -> str:
        """Reactive: recomputes when this tenant's config key changes."""
        self.db_url_runs += 1
        target = self.rt.properties.get("target", "unknown")
        return self.rt.config.get(  # type: ignore[no-any-return]
            f"tenants.{target}.db_url", f"postgres://localhost/{target}"
        )

    @runnable("query", params=QueryParams, description="Query tenant database")
    async def query(self, params: QueryParams) -> dict[str, Any]:
        return {"tenant": self.target, "db_url": self.db_url(), "table": params.table}


@dataclass
class TenantsContext:
    """A booted kernel with N tenant instances, and handles a benchmark needs."""

    kernel: Kernel
    config: ConfigProvider
    instances: list[TenantDatabase]  # index i is the instance with target t{i}
    params: QueryParams  # pre-validated params for direct calls
    #: Wall seconds of each boot phase: "discover", "instantiate", "boot".
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def db_url_runs(self) -> int:
        """Total number of times any tenant's ``db_url`` body has run."""
        return sum(inst.db_url_runs for inst in self.instances)

    async def shutdown(self) -> None:
        await self.kernel.shutdown()


def instance_name(i: int) -> str:
    return f"{FACTORY}-t{i}"


async def boot_tenants(n: int) -> TenantsContext:
    """Build and boot a kernel with config, logging, credentials and n tenants.

    Tenant ``t{i}`` gets ``tenants.t{i}.db_url`` seeded in the config defaults,
    as the seed does for its three tenants.  The phases are timed separately,
    like the peer module does.
    """
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])
    t1 = time.perf_counter()
    kernel.instantiate(
        "config",
        properties={
            "defaults": {
                "tenants": {f"t{i}": {"db_url": f"postgres://db/t{i}"} for i in range(n)}
            }
        },
    )
    for i in range(n):
        kernel.instantiate(FACTORY, instance_name(i), {"target": f"t{i}"})
    t2 = time.perf_counter()
    await kernel.boot()
    t3 = time.perf_counter()
    phases.update(discover=t1 - t0, instantiate=t2 - t1, boot=t3 - t2)

    config = kernel.registry.require("IConfig")
    assert isinstance(config, ConfigProvider)
    instances: list[TenantDatabase] = []
    for i in range(n):
        obj = kernel.component(instance_name(i))
        if not isinstance(obj, TenantDatabase):
            raise RuntimeError(f"{instance_name(i)} did not activate: {obj!r}")
        instances.append(obj)
    return TenantsContext(
        kernel=kernel,
        config=config,
        instances=instances,
        params=QueryParams(table="users"),
        phase_seconds=phases,
    )


async def set_and_invoke(ctx: TenantsContext, i: int, value: str) -> dict[str, Any]:
    """Change tenant t{i}'s db_url, then call that tenant through target routing."""
    ctx.config.set(f"tenants.t{i}.db_url", value)
    result: dict[str, Any] = await ctx.kernel.bus.invoke(
        f"{FACTORY}.query", {"table": "users", "target": f"t{i}"}
    )
    return result


async def direct_call(ctx: TenantsContext, i: int) -> dict[str, Any]:
    """Call tenant t{i}'s ``query`` method directly with pre-validated params.

    No routing, no validation, no handler statistics: the floor a routed
    invoke is compared with.
    """
    return await ctx.instances[i].query(ctx.params)


async def routed_invoke(ctx: TenantsContext, i: int) -> dict[str, Any]:
    """Call tenant t{i} through target routing, without changing any config."""
    result: dict[str, Any] = await ctx.kernel.bus.invoke(
        f"{FACTORY}.query", {"table": "users", "target": f"t{i}"}
    )
    return result
