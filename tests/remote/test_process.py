"""Tenants in worker processes of their own: the same calls, their own view, no orphans.

    kernel (this process) ── tenant-db-acme   inline
                          └─ tenant-db-hooli  isolation="process" ── worker (pid ≠ ours)
                                   ▲ config view of hooli only, over spl.v1.config.w-tenant-db-hooli
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import nats
import pytest
from pydantic import BaseModel

from signalpy_lab.errors import TransportError, WorkerError
from signalpy_lab.kernel import Kernel, component, computed, effect, requires, runnable
from signalpy_lab.providers import DEFAULT_PROVIDERS


class Query(BaseModel):
    table: str = "users"
    target: str | None = None


@component("counter-db", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class CountingDb:
    """Counts its reactive runs in the process it lives in (the worker's copy for hooli)."""

    runs: dict[str, int] = {"db_url": 0, "connect": 0}

    @computed
    def db_url(self) -> str:
        CountingDb.runs["db_url"] += 1
        return self.config.get(f"tenants.{self.rt.target}.db_url")

    @effect
    def connect(self) -> None:
        CountingDb.runs["connect"] += 1
        self.key = self.creds.get("api_key")

    @runnable("query", params=Query)
    def query(self, params: Query) -> dict[str, Any]:
        return {"tenant": self.rt.target, "db_url": self.db_url(), "pid": os.getpid()}

    @runnable("stats", params=Query)
    def stats(self, params: Query) -> dict[str, Any]:
        return {"runs": dict(CountingDb.runs), "key": self.key, "view": self.config.all()}

    @runnable("slow", params=Query)
    async def slow(self, params: Query) -> str:
        await asyncio.sleep(10)
        return "late"


DEFAULTS = {
    "region": "eu",
    "tenants": {"acme": {"db_url": "postgres://db/acme"},
                "hooli": {"db_url": "postgres://db/hooli"}},
    "apps": {"tenant-db-acme": {"api_key": "acme-key"},
             "tenant-db-hooli": {"api_key": "hooli-key"}},
}
HOOLI_VIEW = {"region": "eu", "tenants": {"hooli": {"db_url": "postgres://db/hooli"}},
              "apps": {"tenant-db-hooli": {"api_key": "hooli-key"}}}


@pytest.fixture
async def kernel(tmp_path):
    kernel = Kernel("host")
    kernel.discover([*DEFAULT_PROVIDERS, CountingDb])
    kernel.instantiate("config", properties={"defaults": DEFAULTS})
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    kernel.instantiate("counter-db", "tenant-db-acme", {"target": "acme"})
    kernel.instantiate("counter-db", "tenant-db-hooli", {"target": "hooli"},
                       isolation="process")
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def eventually(check: Any, seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return value


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_process_tenant_answers_the_same_calls_from_another_pid(kernel) -> None:
    """Routed and exact calls reach hooli's worker; acme stays in this process."""
    hooli = await kernel.invoke("counter-db.query", {"target": "hooli"})
    acme = await kernel.invoke("counter-db.query", {"target": "acme"})
    assert ("hooli", "postgres://db/hooli") == (hooli["tenant"], hooli["db_url"])
    assert os.getpid() == acme["pid"]
    assert os.getpid() != hooli["pid"]
    assert hooli["pid"] == kernel.instance("tenant-db-hooli").pid
    assert hooli == await kernel.invoke("tenant-db-hooli.query")
    info = {i.name: i for i in kernel.instances()}
    assert ("process", hooli["pid"], "active") == (
        info["tenant-db-hooli"].isolation, info["tenant-db-hooli"].pid,
        info["tenant-db-hooli"].state)
    via = {(r.route, r.target): r.via for r in kernel.routes()}
    assert "transport" == via[("counter-db.query", "hooli")]
    assert "local" == via[("counter-db.query", "acme")]


async def test_the_worker_receives_exactly_its_own_view(kernel) -> None:
    """Shared keys, its tenant section and its apps.<name>: nothing of acme's."""
    stats = await kernel.invoke("tenant-db-hooli.stats")
    assert HOOLI_VIEW == stats["view"]
    host = kernel.isolation_host("process")
    assert set(host._workers["tenant-db-hooli"].sent) == {
        "region", "tenants.hooli.db_url", "apps.tenant-db-hooli.api_key"}


async def test_changes_in_its_view_recompute_there_once_and_others_never_arrive(
        kernel) -> None:
    """One body run per change inside the view; acme's and other components' keys send nothing."""
    config = kernel.registry.require("IConfig")
    await kernel.invoke("counter-db.query", {"target": "hooli"})
    before = (await kernel.invoke("tenant-db-hooli.stats"))["runs"]
    host = kernel.isolation_host("process")
    sent_before = dict(host._workers["tenant-db-hooli"].sent)
    config.set("tenants.acme.db_url", "postgres://moved/acme")
    config.set("apps.tenant-db-acme.api_key", "acme-key-2")
    config.set("apps.someone-else.token", "x")
    assert sent_before == host._workers["tenant-db-hooli"].sent  # nothing was sent
    config.set("tenants.hooli.db_url", "postgres://moved/hooli")

    async def moved() -> dict[str, Any]:
        return await kernel.invoke("counter-db.query", {"target": "hooli"})

    deadline = time.monotonic() + 5
    while (await moved())["db_url"] != "postgres://moved/hooli":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    after = (await kernel.invoke("tenant-db-hooli.stats"))["runs"]
    assert before["db_url"] + 1 == after["db_url"]
    assert before["connect"] == after["connect"]
    config.set("apps.tenant-db-hooli.api_key", "hooli-key-2")  # a rotation re-runs the effect

    async def rotated() -> bool:
        return (await kernel.invoke("tenant-db-hooli.stats"))["key"] == "hooli-key-2"

    deadline = time.monotonic() + 5
    while not await rotated():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    final = (await kernel.invoke("tenant-db-hooli.stats"))["runs"]
    assert (after["db_url"], after["connect"] + 1) == (final["db_url"], final["connect"])


async def test_the_graph_shows_the_workers_nodes(kernel) -> None:
    """The worker's computed appears in the host's graph, relayed with its own ids."""
    await kernel.invoke("counter-db.query", {"target": "hooli"})
    graph = await eventually(lambda: any(n.label == "tenant-db-hooli.db_url"
                                         for n in kernel.graph().nodes) and kernel.graph())
    node = graph.node("tenant-db-hooli.db_url")
    assert ("tenant-db-hooli", "hooli") == (node.instance, node.tenant)
    assert "'postgres://db/hooli'" == node.value


async def test_a_worker_killed_mid_call_fails_at_once_and_restart_brings_it_back(
        kernel) -> None:
    """The call in flight fails now, naming the exit; acme never notices; restart works."""
    pid = kernel.instance("tenant-db-hooli").pid
    call = asyncio.ensure_future(kernel.invoke("tenant-db-hooli.slow", timeout=30))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(TransportError, match=f"pid {pid}\\) exited with code -9"):
        await call
    assert time.monotonic() - started < 2
    assert "failed" == kernel.instance("tenant-db-hooli").state.value
    assert isinstance(kernel.instance("tenant-db-hooli").error, WorkerError)
    with pytest.raises(TransportError, match="kernel.restart\\('tenant-db-hooli'\\)"):
        await kernel.invoke("counter-db.query", {"target": "hooli"})
    assert "acme" == (await kernel.invoke("counter-db.query", {"target": "acme"}))["tenant"]
    kernel.registry.require("IConfig").set("tenants.hooli.db_url", "postgres://while-down")
    await kernel.restart("tenant-db-hooli")
    answer = await kernel.invoke("counter-db.query", {"target": "hooli"})
    assert ("postgres://while-down", kernel.instance("tenant-db-hooli").pid) == (
        answer["db_url"], answer["pid"])
    assert pid != answer["pid"]


async def test_a_worker_cannot_use_other_tenants_subjects(kernel) -> None:
    """A real client with hooli's worker credentials is refused by the server itself."""
    await kernel.hot_add("counter-db", "tenant-db-globex", {"target": "globex"},
                         isolation="process")
    host = kernel.isolation_host("process")
    login = host.credentials("tenant-db-hooli")
    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc))

    rogue = await nats.connect(host.transport.url, **login,
                               inbox_prefix=b"_INBOX_w-tenant-db-hooli", error_cb=on_error,
                               allow_reconnect=False)
    stolen: list[bytes] = []

    async def steal(msg: Any) -> None:
        stolen.append(msg.data)

    try:
        await rogue.subscribe("spl.v1.call.w-tenant-db-globex.>", cb=steal)
        await rogue.subscribe(">", cb=steal)
        await rogue.publish("spl.v1.call.w-tenant-db-globex.tenant-db-globex.query", b"{}")
        await rogue.publish("spl.v1.config.w-tenant-db-globex", b'{"v": 1, "set": {}}')
        await rogue.flush()
        assert "globex" == (await kernel.invoke("counter-db.query", {"target": "globex"}))[
            "tenant"]
        assert await eventually(lambda: len(violations) >= 4)
    finally:
        await rogue.close()
    assert [] == stolen
    assert any('subscription to "spl.v1.call.w-tenant-db-globex.>"' in v for v in violations)
    assert any('publish to "spl.v1.call.w-tenant-db-globex' in v for v in violations)


async def test_a_class_defined_in_a_cell_is_shipped_by_value(kernel) -> None:
    """A class the worker cannot import (a notebook's) travels with cloudpickle."""

    @component("notebook-db")
    class NotebookDb:
        @runnable("hello", params=Query)
        def hello(self, params: Query) -> str:
            return f"hello from {self.rt.target} in {os.getpid()}"

    await kernel.hot_add(NotebookDb, "notebook-db-hooli", {"target": "hooli"},
                         isolation="process")
    answer = await kernel.invoke("notebook-db.hello", {"target": "hooli"})
    assert answer.startswith("hello from hooli in ")
    assert str(os.getpid()) not in answer


def test_no_worker_outlives_its_kernels_process(tmp_path: Path) -> None:
    """A kernel process SIGKILLed with a running worker leaves no worker behind."""
    script = tmp_path / "host.py"
    script.write_text(textwrap.dedent("""
        import asyncio, json, sys, time
        from signalpy_lab.kernel import Kernel
        from signalpy_lab.providers import DEFAULT_PROVIDERS
        from signalpy_lab.examples.multi_tenant import TenantDatabase

        async def main():
            kernel = Kernel("doomed")
            kernel.discover([*DEFAULT_PROVIDERS, TenantDatabase])
            kernel.instantiate("tenant-db", "tenant-db-x", {"target": "x"}, isolation="process")
            await kernel.boot()
            host = kernel.isolation_host("process")
            print(json.dumps({"worker": kernel.instance("tenant-db-x").pid,
                              "server": host.server.pid}), flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        pids = json.loads(line)
        assert alive(pids["worker"])
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 5
        while (alive(pids["worker"]) or alive(pids["server"])) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pids["worker"]), "the worker outlived its kernel's process"
        assert not alive(pids["server"]), "the private nats-server outlived its kernel's process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


async def test_a_server_passed_in_is_yours_to_stop_and_no_directory_is_left(
        nats_server) -> None:
    """shutdown() stops the workers and removes the host's directory, not your server."""
    from signalpy_lab.remote.process import ProcessHost
    from signalpy_lab.remote.transport import NatsTransport

    kernel = Kernel("host-own-server")
    kernel.discover([*DEFAULT_PROVIDERS, CountingDb])
    kernel.instantiate("config", properties={"defaults": DEFAULTS})
    await kernel.boot()
    transport = await NatsTransport(kernel, nats_server.url,
                                    nkeys_seed=nats_server.admin_seed).start()
    host = ProcessHost(kernel, transport, server=nats_server)
    kernel.set_isolation_host("process", host)
    await kernel.hot_add("counter-db", "tenant-db-hooli", {"target": "hooli"},
                         isolation="process")
    assert host._dir.is_dir()
    await kernel.shutdown()
    await transport.stop()
    assert (False, True) == (host._dir.exists(), nats_server.pid is not None)


def _children_running(program: str) -> list[int]:
    """Pids of this process's direct children whose command line names ``program``."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == me and program.encode() in cmdline:
            found.append(int(entry))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
async def test_tenants_added_at_once_on_a_fresh_kernel_share_one_server(tmp_path) -> None:
    """Six ``hot_add(..., isolation="process")`` gathered on a kernel that has no host yet
    start one private nats-server (and one host), not one each; all six answer."""
    before = set(_children_running("nats-server"))
    kernel = Kernel("fresh")
    kernel.discover([*DEFAULT_PROVIDERS, CountingDb])
    tenants = [f"t{i}" for i in range(6)]
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: {"db_url": f"postgres://db/{t}"} for t in tenants}}})
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    await kernel.boot()
    try:
        await asyncio.gather(*(kernel.hot_add("counter-db", f"tenant-db-{t}", {"target": t},
                                              isolation="process") for t in tenants))
        assert 1 == len(set(_children_running("nats-server")) - before)
        answers = [await kernel.invoke("counter-db.query", {"target": t}) for t in tenants]
        assert tenants == [a["tenant"] for a in answers]
        assert os.getpid() not in {a["pid"] for a in answers}
    finally:
        await kernel.shutdown()
    assert set(_children_running("nats-server")) <= before
