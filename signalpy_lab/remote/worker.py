"""The worker: one process-isolated instance, in a kernel of its own, served over NATS.

Started by ``ProcessHost`` as ``python -m signalpy_lab.remote.worker``; it reads one JSON line
on stdin (the bootstrap), prints one JSON line on stdout when it serves (``{"ready": true,
"pid": ...}``) or why it could not, and then lives until the host says stop, its stdin
closes (the host process is gone) or it is killed (it also gets SIGKILL when the host dies).

Bootstrap::

    {"servers": ["nats://127.0.0.1:4222", ...], "user": "w-tenant-db-hooli", "password": "...",
     "node": "w-tenant-db-hooli", "inbox_prefix": "_INBOX_w-tenant-db-hooli",
     "name": "tenant-db-hooli", "properties": {"target": "hooli"},
     "factory": {"module": "pkg.mod", "qualname": "TenantDatabase"} | {"pickle": "<base64>"},
     "config": {<the instance's config view: shared keys, its tenant section, its apps.<name>>},
     "storage_root": "/path" | null, "offset": 1000000000}

What the worker receives is exactly the instance's own view; later changes to it arrive on
``spl.v1.config.<node>`` as ``{"set": {key: value}, "unset": [key], "command": ...}``, applied
in one batch so each changed key re-runs its readers once. Its kernel's events are relayed on
``spl.v1.events.<node>`` every ``RELAY_SECONDS``, with the instance's graph snapshot, so the
host's lab draws the instance like any other. The host believes none of their owners,
tenants, ids or foreign labels: it stamps them with this worker's own (``relay.py``).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import sys
import threading
from typing import Any

from ..kernel import Kernel, batch, caused_by
from ..kernel.events import Event
from ..providers import ConfigProvider, CredentialProvider, LoggingProvider, StorageProvider
from . import wire
from .transport import NatsTransport

__all__ = ["HOST_CHANGE", "PROVIDERS", "RELAY_SECONDS", "load_class", "main"]

#: How often the worker sends its buffered events (and graph) to the host.
RELAY_SECONDS = 0.05
#: The providers every worker boots: the host shows their nodes as ``<name>@w-<instance>``
#: (``relay.WORKER_PROVIDERS``), and any other owner a relay names as the instance itself.
PROVIDERS = (ConfigProvider, LoggingProvider, CredentialProvider, StorageProvider)
#: The command a config change from the host runs under when the host named none.
HOST_CHANGE = "config change (host)"


def load_class(ref: dict[str, Any]) -> type:
    """The component class a bootstrap names: imported by module path, or unpickled by value."""
    if "pickle" in ref:
        import cloudpickle

        return cloudpickle.loads(base64.b64decode(ref["pickle"]))  # type: ignore[no-any-return]
    target: Any = importlib.import_module(ref["module"])
    for part in ref["qualname"].split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _event_dict(event: Event) -> dict[str, Any]:
    return event.to_dict()


async def _serve(boot: dict[str, Any]) -> int:
    cls = load_class(boot["factory"])
    node, name = boot["node"], boot["name"]
    kernel = Kernel(node)
    kernel.discover(list(PROVIDERS))
    if boot.get("storage_root"):
        kernel.instantiate("storage", properties={"root": boot["storage_root"]})
    if boot.get("host_owned") is not None:  # the host's write policy, enforced here too
        kernel.instantiate("config", properties={"host_owned": boot["host_owned"]})
    await kernel.boot()
    config = kernel.registry.require("IConfig")
    if boot.get("config"):
        config.merge(boot["config"])  # runtime layer: a later unset removes a key for good
    kernel.discover([cls])
    transport = await NatsTransport(
        kernel, boot["servers"], user=boot.get("user"), password=boot.get("password"), node=node,
        announce=False, inbox_prefix=boot.get("inbox_prefix"),
        timeout=float(boot.get("timeout", 10.0))).start()
    nc = transport._nc
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def on_config(msg: Any) -> None:
        change = wire.decode(msg.data)
        with caused_by(change.get("command") or HOST_CHANGE), batch():
            for key, value in (change.get("set") or {}).items():
                config.set(key, value)
            for key in change.get("unset") or ():
                config.unset(key)

    async def on_control(msg: Any) -> None:
        request = wire.decode(msg.data)
        if request.get("op") == "stop":
            stopping.set()
        elif request.get("op") == "graph" and msg.reply:
            await msg.respond(wire.encode({"graph": kernel.graph(instance=name).to_dict()}))

    await nc.subscribe(wire.config_subject(node), cb=on_config)
    await nc.subscribe(wire.control_subject(node), cb=on_control)
    await transport.settle()  # the host calls as soon as it reads "ready"
    pending: list[Event] = []

    # Without calls: the host's bus records each call itself, and the worker's bus then
    # builds no HandlerInvoked per call for nobody.
    kernel.events.subscribe(pending.append, calls=False)

    async def relay() -> None:
        subject = wire.events_subject(node)
        while not stopping.is_set():
            await asyncio.sleep(RELAY_SECONDS)
            if not pending or not nc.is_connected:
                continue
            batch_, pending[:] = list(pending), []
            try:
                await nc.publish(subject, wire.encode({
                    "events": [_event_dict(e) for e in batch_],
                    "graph": kernel.graph(instance=name).to_dict()}))
            except Exception as exc:  # a relay must never take the worker down
                print(f"worker {node}: relay failed: {exc}", file=sys.stderr)

    def watch_stdin() -> None:  # the host's end of the pipe closes when the host dies
        sys.stdin.read()
        loop.call_soon_threadsafe(stopping.set)

    try:
        await kernel.hot_add(cls, name, boot.get("properties") or {})
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        await transport.stop()
        return 1
    relay_task = asyncio.ensure_future(relay())
    threading.Thread(target=watch_stdin, daemon=True, name="spl-worker-stdin").start()
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    await stopping.wait()
    relay_task.cancel()
    await kernel.shutdown()
    await transport.stop()
    return 0


def main() -> int:
    line = sys.stdin.readline()
    if not line:
        print(json.dumps({"ready": False, "error": "no bootstrap on stdin"}), flush=True)
        return 2
    try:
        boot = json.loads(line)
        return asyncio.run(_serve(boot))
    except Exception as exc:
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
