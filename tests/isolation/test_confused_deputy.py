"""An adversary using only the declared API, against the platform's own components.

acme's author writes component classes; the host instantiates them for tenant acme, as it
instantiates any tenant's code. The attacks make *trusted* code do the work (a confused
deputy) or let a tenant grant itself what only the host should:

    squatting   acme's class @provides("IStorage") -> acme's SqliteTenantDatabase gets it
                and opens globex's file                      (refused at instantiate)
    quota       acme raises tenants.acme.quota.rate itself; or respells its limit to start
                a fresh window; or calls its database past quota.query (host-owned keys,
                windows by meaning, a host guard)
    admin       acme's class depends=["tenant-admin"]: every tenant's overview for free
                (cross-tenant components need the host's grant)

Each test reads as the attack, then what the platform still guarantees.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from signalpy_lab.errors import (
    HostOwnedKeyError,
    QuotaExceededError,
    ReservedContractError,
    UndeclaredCallError,
)
from signalpy_lab.examples.sqlite_tenants import build_kernel, db_file, onboard
from signalpy_lab.kernel import Kernel, component, provides, requires, runnable
from signalpy_lab.kernel.registry import Consumer

TENANTS = ("acme", "globex")


@pytest.fixture
async def kernel(tmp_path) -> Any:
    """acme and globex on real SQLite files, each with a user, a quota and the admin."""
    kernel = build_kernel(tmp_path, default_rate="1000/minute")
    await kernel.boot()
    for tenant in TENANTS:
        await onboard(kernel, tenant)
        await kernel.invoke("tenant-db.add_user", {
            "target": tenant, "name": f"{tenant} user", "email": f"user@{tenant}.test"})
    yield kernel
    if kernel.state.value == "running":
        await kernel.shutdown()


def globex_emails(kernel: Kernel) -> list[str]:
    with closing(sqlite3.connect(db_file(kernel, "globex"))) as conn:
        return [email for (email,) in conn.execute("SELECT email FROM users ORDER BY id")]


# -- 1. contract squatting ------------------------------------------------------------------


class _GlobexStorage:
    """What a squatter hands out as 'storage': the real root, shifted to globex's folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / "tenant-db-globex" / key


@component("sneaky-storage", depends=["config"])
@provides("IStorage")
class SneakyStorage:
    """acme's class: provides IStorage, scoped for its tenant's consumers, pointing at globex."""

    def scoped_for(self, consumer: Consumer) -> Any:
        return _GlobexStorage(Path("."))


@component("sneaky-config")
@provides("IConfig")
class SneakyConfig:
    """acme's class: provides IConfig, answering 100000/second for any quota rate."""

    def get(self, key: str, default: Any = None) -> Any:
        return "100000/second" if key.endswith("quota.rate") else default


@pytest.mark.parametrize(("cls", "contract"), [(SneakyStorage, "IStorage"),
                                              (SneakyConfig, "IConfig")])
async def test_a_tenant_class_cannot_provide_the_kernels_own_contracts(
        kernel, cls, contract) -> None:
    """Instantiated for acme, a class that provides one of the kernel's contracts is refused
    at hot_add, naming the rule; the host's require stays unambiguous; after restarting
    acme's database it still reads and writes only acme's own file."""
    before = globex_emails(kernel)
    with pytest.raises(ReservedContractError,
                       match=rf"may not provide '{contract}': it is one of the kernel's own"):
        await kernel.hot_add(cls, f"{cls.__name__.lower()}-acme", {"target": "acme"})
    assert [] == [i.name for i in kernel.instances() if i.name.endswith("-acme")
                  and i.factory not in ("tenant-db", "quota")]
    kernel.registry.require(contract)  # one provider, the platform's: no AmbiguousServiceError
    await kernel.restart("tenant-db-acme")
    await kernel.restart("quota-acme")
    await kernel.invoke("tenant-db.add_user", {"target": "acme", "name": "x",
                                               "email": "x@acme.test"})
    assert before == globex_emails(kernel)
    assert "1000 per 1 minute" == (await kernel.invoke("quota.stats",
                                                       {"target": "acme"}))["limit"]


async def test_a_contract_a_platform_component_provides_is_not_a_tenants_to_provide(
        kernel) -> None:
    """The platform provides IReport untargeted; acme's class providing IReport is refused:
    acme's other components would have been handed acme's report service instead."""

    @component("reports")
    @provides("IReport")
    class Reports:
        def tenants(self) -> list[str]:
            return list(TENANTS)

    @component("acme-reports")
    @provides("IReport")
    class AcmeReports:
        def tenants(self) -> list[str]:
            return ["only-acme"]

    await kernel.hot_add(Reports, "reports")
    with pytest.raises(ReservedContractError, match="untargeted instance 'reports' provides it"):
        await kernel.hot_add(AcmeReports, "acme-reports", {"target": "acme"})


async def test_a_shared_provider_wins_over_a_tenants_one_registered_before_it(kernel) -> None:
    """Had a tenant's provider of IReport come first (allowed then: nobody shared it), the
    platform's untargeted one, once added, is what acme's components get, and the host's
    require names it."""

    @component("acme-reports")
    @provides("IReport")
    class AcmeReports:
        def tenants(self) -> list[str]:
            return ["only-acme"]

    @component("reports")
    @provides("IReport")
    class Reports:
        def tenants(self) -> list[str]:
            return list(TENANTS)

    @component("reader", depends=["config"])
    @requires(reports="IReport")
    class Reader:
        @runnable("read")
        def read(self, params: Any) -> list[str]:
            return self.reports.tenants()

    await kernel.hot_add(AcmeReports, "acme-reports", {"target": "acme"})
    await kernel.hot_add(Reports, "reports")
    await kernel.hot_add(Reader, "reader-acme", {"target": "acme"})
    assert list(TENANTS) == await kernel.invoke("reader-acme.read")
    assert list(TENANTS) == kernel.registry.require("IReport").tenants()


# -- 2. the tenant's own quota ----------------------------------------------------------------


@component("greedy", depends=["config"])
class Greedy:
    """acme's class: raises its own quota, then calls its database directly."""

    @runnable("raise_quota")
    def raise_quota(self, params: Any) -> None:
        self.rt.config.set("tenants.acme.quota.rate", "100000/minute")

    @runnable("unset_quota")
    def unset_quota(self, params: Any) -> None:
        self.rt.config.unset("tenants.acme.quota")


async def test_a_tenant_cannot_raise_its_own_quota(kernel) -> None:
    """The limit lives in acme's section, but the host owns it: acme's write is refused,
    the host's limit of 5/minute holds for 30 calls."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.quota.rate", "5/minute")
    await kernel.hot_add(Greedy, "greedy-acme", {"target": "acme"})
    with pytest.raises(HostOwnedKeyError, match=r"'tenants\.\*\.quota' is host-owned"):
        await kernel.invoke("greedy-acme.raise_quota")
    with pytest.raises(HostOwnedKeyError):
        await kernel.invoke("greedy-acme.unset_quota")
    passed = 0
    for _ in range(30):
        try:
            await kernel.invoke("quota.query", {"target": "acme"})
            passed += 1
        except QuotaExceededError:
            pass
    assert 5 == passed
    assert "'5/minute'" == repr(config.get("tenants.acme.quota.rate"))


async def test_respelling_a_limit_does_not_start_a_fresh_window(kernel) -> None:
    """4/minute, used up; rewritten as '4 per 60 seconds' (the same limit): still used up."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.quota.rate", "4/minute")
    for _ in range(4):
        await kernel.invoke("quota.query", {"target": "acme"})
    config.set("tenants.acme.quota.rate", "4 per 60 seconds")
    with pytest.raises(QuotaExceededError):
        await kernel.invoke("quota.query", {"target": "acme"})


@component("direct", depends=["config", "tenant-db"])
class Direct:
    """acme's class: calls acme's database itself, past quota.query."""

    @runnable("query")
    async def query(self, params: Any) -> Any:
        return await self.rt.bus.invoke("tenant-db.query", {"target": "acme"})


async def test_a_host_guard_meters_every_way_into_the_tenants_database(kernel) -> None:
    """With the quota guarding acme's database, the host's tenant-db.query and acme's own
    direct calls count against 3/minute too; quota.query counts once, not twice."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.quota.rate", "3/minute")
    kernel.guard("tenant-db-acme", "quota-acme.check")
    await kernel.hot_add(Direct, "direct-acme", {"target": "acme"})
    await kernel.invoke("quota.query", {"target": "acme"})          # 1
    await kernel.invoke("tenant-db.query", {"target": "acme"})      # 2: the host's path
    await kernel.invoke("direct-acme.query")                        # 3: acme's own code
    for way in (("quota.query", {"target": "acme"}),
                ("tenant-db.query", {"target": "acme"}),
                ("tenant-db-acme.query", {}),
                ("direct-acme.query", None)):
        with pytest.raises(QuotaExceededError, match="Tenant 'acme' is over its quota of 3"):
            await kernel.invoke(*way)
    assert 3 == (await kernel.invoke("quota.stats", {"target": "acme"}))["allowed"]
    assert (await kernel.invoke("tenant-db.query", {"target": "globex"}))["tenant"] == "globex"
    await kernel.hot_remove("quota-acme")  # the guard goes with it
    assert {} == kernel.bus.guards()
    await kernel.invoke("tenant-db.query", {"target": "acme"})


# -- 3. declaring is not granting, for cross-tenant components -----------------------------


@component("nosy", depends=["config", "tenant-admin"])
class Nosy:
    """acme's class: declares the admin, as if that were a grant."""

    @runnable("peek")
    async def peek(self, params: Any) -> Any:
        return await self.rt.bus.invoke("tenant-admin.overview")


async def test_declaring_a_cross_tenant_component_is_not_a_grant(kernel) -> None:
    """acme's class depends on tenant-admin: its call is still refused, naming why; the
    host's explicit grant lets it through; an untargeted platform component's declaration
    is enough, as for any shared service."""
    await kernel.hot_add(Nosy, "nosy-acme", {"target": "acme"})
    with pytest.raises(UndeclaredCallError,
                       match="'tenant-admin' is cross-tenant .* only by the host's grant"):
        await kernel.invoke("nosy-acme.peek")
    kernel.set_policy("nosy-acme", invoke_allow=["tenant-admin.overview"])
    assert set(TENANTS) == set(await kernel.invoke("nosy-acme.peek"))
    await kernel.hot_add(Nosy, "nosy-platform")
    assert set(TENANTS) == set(await kernel.invoke("nosy-platform.peek"))
