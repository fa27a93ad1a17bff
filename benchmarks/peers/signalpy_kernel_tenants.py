"""signalpy-kernel's multi-tenant pattern, scaled to N tenants, for benchmarking.

Why: signalpy-kernel ships ``signalpy/examples/multi_tenant.py``: one
``tenant-db`` factory instantiated once per tenant with a ``target``
property, a ``@computed db_url`` reading ``tenants.<target>.db_url`` from the
config service, and a ``@runnable("query")`` reached by target routing
(``kernel.invoke("tenant-db.query", {..., "target": t})``).  This module
builds that same application the way the example and README do, at N tenants,
so signalpy_lab's equivalent can be compared on boot time, on the cost of
"change one tenant's config, then call that tenant", and on routed-invoke
overhead versus a direct method call.

API facts this relies on (signalpy-kernel 0.4.0, read from its source):

* ``Kernel.discover(classes)``, ``Kernel.instantiate(factory, name, properties)``,
  ``await Kernel.boot()``, ``await Kernel.shutdown()``.
* Routed calls go through ``await kernel.invoke(target, params)``.  ``kernel.bus``
  is a publish/subscribe ``Bus`` with no ``invoke``; routing lives in
  ``kernel._target_routes``: ``"tenant-db.query" -> {target: "<instance>.query"}``,
  filled for every instance whose name differs from its factory name and
  which has a ``target`` property.
* The routed handler validates ``params`` with the pydantic model, wraps the
  dump in a dict subclass with attribute access, records call-graph stats,
  and awaits the method.
* ``kernel.registry.require("IConfig")`` returns the ``ConfigProvider``
  instance; ``config.set(key, value)`` writes the runtime layer and sets the
  per-key signal, so only computeds that read that key are invalidated.
* ``@computed`` replaces the instance attribute with ``Computed.get`` after
  activation, so ``self.db_url()`` returns the cached value.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from signalpy.kernel import Kernel, component, computed, lifecycle, requires, runnable
from signalpy.providers.config import ConfigProvider
from signalpy.providers.credentials import CredentialProvider
from signalpy.providers.logging_provider import LoggingProvider

FACTORY = "tenant-db"


class QueryParams(BaseModel):
    table: str = "users"
    limit: int = 10


@component(FACTORY, version="1.0", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class TenantDatabase:
    """One tenant's database adapter, as in signalpy's multi_tenant example.

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
        return self.rt.config.get(
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
    as the example does for its three tenants.  The phases are timed
    separately because ``discover`` has a cost independent of n: it scans the
    source of every method of each class (``inspect.getsource``) for literal
    ``.invoke("...")``/``.publish("...")`` targets, which re-parses the
    defining modules on every call.
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
        ci = kernel.lifecycle.get_instance(instance_name(i))
        if ci is None or not isinstance(ci.instance, TenantDatabase):
            raise RuntimeError(f"{instance_name(i)} did not activate")
        instances.append(ci.instance)
    return TenantsContext(
        kernel=kernel,
        config=config,
        instances=instances,
        params=QueryParams(table="users"),
        phase_seconds=phases,
    )


async def set_and_invoke(ctx: TenantsContext, i: int, value: str) -> dict[str, Any]:
    """Change tenant t{i}'s db_url, then call that tenant through target routing.

    ``value`` must be a new string object each call: signalpy signals compare
    by identity, so re-setting the very same object notifies nobody.
    """
    ctx.config.set(f"tenants.t{i}.db_url", value)
    result: dict[str, Any] = await ctx.kernel.invoke(
        f"{FACTORY}.query", {"table": "users", "target": f"t{i}"}
    )
    return result


async def direct_call(ctx: TenantsContext, i: int) -> dict[str, Any]:
    """Call tenant t{i}'s ``query`` method directly with pre-validated params.

    This is the component-to-component path signalpy's README recommends
    (``await self.rt.greeter.greet(GreetParams(...))``): no routing, no
    validation, no call-graph recording.
    """
    return await ctx.instances[i].query(ctx.params)


async def routed_invoke(ctx: TenantsContext, i: int) -> dict[str, Any]:
    """Call tenant t{i} through target routing, without changing any config."""
    result: dict[str, Any] = await ctx.kernel.invoke(
        f"{FACTORY}.query", {"table": "users", "target": f"t{i}"}
    )
    return result
