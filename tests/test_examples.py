"""The design note's example runs on our kernel and prints what the note says it prints; the
demo (`make demo`) tells its story with the recompute counts."""

from __future__ import annotations

import subprocess
import sys

from signalpy_lab.examples.multi_tenant import main


def test_seed_demo_runs_as_a_module() -> None:
    """`python -m signalpy_lab.examples.multi_tenant` resolves each tenant and the migration."""
    out = subprocess.run(
        [sys.executable, "-m", "signalpy_lab.examples.multi_tenant"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    assert "tenant-db-acme.query -> tenant=acme db_url=postgres://db1.prod/acme" in out
    assert "tenant-db.query[initech] -> tenant=initech db_url=postgres://db3.prod/initech" in out
    assert "tenant-db.query[globex] -> db_url=postgres://db-new.prod/globex-migrated" in out
    status = [line.split() for line in out.splitlines()[-3:]]
    assert [row[0] for row in status] == ["acme", "globex", "initech"]
    assert status[1][1] == "db_url=postgres://db-new.prod/globex-migrated"


async def test_seed_demo_main_in_process(capsys) -> None:
    """The demo's coroutine also runs inside an existing event loop."""
    await main()
    assert "queries=3" in capsys.readouterr().out


async def test_seed_reactive_config_change(seed_kernel) -> None:
    """The note's snippet: config.set then a routed query sees the new URL; others do not."""
    config = seed_kernel.registry.require("IConfig")
    config.set("tenants.globex.db_url", "postgres://db-new.prod/globex-migrated")

    r = await seed_kernel.bus.invoke("tenant-db.query", {"table": "users", "target": "globex"})
    assert r["db_url"] == "postgres://db-new.prod/globex-migrated"
    acme = await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    assert acme["db_url"] == "postgres://db1.prod/acme"


def test_demo_shows_that_only_globex_recomputes() -> None:
    """`python -m signalpy_lab.examples.demo`: runs per tenant before and after, stale marks."""
    out = subprocess.run(
        [sys.executable, "-m", "signalpy_lab.examples.demo"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    before, migration, after = out.split("\n== ")[1:]
    assert [
        "acme     postgres://db1.prod/acme                            1",
        "globex   postgres://db2.prod/globex                          1",
        "initech  postgres://db3.prod/initech                         1",
    ] == [line.strip() for line in before.splitlines()[2:5]]
    assert [
        "tenant-db-acme.db_url      clean: not even marked stale",
        "tenant-db-globex.db_url    marked stale: it recomputes on its next read",
        "tenant-db-initech.db_url   clean: not even marked stale",
    ] == [line.strip() for line in migration.splitlines()[1:4]]
    assert [
        "acme     postgres://db1.prod/acme                            1   did not recompute",
        "globex   postgres://db-new.prod/globex-migrated              2   recomputed (1 run)",
        "initech  postgres://db3.prod/initech                         1   did not recompute",
    ] == [line.strip() for line in after.splitlines()[2:5]]
    assert out.endswith("One config change, 1 run of a @computed body in all: only globex "
                        "recomputed;\nacme and initech kept their cached db_url and were not "
                        "even marked stale.\n")
