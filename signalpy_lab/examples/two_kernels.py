"""A second kernel in its own process, sharing config (and routes) with the notebook's.

    from signalpy_lab.examples.two_kernels import SecondKernel
    b = SecondKernel.start(kernel, name="kernel-b")          # another OS process
    b.set("tenants.globex.db_url", "postgres://moved/globex")  # written there, seen here
    b.call("tenant-db.query", {"target": "globex"})          # answered here, with it
    b.stop()

What ``notebooks/05_shared_config.ipynb`` uses to show one config across kernels with a real
second process. The second kernel boots the providers and the seed's ``TenantDatabase``
factory with no tenants of its own, connects to the notebook kernel's NATS servers (its
transport's URLs), and shares the same config bucket (``SharedConfig``). It takes one JSON
command per line on its stdin (the connection's credentials come the same way, never in its
argv or environment) and answers one JSON line on stdout:

    {"op": "set", "key": ..., "value": ...}        -> {"ok": true, "revision": n}
    {"op": "get", "key": ...}                      -> {"ok": true, "value": ...}
    {"op": "call", "handler": ..., "params": {...}} -> {"ok": true, "result": ...}
    {"op": "stop"}                                 -> (exits)

An error is ``{"ok": false, "error": "TypeName: message"}``, raised again on this side.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
import threading
from typing import Any

__all__ = ["SecondKernel", "main"]


class SecondKernel:
    """The notebook's handle on the second kernel's process."""

    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.proc = proc
        self.name = name
        self._lock = threading.Lock()

    @classmethod
    def start(cls, kernel: Any, *, name: str = "kernel-b", timeout: float = 60.0
              ) -> SecondKernel:
        """Start it on the servers and bucket ``kernel``'s shared config uses."""
        config = kernel.registry.require("IConfig")
        shared = config.shared
        if shared is None:
            raise RuntimeError("share the notebook kernel's config first: %config share")
        transport = shared.transport
        proc = subprocess.Popen(
            [sys.executable, "-m", "signalpy_lab.examples.two_kernels"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        second = cls(proc, name)
        # The login travels over its stdin pipe, like a worker's seed: never argv or environ.
        second._send({"servers": list(transport.servers), "user": transport._user,
                      "password": transport._password, "nkeys_seed": transport._nkeys_seed,
                      "bucket": shared.bucket, "name": name}, timeout)
        return second

    def _send(self, message: dict[str, Any], timeout: float = 30.0) -> Any:
        with self._lock:
            assert self.proc.stdin is not None
            assert self.proc.stdout is not None
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited (code {self.proc.poll()})")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise RuntimeError(f"{self.name}: {answer.get('error')}")
        return answer

    def set(self, key: str, value: Any) -> int:
        """``config.set(key, value)`` on the second kernel; the bucket's revision."""
        return int(self._send({"op": "set", "key": key, "value": value})["revision"])

    def get(self, key: str) -> Any:
        """``config.get(key)`` on the second kernel."""
        return self._send({"op": "get", "key": key})["value"]

    def call(self, handler: str, params: dict[str, Any] | None = None) -> Any:
        """``kernel.invoke(handler, params)`` from the second kernel."""
        return self._send({"op": "call", "handler": handler, "params": params or {}})["result"]

    def stop(self) -> None:
        """Stop the second kernel and wait for its process."""
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.kill()
                self.proc.wait()

    def __repr__(self) -> str:
        return f"<SecondKernel {self.name!r} pid {self.proc.pid}>"


async def _serve() -> None:
    from signalpy_lab.examples.multi_tenant import TenantDatabase
    from signalpy_lab.kernel import Kernel, caused_by
    from signalpy_lab.providers import DEFAULT_PROVIDERS
    from signalpy_lab.remote.shared_config import SharedConfig
    from signalpy_lab.remote.transport import NatsTransport

    loop = asyncio.get_running_loop()
    readline = sys.stdin.readline
    boot = json.loads(await loop.run_in_executor(None, readline))
    kernel = Kernel(boot["name"])
    kernel.discover([*DEFAULT_PROVIDERS, TenantDatabase])
    await kernel.boot()
    transport = await NatsTransport(kernel, boot["servers"], user=boot["user"],
                                    password=boot["password"], nkeys_seed=boot["nkeys_seed"],
                                    node=boot["name"]).start()
    shared = await SharedConfig(transport, bucket=boot["bucket"]).start()
    config = kernel.registry.require("IConfig")
    print(json.dumps({"ok": True}), flush=True)
    while True:
        line = await loop.run_in_executor(None, readline)
        if not line:
            break
        command = json.loads(line)
        op = command.get("op")
        if op == "stop":
            break
        try:
            if op == "set":
                with caused_by(f"config.set({command['key']!r}, ...)"):
                    context = contextvars.copy_context()  # the label goes with the write
                    await loop.run_in_executor(None, context.run, config.set, command["key"],
                                               command["value"])
                answer = {"ok": True, "revision": shared.seen}
            elif op == "get":
                answer = {"ok": True, "value": config.get(command["key"])}
            elif op == "call":
                result = await kernel.invoke(command["handler"], command.get("params") or {})
                answer = {"ok": True, "result": result}
            else:
                answer = {"ok": False, "error": f"ValueError: unknown op {op!r}"}
        except Exception as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer, default=str), flush=True)
    await shared.stop()
    await transport.stop()
    await kernel.shutdown()


def main() -> None:
    asyncio.run(_serve())


if __name__ == "__main__":
    main()
