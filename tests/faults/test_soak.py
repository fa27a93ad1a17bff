"""Soak: 50 tenants, 100 concurrent routed calls at a time, while config and tenants churn."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from signalpy_lab.errors import UnknownTargetError
from signalpy_lab.examples.multi_tenant import TenantDatabase
from signalpy_lab.kernel import Kernel, graph_stats
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider

TENANTS = [f"t{i:02d}" for i in range(50)]
CHURN = [f"c{i:02d}" for i in range(10)]  # tenants added and removed during the run
CALLS = 10_000
CONCURRENCY = 100


def url(tenant: str, version: int) -> str:
    return f"postgres://db/{tenant}/v{version}"


async def test_soak_routed_calls_under_config_and_tenant_churn(capsys) -> None:
    """Every response carries its own tenant's data; only documented errors; no leaks."""
    rng = random.Random(20261128)
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: {"db_url": url(t, 0)} for t in TENANTS + CHURN}}})
    for tenant in TENANTS:
        kernel.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
    await kernel.boot()
    config = kernel.registry.require("IConfig")
    for tenant in TENANTS:  # link every computed once, so the baseline includes them
        await kernel.bus.invoke("tenant-db.query", {"target": tenant})
    baseline = graph_stats()
    versions = dict.fromkeys(TENANTS + CHURN, 0)
    outcomes: Counter[str] = Counter()
    wrong: list[tuple[str, dict]] = []
    live_churn: set[str] = set()

    async def call(tenant: str) -> None:
        try:
            r = await kernel.bus.invoke("tenant-db.query", {"target": tenant, "table": "t"})
        except UnknownTargetError:
            outcomes["UnknownTargetError"] += 1
            return
        outcomes["ok"] += 1
        if r["tenant"] != tenant or not r["db_url"].startswith(f"postgres://db/{tenant}/v"):
            wrong.append((tenant, r))

    async def churn() -> None:
        tenant = rng.choice(CHURN)
        if tenant in live_churn:
            live_churn.discard(tenant)
            await kernel.hot_remove(f"tenant-db-{tenant}")
        else:
            live_churn.add(tenant)
            await kernel.hot_add("tenant-db", f"tenant-db-{tenant}", {"target": tenant})

    started = time.perf_counter()
    done = 0
    while done < CALLS:
        batch = [call(rng.choice(TENANTS + CHURN)) for _ in range(CONCURRENCY)]
        for _ in range(5):  # config writes interleaved with the calls
            tenant = rng.choice(TENANTS + CHURN)
            versions[tenant] += 1
            config.set(f"tenants.{tenant}.db_url", url(tenant, versions[tenant]))
        await asyncio.gather(*batch, churn())
        done += CONCURRENCY
    elapsed = time.perf_counter() - started

    for tenant in sorted(live_churn):
        await kernel.hot_remove(f"tenant-db-{tenant}")
    for tenant in TENANTS:  # the final value is always the last one written
        r = await kernel.bus.invoke("tenant-db.query", {"target": tenant})
        assert r["db_url"] == url(tenant, versions[tenant])
    after = graph_stats()
    await kernel.shutdown()

    with capsys.disabled():
        print(f"\nsoak: {done} calls in {elapsed:.2f}s ({done / elapsed:,.0f} calls/s), "
              f"outcomes {dict(outcomes)}, wrong-tenant responses {len(wrong)}, "
              f"graph before {baseline} after {after}")
    assert wrong == []
    assert set(outcomes) <= {"ok", "UnknownTargetError"}
    assert outcomes["ok"] > CALLS * 0.8
    assert after == baseline
