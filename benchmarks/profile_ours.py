"""Profile one of our benchmark operations with cProfile, normalised per operation.

Why: ``benchmarks.run`` says how long an operation takes; this says where the time goes,
for the same operations on the same application (``ours_tenants``), so a regression in a
table can be traced to functions. From the repository root:

    .venv/bin/python -m benchmarks.profile_ours set-invoke --n 5000
    .venv/bin/python -m benchmarks.profile_ours routed --n 10
    .venv/bin/python -m benchmarks.profile_ours listener --n 10   # set-invoke + one listener
    .venv/bin/python -m benchmarks.profile_ours boot --n 5000      # per tenant, not per op

Columns: share of the profiled time spent in the function itself, calls per operation,
and cumulative µs per operation. cProfile inflates every call by a similar amount, so read
shares and call counts, not absolute times (those are in the tables).
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
from collections.abc import Awaitable, Callable

from . import ours_tenants as tenants

SCENARIOS = ("set-invoke", "routed", "direct", "set", "listener", "boot")


def _report(profile: cProfile.Profile, per: int, unit: str, top: int) -> None:
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename.rsplit('/', 1)[-1]}:{line}({name})"
        rows.append((tottime, calls / per, cumtime / per * 1e6, where))
    total = sum(r[0] for r in rows) or 1.0
    print(f"profiled {total / per * 1e6:.1f} µs per {unit} (inflated by cProfile)")
    print(f"{'self %':>7} {'calls/' + unit:>12} {'cum µs/' + unit:>12}  function")
    for tottime, calls, cum_us, where in sorted(rows, reverse=True)[:top]:
        print(f"{tottime / total * 100:6.1f}% {calls:12.2f} {cum_us:12.2f}  {where}")


async def _main(scenario: str, n: int, ops: int, top: int) -> None:
    profile = cProfile.Profile()
    if scenario == "boot":
        profile.enable()
        ctx = await tenants.boot_tenants(n)
        profile.disable()
        await ctx.shutdown()
        _report(profile, n, "tenant", top)
        return
    ctx = await tenants.boot_tenants(n)
    for i in range(n):  # steady state, as in benchmarks.run
        await tenants.routed_invoke(ctx, i)
    values = [f"postgres://profile/{k}" for k in range(ops)]
    config = ctx.config

    async def set_only(k: int) -> None:
        config.set(f"tenants.t{k % n}.db_url", values[k])

    op: Callable[[int], Awaitable[object]] = {
        "set-invoke": lambda k: tenants.set_and_invoke(ctx, k % n, values[k]),
        "listener": lambda k: tenants.set_and_invoke(ctx, k % n, values[k]),
        "routed": lambda k: tenants.routed_invoke(ctx, k % n),
        "direct": lambda k: tenants.direct_call(ctx, k % n),
        "set": set_only,
    }[scenario]
    if scenario == "listener":
        ctx.kernel.events.subscribe(lambda event: None)
    profile.enable()
    for k in range(ops):
        await op(k)
    profile.disable()
    await ctx.shutdown()
    _report(profile, ops, "op", top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_ours",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--n", type=int, default=10, help="tenants (default 10)")
    parser.add_argument("--ops", type=int, default=10_000, help="operations (default 10000)")
    parser.add_argument("--top", type=int, default=30, help="rows to print (default 30)")
    args = parser.parse_args(argv)
    asyncio.run(_main(args.scenario, args.n, args.ops, args.top))


if __name__ == "__main__":
    main()
