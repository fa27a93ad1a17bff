"""The lab inside a real ipykernel: its loop is already running, magics must not deadlock."""

from __future__ import annotations

import queue

import pytest
from jupyter_client.manager import start_new_kernel


@pytest.fixture(scope="module")
def client(kernel_name):
    manager, client = start_new_kernel(kernel_name=kernel_name)
    try:
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def execute(client, code: str, timeout: float = 60) -> dict:
    """Run ``code``; collect stdout, the result and any error text."""
    msg_id = client.execute(code)
    out = {"stdout": "", "result": None, "error": None}
    while True:
        try:
            msg = client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no reply within {timeout}s (deadlock?) running {code!r}")\
                from None
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out["stdout"] += content["text"]
        elif kind == "execute_result":
            out["result"] = content["data"].get("text/plain")
        elif kind == "error":
            out["error"] = f"{content['ename']}: {content['evalue']}"
        elif kind == "status" and content["execution_state"] == "idle":
            return out


def test_magics_and_await_in_a_real_kernel(client) -> None:
    """Load, discover, instantiate, invoke by magic and by `await` in the notebook's loop."""
    assert execute(client, "%load_ext signalpy_lab")["error"] is None
    execute(client, "from signalpy_lab.examples.multi_tenant import TenantDatabase\n"
                    "%discover TenantDatabase")
    for tenant in ("acme", "globex"):
        r = execute(client, f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        assert r["error"] is None, r
    r = execute(client, "r = %invoke tenant-db.query target=globex\nr['tenant']")
    assert (r["error"], r["result"]) == (None, "'globex'")
    assert "via target → tenant-db-globex.query" in r["stdout"]
    r = execute(client, "(await kernel.invoke('tenant-db.query', {'target': 'acme'}))['tenant']")
    assert (r["error"], r["result"]) == (None, "'acme'")


def test_background_task_and_config_from_python(client) -> None:
    """A task on the notebook's loop keeps running between cells and sees config changes."""
    code = (
        "import asyncio\n"
        "seen = []\n"
        "async def poll():\n"
        "    for _ in range(50):\n"
        "        r = await kernel.invoke('tenant-db.query', {'target': 'acme'})\n"
        "        seen.append(r['db_url'])\n"
        "        await asyncio.sleep(0.01)\n"
        "task = asyncio.ensure_future(poll())\n"
    )
    assert execute(client, code)["error"] is None
    assert execute(client, "kernel.registry.require('IConfig').set("
                           "'tenants.acme.db_url', 'postgres://bg/acme')")["error"] is None
    r = execute(client, "await task\nseen[-1], len(seen)")
    assert (r["error"], r["result"]) == (None, "('postgres://bg/acme', 50)")


def test_user_errors_are_one_line_in_a_kernel(client) -> None:
    """A UsageError arrives as a short error, not a traceback of our internals."""
    r = execute(client, "%invoke tenant-db.query target=nobody")
    assert r["stdout"].strip() == ("UsageError: No instance serves 'tenant-db.query' for "
                                   "target 'nobody'. Known targets: 'acme', 'globex'.")


def test_unload_shuts_down_cleanly(client) -> None:
    """%unload_ext stops the kernel and its loop thread; IPython's %config still works."""
    assert execute(client, "%unload_ext signalpy_lab")["error"] is None
    r = execute(client, "import threading\n"
                        "[t.name for t in threading.enumerate() if 'signalpy' in t.name]")
    assert r["result"] == "[]"
    assert execute(client, "%config InlineBackend.figure_format = 'svg'")["error"] is None


def test_a_killed_notebook_kernel_leaves_no_worker_behind(kernel_name) -> None:
    """SIGKILL the notebook kernel alone: its worker and its nats-server die with it.

    Jupyter's restart SIGKILLs the kernel's whole process group; a crash kills only the
    kernel. Nothing stops the worker politely then, so this is PDEATHSIG's job (and the
    closed stdin's, should the signal not be armed).
    """
    import os
    import signal
    import time

    from tests.lab.test_process_isolation import alive, wait_gone

    manager, kernel_client = start_new_kernel(kernel_name=kernel_name)
    try:
        code = ("%load_ext signalpy_lab\n"
                "from signalpy_lab.examples.multi_tenant import TenantDatabase\n"
                "%discover TenantDatabase\n"
                "%instantiate tenant-db tenant-db-hooli target=hooli --process\n"
                "import os\n"
                "(kernel.instance('tenant-db-hooli').pid, os.getpid(),\n"
                " kernel.isolation_host('process').server.pid)")
        r = execute(kernel_client, code)
        assert r["error"] is None, r
        pid, kernel_pid, server_pid = map(int, r["result"].strip("()").split(","))
        assert pid != kernel_pid
        assert alive(pid)
        assert alive(server_pid)
        started = time.monotonic()
        os.kill(kernel_pid, signal.SIGKILL)
        assert wait_gone(pid, 5), f"worker {pid} outlived its notebook kernel"
        assert wait_gone(server_pid, 5), f"nats-server {server_pid} outlived its kernel"
        assert time.monotonic() - started < 5
    finally:
        kernel_client.stop_channels()
        manager.shutdown_kernel(now=True)
