"""Event loops and threads: the kernel on a private loop thread, callers on another loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from signalpy_lab.examples.multi_tenant import build_kernel
from signalpy_lab.kernel import Kernel


class LoopThread:
    """A private event loop in a daemon thread, like the lab runs the kernel on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def private_loop():
    loop_thread = LoopThread()
    yield loop_thread
    loop_thread.close()


def test_constructing_a_kernel_creates_nothing_loop_bound() -> None:
    """Kernel() works with no event loop at all and remembers none."""
    kernel = Kernel()
    assert kernel.home_loop() is None


async def test_awaiting_from_another_loop_runs_on_the_kernels_loop(private_loop) -> None:
    """Booted on a private loop; awaited from this test's loop: no hang, no cross-loop error."""
    kernel = private_loop.run(build_kernel())
    assert kernel.home_loop() is private_loop.loop
    seen_loops = []

    async def spy(params):
        seen_loops.append(asyncio.get_running_loop())
        return "ok"

    kernel.bus.handler("tenant-db-acme.status").fn = spy  # observe where handlers run
    assert await asyncio.wait_for(kernel.invoke("tenant-db-acme.status"), 5) == "ok"
    assert await asyncio.wait_for(kernel.bus.invoke("tenant-db.status", {"target": "acme"}),
                                  5) == "ok"
    assert seen_loops == [private_loop.loop, private_loop.loop]
    await asyncio.wait_for(kernel.hot_remove("tenant-db-globex"), 5)
    await asyncio.wait_for(kernel.shutdown(), 5)
    assert kernel.state.value == "stopped"


def test_a_kernel_whose_loop_closed_runs_on_the_next_loop() -> None:
    """A script's asyncio.run ended; a later asyncio.run can still invoke."""
    kernel = asyncio.run(build_kernel())
    r = asyncio.run(kernel.bus.invoke("tenant-db.query", {"target": "initech"}))
    assert r["tenant"] == "initech"


def test_config_set_from_another_thread_stays_consistent(private_loop) -> None:
    """The notebook thread writes config while the kernel thread keeps querying."""
    kernel = private_loop.run(build_kernel())
    config = kernel.registry.require("IConfig")

    async def query_many():
        urls = []
        for _ in range(300):
            r = await kernel.bus.invoke("tenant-db.query", {"target": "globex"})
            urls.append(r["db_url"])
            await asyncio.sleep(0)
        return urls

    future = asyncio.run_coroutine_threadsafe(query_many(), private_loop.loop)
    written = [f"postgres://db{i}/globex" for i in range(300)]
    for url in written:
        config.set("tenants.globex.db_url", url)
    urls = future.result(30)
    allowed = {"postgres://db2.prod/globex", *written}
    assert set(urls) <= allowed
    final = private_loop.run(kernel.bus.invoke("tenant-db.query", {"target": "globex"}))
    assert final["db_url"] == written[-1]
    acme = private_loop.run(kernel.bus.invoke("tenant-db.query", {"target": "acme"}))
    assert acme["db_url"] == "postgres://db1.prod/acme"
