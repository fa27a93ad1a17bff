"""Multi-tenant isolation: one factory, three structurally isolated tenant instances.

The code of the original design note, run unchanged but for the import lines. The demo
creates three tenants, queries them via direct and target-routed calls, live-migrates
Globex to a new database URL, then prints status for all three.

    python -m signalpy_lab.examples.multi_tenant
"""

import asyncio

from pydantic import BaseModel

from signalpy_lab.kernel import Kernel, component, computed, lifecycle, requires, runnable
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider


class QueryParams(BaseModel):
    table: str = "users"
    limit: int = 10


@component("tenant-db", version="1.0", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class TenantDatabase:

    @lifecycle.activate
    def activate(self):
        self._target = self.rt.properties.get("target", "unknown")
        self._db_url = self.rt.config.get(
            f"tenants.{self._target}.db_url",
            f"postgres://localhost/{self._target}"
        )
        self.query_log = []

    @computed
    def db_url(self):
        target = self.rt.properties.get("target", "unknown")
        return self.rt.config.get(
            f"tenants.{target}.db_url", f"postgres://localhost/{target}"
        )

    @runnable("query", params=QueryParams, description="Query tenant database")
    async def query(self, params):
        self.query_log.append(params.table)
        return {"tenant": self._target, "db_url": self.db_url(),
                "table": params.table, "rows": [{"id": 1, "tenant": self._target}]}

    @runnable("status", params=BaseModel, description="Tenant DB status")
    async def status(self, params):
        return {"tenant": self._target, "db_url": self.db_url(),
                "queries": len(self.query_log)}


async def build_kernel() -> Kernel:
    """The seed's instantiation and boot sequence."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])

    kernel.instantiate("config", properties={
        "defaults": {
            "tenants": {
                "acme":    {"db_url": "postgres://db1.prod/acme"},
                "globex":  {"db_url": "postgres://db2.prod/globex"},
                "initech": {"db_url": "postgres://db3.prod/initech"},
            }
        }
    })

    kernel.instantiate("tenant-db", "tenant-db-acme",    {"target": "acme"})
    kernel.instantiate("tenant-db", "tenant-db-globex",   {"target": "globex"})
    kernel.instantiate("tenant-db", "tenant-db-initech",  {"target": "initech"})
    await kernel.boot()
    return kernel


async def main() -> None:
    kernel = await build_kernel()
    tenants = ["acme", "globex", "initech"]

    print("== Direct instance calls")
    for tenant in tenants:
        r = await kernel.bus.invoke(f"tenant-db-{tenant}.query", {"table": "users"})
        print(f"  tenant-db-{tenant}.query -> tenant={r['tenant']} db_url={r['db_url']}")

    print("== Target-routed calls (tenant-db.query + target)")
    for tenant in tenants:
        r = await kernel.bus.invoke("tenant-db.query", {"table": "orders", "target": tenant})
        print(f"  tenant-db.query[{tenant}] -> tenant={r['tenant']} db_url={r['db_url']}")

    print("== Live-migrating globex")
    config = kernel.registry.require("IConfig")
    config.set("tenants.globex.db_url", "postgres://db-new.prod/globex-migrated")

    r = await kernel.bus.invoke("tenant-db.query", {"table": "users", "target": "globex"})
    assert r["db_url"] == "postgres://db-new.prod/globex-migrated"
    print(f"  tenant-db.query[globex] -> db_url={r['db_url']}")

    print("== Status")
    for tenant in tenants:
        s = await kernel.bus.invoke("tenant-db.status", {"target": tenant})
        print(f"  {s['tenant']:<8} db_url={s['db_url']:<42} queries={s['queries']}")

    await kernel.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
