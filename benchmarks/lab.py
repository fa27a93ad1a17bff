"""What the lab costs: a config change with the lab's views attached, and graph rendering.

Why: the lab must stay out of the way. Table L1 times the same operation as table b of
``benchmarks.run`` (``config.set`` of one tenant's key, then a routed invoke of that tenant)
with nothing attached, with the ``LabModel`` listening, and with the model plus all three
live widgets (graph, bus table, event log) attached and flushing on their 100 ms throttle.
Table L2 times drawing the reactive graph for N tenants: the first layout (DOT, Graphviz,
SVG), a state-only redraw after one tenant's change (class toggling on the cached layout,
no new layout), and a whole widget flush, both uncollapsed and with the default collapse.

    python -m benchmarks.lab [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
from typing import Any

from benchmarks._harness import (
    Table,
    environment_lines,
    load_average,
    median_us,
    no_gc,
    ratio,
    time_async_ops,
)
from benchmarks.ours_tenants import boot_tenants, set_and_invoke
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.render import clear_cache, render_svg, to_dot
from signalpy_lab.lab.widgets import BusTable, EventLog, GraphWidget

#: Ops per block of table L1 (blocks of its three columns are interleaved).
BLOCK = 100
#: Share of the slowest ops left out of L1's means (see _trimmed_mean_us).
TRIM = 0.002


async def _ops(ctx: object, n: int, count: int, start: int) -> list[int]:
    """``count`` timed ops (ns each), each writing a new value to tenant ``(start+k) % n``."""
    async def op(k: int) -> object:
        i = (start + k) % n
        return await set_and_invoke(ctx, i, f"postgres://db/t{i}/v{start + k}")

    return await time_async_ops(op, count)


async def _warm(ctx: object, n: int, start: int) -> None:
    """One untimed op per tenant."""
    for i in range(n):
        await set_and_invoke(ctx, i, f"postgres://db/t{i}/w{start}")


def _trimmed_mean_us(times_ns: list[int], drop: float = TRIM) -> float:
    """The mean without the slowest ``drop`` share of ops: a stall of the machine itself
    (tens of ms, seen in any column) would otherwise decide the ratio. Work the lab defers
    (the queue applied every ``PENDING`` events, about 1.5% of the ops) stays in."""
    kept = sorted(times_ns)[: max(1, round(len(times_ns) * (1 - drop)))]
    return statistics.fmean(kept) / 1e3


async def attached_cost(ns: list[int], count: int, block: int = BLOCK) -> Table:
    table = Table(
        "L1. config.set + routed invoke with the lab attached (µs per op)",
        ["N", "nothing attached", "LabModel listening", "model + 3 live widgets",
         "model / none", "widgets / none", "means: model / none", "means: widgets / none"],
    )
    for n in ns:
        ctx = await boot_tenants(n)
        alone = LabModel(ctx.kernel)
        panel = LabModel(ctx.kernel)
        widgets = [GraphWidget(panel), BusTable(panel), EventLog(panel)]
        await _warm(ctx, n, 0)  # both models meet every node once, as an open lab has
        for widget in widgets:
            widget.flush()  # now, rather than from the timer in the middle of a timed block
        alone.pause()
        panel.pause()
        times: dict[str, list[int]] = {"none": [], "model": [], "widgets": []}
        listening = {"none": None, "model": alone, "widgets": panel}
        order = list(times)
        for b in range(count // block):
            # Blocks of each column, interleaved and in rotating order, so a slow spell of
            # the machine falls on all three alike.
            for column in order[b % 3:] + order[: b % 3]:
                model = listening[column]
                if model is not None:
                    model.resume()
                times[column] += await _ops(ctx, n, block, (3 * b + order.index(column)) * block)
                if column == "widgets":
                    for widget in widgets:  # redraw now, untimed: see the note
                        widget.flush()
                if model is not None:
                    model.pause()
        for widget in widgets:
            widget.close()
        alone.close()
        panel.close()
        median = {k: median_us(v) for k, v in times.items()}
        mean = {k: _trimmed_mean_us(v) for k, v in times.items()}
        table.add(n, median["none"], median["model"], median["widgets"],
                  ratio(median["model"], median["none"]),
                  ratio(median["widgets"], median["none"]),
                  ratio(mean["model"], mean["none"]), ratio(mean["widgets"], mean["none"]))
        await ctx.kernel.shutdown()
    table.notes = [
        f"{count} ops per column, in blocks of {block} interleaved across the three columns "
        "(LabModel.pause()/resume() detach and reattach a model between blocks; a paused "
        "model is not subscribed, so 'nothing attached' runs the unobserved kernel). Each op "
        "changes one tenant's key to a new value and calls that tenant. Both models have met "
        "every node before timing: the steady state of an open lab. Medians per op; the "
        "means beside include the lab's deferred work (LabModel applies its queue of events "
        "when read or every PENDING events) and leave out the slowest "
        f"{TRIM:.1%} of ops in every column alike (stalls of the machine). The widgets' "
        "redraws are not in these times: they run on a timer at most every 100 ms, and "
        "table L3 gives what one costs.",
    ]
    return table


async def _burst(ctx: object, n: int, seconds: float, start: int) -> float:
    """Back-to-back ops for ``seconds`` (gc off); µs of wall time per op."""
    done = 0
    began = time.perf_counter()
    with no_gc():
        while time.perf_counter() - began < seconds:
            i = (start + done) % n
            await set_and_invoke(ctx, i, f"postgres://db/t{i}/b{start + done}")
            done += 1
    return (time.perf_counter() - began) / done * 1e6


def _median_ratio(values: list[float], bases: list[float]) -> str:
    """The median of the rounds' ratios, as ``1.23x``."""
    return f"{statistics.median(v / b for v, b in zip(values, bases)):.2f}x"


async def sustained_cost(ns: list[int], seconds: float, rounds: int = 3) -> Table:
    table = Table(
        f"L1b. A sustained burst ({seconds:g} s of back-to-back config.set + routed invoke, "
        "every tenant in turn): wall time per op",
        ["N", "nothing attached (µs)", "LabModel listening", "model + 3 live widgets"],
    )
    for n in ns:
        ctx = await boot_tenants(n)
        await _warm(ctx, n, 0)
        walls: dict[str, list[float]] = {"none": [], "model": [], "widgets": []}
        start = 0
        for _ in range(rounds):
            walls["none"].append(await _burst(ctx, n, seconds, start))
            model = LabModel(ctx.kernel)
            await _warm(ctx, n, start + 1)
            walls["model"].append(await _burst(ctx, n, seconds, start + 10**6))
            widgets = [GraphWidget(model), BusTable(model), EventLog(model)]
            for widget in widgets:
                widget.flush()
            walls["widgets"].append(await _burst(ctx, n, seconds, start + 2 * 10**6))
            for widget in widgets:
                widget.close()
            model.close()
            start += 3 * 10**6
        table.add(n, statistics.median(walls["none"]), _median_ratio(walls["model"], walls["none"]),
                  _median_ratio(walls["widgets"], walls["none"]))
        await ctx.kernel.shutdown()
    table.notes = [
        f"Median over {rounds} rounds of each round's ratio. Unlike L1, everything the lab does "
        "happens at its real rhythm and is in the time: the queue applied every PENDING "
        "events, an epoch closed every 0.25 s, and each widget's redraws on its timer "
        "thread (sharing the GIL). In such a burst every tenant's nodes change between two "
        "redraws, so a redraw at 1,000 tenants costs tens of ms (L3 is one tenant's change); "
        "the throttle then stretches its interval so that each view takes at most "
        "REDRAW_SHARE (5%) of the time. `%lab --record off` takes the lab out entirely.",
    ]
    return table


def _median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


async def _one_tenant_changed(n: int) -> tuple[Any, LabModel]:
    """N tenants booted and warm, a model listening, and a new epoch in which tenant 0's key
    was changed and that tenant called: the state L2 draws and L3 flushes."""
    ctx = await boot_tenants(n)
    model = LabModel(ctx.kernel)
    for i in range(n):
        await set_and_invoke(ctx, i, f"postgres://db/t{i}/warm")
    model.begin_epoch("bench")
    await set_and_invoke(ctx, 0, "postgres://db/t0/changed")
    return ctx, model


async def render_cost(ns: list[int], repeat: int) -> Table:
    table = Table(
        "L2. Drawing the reactive graph for N tenants (median ms)",
        ["N", "nodes", "first layout (full graph)", "state-only redraw (full graph)",
         "drawn at default collapse", "first layout (collapsed)", "widget flush (collapsed)"],
    )
    for n in ns:
        ctx, model = await _one_tenant_changed(n)
        snapshot = model.snapshot()
        full = to_dot(snapshot, max_nodes=10**9)

        def first_layout(full=full) -> None:
            clear_cache()
            render_svg(full)

        first = _median_ms(first_layout, 1 if n >= 1000 else repeat)
        render_svg(full)  # cached layout
        redraw = _median_ms(lambda full=full: render_svg(full), repeat)
        collapsed = to_dot(snapshot)

        def collapsed_layout(collapsed=collapsed) -> None:
            clear_cache()
            render_svg(collapsed)

        first_collapsed = _median_ms(collapsed_layout, repeat)
        widget = GraphWidget(model)
        widget.flush()

        def flush(widget=widget) -> None:
            widget.refresh()
            widget.flush()

        flush_ms = _median_ms(flush, repeat)
        widget.close()
        model.close()
        table.add(n, len(snapshot["nodes"]), first, redraw, len(collapsed.shown),
                  first_collapsed, flush_ms)
        await ctx.kernel.shutdown()
    table.notes = [
        "'first layout' runs Graphviz (dot on PATH, else graphviz-pure); it happens only when "
        "the graph's structure changes. 'state-only redraw' is what a config change costs: "
        "the cached layout with the nodes' classes and value lines rewritten. The widget "
        "collapses graphs over 150 nodes (idle instances become summary nodes), so its "
        "flush stays interactive at any N.",
    ]
    return table


async def incremental_cost(ns: list[int], repeat: int) -> Table:
    table = Table(
        "L3. After one tenant's change: widget flush and the epoch timeline's memory",
        ["N", "nodes", "widget flush (ms)", "flushes restyled only", "full snapshots",
         "bytes per epoch", "touched nodes per epoch"],
    )
    for n in ns:
        ctx, model = await _one_tenant_changed(n)
        widget = GraphWidget(model)
        widget.flush()
        fulls = model.full_snapshots
        times = []
        for k in range(repeat * 4):
            await set_and_invoke(ctx, 0, f"postgres://db/t0/v{k}")
            started = time.perf_counter()
            widget.flush()
            times.append(time.perf_counter() - started)
        flush_ms = statistics.median(times) * 1e3
        restyled, full = widget.incremental_flushes, model.full_snapshots - fulls
        widget.close()
        epochs = 50
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for k in range(epochs):
            model.begin_epoch(f"%config set tenants.t{k % n}.db_url ...")
            await set_and_invoke(ctx, k % n, f"postgres://db/t{k % n}/e{k}")
        model.begin_epoch("end")
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        grown = sum(d.size_diff for d in after.compare_to(before, "filename")
                    if "signalpy_lab/lab" in d.traceback[0].filename
                    or "epochs" in d.traceback[0].filename)
        touched = statistics.mean(len(r.nodes) for r in list(model.timeline)[-epochs:])
        model.close()
        table.add(n, 2 * n, flush_ms,
                  f"{restyled} of {repeat * 4}", full, round(grown / epochs), touched)
        await ctx.kernel.shutdown()
    table.notes = [
        "Each flush follows one tenant's config.set + invoke: the model re-describes only the "
        "nodes its events named (Kernel.graph_nodes) and, the active set being the same, the "
        "widget restyles only the changed rows (no to_dot). 'bytes per epoch' is what "
        "tracemalloc sees the lab's modules allocate per epoch (the timeline record and the "
        "event log's entries for it), over 50 epochs; the timeline keeps the last 200.",
    ]
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args(argv)
    ns = [10, 100] if args.quick else [10, 100, 1000]
    count = 300 if args.quick else 3000
    print("\n".join(environment_lines("python -m benchmarks.lab" +
                                      (" --quick" if args.quick else ""))))
    print()
    print(asyncio.run(attached_cost(ns, count)).render())
    print(asyncio.run(sustained_cost(ns, 0.25 if args.quick else 1.0)).render())
    print(asyncio.run(render_cost(ns, 3 if args.quick else 5)).render())
    print(asyncio.run(incremental_cost(ns, 3 if args.quick else 5)).render())
    print(f"Load average at the end: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
