"""Smoke test: run every peer benchmark function once, small, and check results.

Why: the peers are not signalpy_lab dependencies (they come with the ``bench``
extra), so nothing in the test suite exercises these modules; this proves each
builder produces correct values before anyone times it.  ``benchmarks.run``
also calls ``check_shapes`` on every shape module, ours included, before timing.

Setup and run, from the repository root:

    .venv/bin/pip install -e '.[test,bench]'
    .venv/bin/python -m benchmarks.peers.smoke
"""
from __future__ import annotations

import asyncio
from types import ModuleType

from . import nervio_shapes, observ_shapes, reaktiv_shapes, signalpy_kernel_shapes
from . import signalpy_kernel_tenants as tenants


def _get(node: object) -> object:
    return node.get()  # type: ignore[attr-defined]


def check_shapes(name: str, mod: ModuleType) -> None:
    # A module whose nodes have no ``get()`` (observ, nervio) exports ``value(node)``.
    get = getattr(mod, "value", _get)

    # Public API: each returns a zero-arg update that works repeatedly.
    for label, update in (
        ("chain(10)", mod.chain(10)),
        ("fan_out(10)", mod.fan_out(10)),
        ("diamond()", mod.diamond()),
        ("diamond_effect()", mod.diamond_effect()),
    ):
        update()
        update()
        print(f"OK {name} {label} update ran")

    # Values: the builders' graphs hold the right numbers after updates.
    shape = mod.build_chain(10)
    up = mod.updater(shape)
    up()
    assert get(shape.reads[0]) == get(shape.source) + 10
    print(f"OK {name} chain value c10 == s + 10")

    shape = mod.build_fan_out(10)
    up = mod.updater(shape)
    up()
    s = get(shape.source)
    assert [get(c) for c in shape.reads] == [s + i for i in range(10)]
    print(f"OK {name} fan_out values == s + i")

    shape = mod.build_diamond()
    up = mod.updater(shape)
    up()
    assert get(shape.reads[0]) == 2 * get(shape.source) + 3
    print(f"OK {name} diamond d == 2s + 3")

    shape = mod.build_diamond_effect()
    up = mod.updater(shape)
    assert shape.log is not None, "diamond_effect built no effect log"
    assert shape.log.runs == 1, "effect did not run at creation"
    for k in range(1, 4):
        up()
        assert shape.log.runs == 1 + k, f"effect ran {shape.log.runs} times after {k} updates"
        assert shape.log.last == 2 * get(shape.source) + 3, "effect saw a stale/glitched d"
    print(f"OK {name} diamond_effect runs once per update and sees d == 2s + 3")

    for depth in (10, 100):
        ok = mod.max_chain_depth_ok(depth)
        assert ok is True, f"max_chain_depth_ok({depth}) -> {ok}"
        print(f"OK {name} max_chain_depth_ok({depth}) is True")


async def check_tenants() -> None:
    ctx = await tenants.boot_tenants(3)
    try:
        assert ctx.db_url_runs() == 0, "db_url computed before any call"
        r = await ctx.kernel.invoke("tenant-db.query", {"table": "users", "target": "t1"})
        assert r["tenant"] == "t1", r
        assert r["db_url"] == "postgres://db/t1", r
        print(f"OK tenants boot_tenants(3) + routed invoke -> {r}")

        before = [inst.db_url_runs for inst in ctx.instances]
        r = await tenants.set_and_invoke(ctx, 1, "postgres://new/t1")
        assert r["db_url"] == "postgres://new/t1", r
        after = [inst.db_url_runs for inst in ctx.instances]
        assert after == [before[0], before[1] + 1, before[2]], (before, after)
        print(f"OK tenants set_and_invoke -> {r}; db_url runs per tenant {before} -> {after}")

        r = await tenants.direct_call(ctx, 1)
        assert r["tenant"] == "t1", r
        assert r["db_url"] == "postgres://new/t1", r
        assert [inst.db_url_runs for inst in ctx.instances] == after, "direct call recomputed"
        print(f"OK tenants direct_call -> {r}")

        r = await tenants.direct_call(ctx, 2)
        assert r["db_url"] == "postgres://db/t2", r
        print(f"OK tenants direct_call untouched tenant -> {r}")
    finally:
        await ctx.shutdown()


def main() -> None:
    check_shapes("observ", observ_shapes)
    check_shapes("nervio", nervio_shapes)
    check_shapes("reaktiv", reaktiv_shapes)
    check_shapes("signalpy-kernel", signalpy_kernel_shapes)
    asyncio.run(check_tenants())
    print("OK all peer smoke checks passed")


if __name__ == "__main__":
    main()
