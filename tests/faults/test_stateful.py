"""A stateful property: random instantiate / config set / invoke / hot_remove sequences.

The model is what each tenant should see: whether it is served, and its current db_url.
"""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from signalpy_lab.errors import DuplicateInstanceError, UnknownInstanceError, UnknownTargetError
from signalpy_lab.examples.multi_tenant import TenantDatabase
from signalpy_lab.kernel import Kernel, graph_stats
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider

TENANTS = ["acme", "globex", "initech", "umbrella", "hooli"]
tenants = st.sampled_from(TENANTS)
urls = st.integers(min_value=0, max_value=5).map(lambda v: f"postgres://db/v{v}")


class TenancyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.kernel = Kernel()
        self.kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider])
        self.run(self.kernel.boot())
        self.kernel.discover([TenantDatabase])  # after boot: no default instance is made
        self.config = self.kernel.registry.require("IConfig")
        self.served: set[str] = set()
        self.urls: dict[str, str] = {}
        self.baseline = graph_stats()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def expected_url(self, tenant: str) -> str:
        return self.urls.get(tenant, f"postgres://localhost/{tenant}")

    @rule(tenant=tenants)
    def instantiate(self, tenant: str) -> None:
        name = f"tenant-db-{tenant}"
        if tenant in self.served:
            try:
                self.kernel.instantiate("tenant-db", name, {"target": tenant})
            except DuplicateInstanceError:
                return
            raise AssertionError(f"{name} was instantiated twice")
        self.kernel.instantiate("tenant-db", name, {"target": tenant})
        self.served.add(tenant)

    @rule(tenant=tenants, url=urls)
    def set_url(self, tenant: str, url: str) -> None:
        self.config.set(f"tenants.{tenant}.db_url", url)
        self.urls[tenant] = url

    @rule(tenant=tenants)
    def unset_url(self, tenant: str) -> None:
        self.config.unset(f"tenants.{tenant}.db_url")
        self.urls.pop(tenant, None)

    @rule(tenant=tenants)
    def invoke(self, tenant: str) -> None:
        try:
            r = self.run(self.kernel.bus.invoke("tenant-db.query", {"target": tenant}))
        except UnknownTargetError:
            assert tenant not in self.served
            return
        assert tenant in self.served
        assert (r["tenant"], r["db_url"]) == (tenant, self.expected_url(tenant))

    @rule(tenant=tenants)
    def hot_remove(self, tenant: str) -> None:
        try:
            self.run(self.kernel.hot_remove(f"tenant-db-{tenant}"))
        except UnknownInstanceError:
            assert tenant not in self.served
            return
        self.served.discard(tenant)

    @precondition(lambda self: self.served)
    @invariant()
    def status_matches_the_model(self) -> None:
        for tenant in sorted(self.served):
            s = self.run(self.kernel.bus.invoke(f"tenant-db-{tenant}.status"))
            assert s["db_url"] == self.expected_url(tenant)

    def teardown(self) -> None:
        for tenant in list(self.served):
            self.run(self.kernel.hot_remove(f"tenant-db-{tenant}"))
        assert graph_stats()["links"] <= self.baseline["links"]
        self.run(self.kernel.shutdown())
        self.loop.close()


TenancyMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30,
                                            deadline=None)
test_tenancy_model = TenancyMachine.TestCase
