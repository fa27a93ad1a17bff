"""The design note's story, told with the numbers: only globex's ``db_url`` recomputes.

Three tenants share one factory (``tenant-db``, the seed's ``TenantDatabase`` in
``multi_tenant.py``, built and booted by its ``build_kernel``). Each tenant's instance has a
``@computed db_url`` that reads its own config key. Globex migrates to a new database
(``config.set("tenants.globex.db_url", ...)``); this demo prints, before and after, each
tenant's ``db_url`` and how many times its body has run (the ``runs`` of its node in
``kernel.graph()``), and, right after the write, which of them the write marked stale: only
globex's. Acme's and initech's are not even marked stale, so they never recompute.

    python -m signalpy_lab.examples.demo        (or: make demo)
"""

from __future__ import annotations

import asyncio

from ..kernel import Kernel
from .multi_tenant import build_kernel

__all__ = ["MIGRATED_URL", "TENANTS", "db_url_nodes", "main"]

TENANTS = ("acme", "globex", "initech")
MIGRATED_URL = "postgres://db-new.prod/globex-migrated"


def db_url_nodes(kernel: Kernel) -> dict[str, tuple[int, str]]:
    """Tenant -> (runs, state) of its ``tenant-db-<tenant>.db_url`` node in ``kernel.graph()``.

    ``state`` is ``clean``, or ``dirty``/``stale`` when a write marked it (it recomputes,
    or checks its sources, on its next read).
    """
    return {node.tenant: (node.runs, node.state) for node in kernel.graph().nodes
            if node.kind == "computed" and node.label == f"tenant-db-{node.tenant}.db_url"}


async def _query_each(kernel: Kernel) -> dict[str, str]:
    """A routed ``tenant-db.query`` per tenant; tenant -> the ``db_url`` it answered with."""
    urls = {}
    for tenant in TENANTS:
        result = await kernel.bus.invoke("tenant-db.query", {"table": "users", "target": tenant})
        urls[tenant] = result["db_url"]
    return urls


def _table(urls: dict[str, str], nodes: dict[str, tuple[int, str]],
           notes: dict[str, str] | None = None) -> None:
    print(f"  {'tenant':<9}{'db_url':<42}{'db_url runs':>11}")
    for tenant in TENANTS:
        note = f"   {notes[tenant]}" if notes else ""
        print(f"  {tenant:<9}{urls[tenant]:<42}{nodes[tenant][0]:>11}{note}")


def _runs(n: int) -> str:
    return f"{n} run" if n == 1 else f"{n} runs"


async def main() -> None:
    """Tell the story: three tenants, one migration, one recompute."""
    kernel = await build_kernel()
    print("The design note's story: one factory (tenant-db), three tenants, each its own "
          "instance\nwith a @computed db_url that reads only its own config key.")

    print("\n== Before: a routed tenant-db.query to each tenant")
    before_urls = await _query_each(kernel)
    before = db_url_nodes(kernel)
    _table(before_urls, before)

    print(f'\n== Migrating globex: config.set("tenants.globex.db_url", "{MIGRATED_URL}")')
    kernel.registry.require("IConfig").set("tenants.globex.db_url", MIGRATED_URL)
    marked = db_url_nodes(kernel)
    for tenant in TENANTS:
        what = ("marked stale: it recomputes on its next read" if marked[tenant][1] != "clean"
                else "clean: not even marked stale")
        print(f"  {f'tenant-db-{tenant}.db_url':<27}{what}")

    print("\n== After: the same query to each tenant")
    after_urls = await _query_each(kernel)
    after = db_url_nodes(kernel)
    added = {t: after[t][0] - before[t][0] for t in TENANTS}
    notes = {t: (f"recomputed ({_runs(added[t])})" if added[t] else "did not recompute")
             for t in TENANTS}
    _table(after_urls, after, notes)

    recomputed = [t for t in TENANTS if added[t]]
    untouched = [t for t in TENANTS if not added[t] and marked[t][1] == "clean"]
    print(f"\nOne config change, {_runs(sum(added.values()))} of a @computed body in all: "
          f"only {' and '.join(recomputed) or 'no tenant'} recomputed;\n"
          f"{' and '.join(untouched) or 'no tenant'} kept their cached db_url and were not "
          "even marked stale.")
    await kernel.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
