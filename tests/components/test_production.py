"""The design note's production considerations on real parts: SQLite files, quotas, admin.

    storage root/
      tenant-db-acme/acme.db      tenant-db-globex/globex.db -> globex-v2.db (migrated)
      .archive/initech-<ts>.db    (offboarded)
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from signalpy_lab.errors import (
    DbUrlError,
    QuotaExceededError,
    TenantIsolationError,
    UndeclaredCallError,
)
from signalpy_lab.examples.sqlite_tenants import (
    ARCHIVE,
    build_kernel,
    db_file,
    offboard,
    onboard,
    open_files,
)
from signalpy_lab.kernel import component, runnable

TENANTS = ("acme", "globex", "initech")


@pytest.fixture
async def kernel(tmp_path):
    kernel = build_kernel(tmp_path, default_rate="1000/minute")
    await kernel.boot()
    for tenant in TENANTS:
        await onboard(kernel, tenant)
        for i in range(3):
            await kernel.invoke("tenant-db.add_user", {
                "target": tenant, "name": f"{tenant}-{i}", "email": f"{i}@{tenant}.test"})
    yield kernel
    if kernel.state.value == "running":
        await kernel.shutdown()


async def status(kernel, tenant: str) -> dict:
    return await kernel.invoke("tenant-db.status", {"target": tenant})


async def test_each_tenant_owns_a_real_file_in_its_own_storage(kernel, tmp_path) -> None:
    """Rows come from the tenant's own file, which sqlite3 itself can open and read."""
    for tenant in TENANTS:
        path = tmp_path / f"tenant-db-{tenant}" / f"{tenant}.db"
        assert path == db_file(kernel, tenant)
        with closing(sqlite3.connect(path)) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM users ORDER BY id")]
        assert [f"{tenant}-{i}" for i in range(3)] == names
    rows = await kernel.invoke("tenant-db.query", {"target": "globex", "limit": 2})
    assert ["globex-2", "globex-1"] == [r["name"] for r in rows["rows"]]


async def test_parameters_are_bound_never_formatted(kernel) -> None:
    """A name full of SQL is stored as text; an unknown table is refused by validation."""
    evil = "x'); DROP TABLE users; --"
    await kernel.invoke("tenant-db.add_user", {"target": "acme", "name": evil,
                                               "email": "evil@acme.test"})
    rows = (await kernel.invoke("tenant-db.query", {"target": "acme", "limit": 1}))["rows"]
    assert evil == rows[0]["name"]
    with pytest.raises(ValueError, match="table: Input should be 'users' or 'orders'"):
        await kernel.invoke("tenant-db.query", {"target": "acme", "table": "sqlite_master"})


async def test_a_live_migration_copies_the_data_and_touches_no_other_tenant(kernel) -> None:
    """globex moves to a new file with its rows; acme and initech neither reconnect nor rerun."""
    before = {t: await status(kernel, t) for t in TENANTS}
    runs = {n.label: n.runs for n in kernel.graph().nodes if n.label.endswith(".db_url")}
    kernel.registry.require("IConfig").set("tenants.globex.db_url", "sqlite:///globex-v2.db")
    after = {t: await status(kernel, t) for t in TENANTS}
    assert ("globex-v2.db", 3) == (after["globex"]["file"], after["globex"]["users"])
    assert before["globex"]["connects"] + 1 == after["globex"]["connects"]
    for tenant in ("acme", "initech"):
        assert before[tenant]["connects"] == after[tenant]["connects"]
    now = {n.label: n.runs for n in kernel.graph().nodes if n.label.endswith(".db_url")}
    assert runs["tenant-db-globex.db_url"] + 1 == now["tenant-db-globex.db_url"]
    assert runs["tenant-db-acme.db_url"] == now["tenant-db-acme.db_url"]
    assert runs["tenant-db-initech.db_url"] == now["tenant-db-initech.db_url"]
    await kernel.invoke("tenant-db.add_user", {"target": "globex", "name": "after",
                                               "email": "after@globex.test"})
    with closing(sqlite3.connect(db_file(kernel, "globex"))) as conn:
        assert 4 == conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]


@pytest.mark.parametrize("url", [
    "sqlite:///../tenant-db-acme/acme.db",   # another tenant's file
    "sqlite:////etc/passwd",                 # an absolute path
    "postgres://db/globex",                  # not a file in its storage
    "sqlite:///",
])
async def test_a_db_url_outside_its_own_storage_is_refused(kernel, url) -> None:
    """The effect keeps the old file open; every call says why the new url is refused."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.globex.db_url", url)
    with pytest.raises(DbUrlError, match="db_url"):
        await status(kernel, "globex")
    acme = await status(kernel, "acme")
    assert 3 == acme["users"]
    config.set("tenants.globex.db_url", "sqlite:///globex.db")
    assert 3 == (await status(kernel, "globex"))["users"]


async def test_a_tenant_instance_cannot_set_another_tenants_db_url(kernel) -> None:
    """acme's own handle refuses globex's section: the component cannot be pointed at it."""
    acme = kernel.component("tenant-db-acme")
    with pytest.raises(TenantIsolationError, match="may not write 'tenants.globex.db_url'"):
        acme.rt.config.set("tenants.globex.db_url", "sqlite:///x.db")


async def test_onboarding_and_offboarding_leave_no_open_file(kernel, tmp_path) -> None:
    """hooli comes and goes; its file is archived, and no handle to it stays open."""
    await onboard(kernel, "hooli")
    await kernel.invoke("tenant-db.add_user", {"target": "hooli", "name": "h",
                                               "email": "h@hooli.test"})
    hooli_file = db_file(kernel, "hooli")
    assert str(hooli_file) in open_files(tmp_path)
    archived = await offboard(kernel, "hooli", archive=True)
    assert archived is not None
    assert tmp_path / ARCHIVE == archived.parent
    assert not hooli_file.exists()
    with closing(sqlite3.connect(archived)) as conn:
        assert 1 == conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
    assert [] == [f for f in open_files(tmp_path) if "hooli" in f]
    assert None is kernel.registry.require("IConfig").get("tenants.hooli")
    assert "hooli" not in await kernel.invoke("tenant-admin.tenants")
    await kernel.shutdown()
    assert [] == open_files(tmp_path)


async def test_quota_limits_one_tenant_and_a_raise_takes_effect_at_once(kernel) -> None:
    """acme gets 2 calls per minute, globex the shared default; raising acme's is live."""
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.quota.rate", "2/minute")
    for _ in range(2):
        await kernel.invoke("quota.query", {"target": "acme"})
    with pytest.raises(QuotaExceededError,
                       match=r"Tenant 'acme' is over its quota of 2 per 1 minute \(from "
                             r"tenants.acme.quota.rate\); retry in \d+\.\d s") as hit:
        await kernel.invoke("quota.query", {"target": "acme"})
    assert 0 < hit.value.retry_after <= 60
    assert "globex" == (await kernel.invoke("quota.query", {"target": "globex"}))["tenant"]
    config.set("tenants.acme.quota.rate", "5/minute")
    await kernel.invoke("quota.query", {"target": "acme"})
    stats = await kernel.invoke("quota.stats", {"target": "acme"})
    assert ("5 per 1 minute", 3, 1) == (stats["limit"], stats["allowed"], stats["throttled"])
    graph = kernel.graph()
    assert "'5/minute'" == graph.node("quota-acme.rate").value
    assert 1 == graph.node("quota-globex.rate").runs  # globex's limit never recomputed


async def test_concurrent_callers_never_exceed_the_limit(kernel) -> None:
    """200 concurrent invokes from tasks and threads against 50/minute: exactly 50 pass."""
    kernel.registry.require("IConfig").set("tenants.initech.quota.rate", "50/minute")
    loop = asyncio.get_running_loop()

    async def one() -> str:
        try:
            await kernel.invoke("quota.query", {"target": "initech"})
            return "ok"
        except QuotaExceededError:
            return "throttled"

    def from_thread(results: list[str]) -> None:
        results.extend(asyncio.run_coroutine_threadsafe(one(), loop).result(30)
                       for _ in range(25))

    thread_results: list[str] = []
    threads = [threading.Thread(target=from_thread, args=(thread_results,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    task_results = await asyncio.gather(*(one() for _ in range(100)))
    await asyncio.gather(*(asyncio.to_thread(t.join) for t in threads))
    outcomes = [*task_results, *thread_results]
    assert 200 == len(outcomes)
    assert 50 == outcomes.count("ok")
    stats = await kernel.invoke("quota.stats", {"target": "initech"})
    assert (50, 150) == (stats["allowed"], stats["throttled"])


async def test_the_admin_answers_across_tenants_without_credentials(kernel) -> None:
    """Tenant list, counts and sizes, asked of each tenant; no apps.* section is readable."""
    kernel.registry.require("IConfig").set("apps.tenant-db-acme.password", "acme-secret")
    await kernel.invoke("tenant-db.query", {"target": "acme"})
    overview = await kernel.invoke("tenant-admin.overview")
    assert list(TENANTS) == sorted(overview)
    assert (3, 1) == (overview["acme"]["users"], overview["acme"]["queries"])
    assert all(row["size_bytes"] > 0 for row in overview.values())
    admin = kernel.component("tenant-admin")
    with pytest.raises(TenantIsolationError, match="may not read 'apps.tenant-db-acme"):
        admin.rt.config.get("apps.tenant-db-acme.password")


async def test_a_tenant_calling_the_admin_is_refused_unless_granted(kernel) -> None:
    """A tenant that did not declare `tenant-admin` is refused until the host grants it."""

    @component("curious")
    class Curious:
        @runnable("peek")
        async def peek(self, params) -> list[str]:
            return await self.rt.bus.invoke("tenant-admin.tenants")

    await kernel.hot_add(Curious, "curious-acme", {"target": "acme"})
    with pytest.raises(UndeclaredCallError, match="may not call 'tenant-admin.tenants'"):
        await kernel.invoke("curious-acme.peek")
    kernel.set_policy("curious-acme", invoke_allow=["tenant-admin.tenants"])
    assert list(TENANTS) == await kernel.invoke("curious-acme.peek")


def test_the_example_runs_as_a_module(tmp_path: Path) -> None:
    """`python -m signalpy_lab.examples.sqlite_tenants` tells the whole story."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "signalpy_lab.examples.sqlite_tenants",
                          "--storage", str(tmp_path)], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert "migrated globex to globex-v2.db: 3 users copied" in out
    assert "connects before {'acme': 1, 'globex': 1, 'initech': 1}, after {'acme': 1, " \
           "'globex': 2, 'initech': 1}" in out
    assert "acme call 4: Tenant 'acme' is over its quota of 3 per 1 minute" in out
    assert "open database files after shutdown: none" in out
