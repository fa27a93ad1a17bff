"""The far side of ``benchmarks.remote``, in an OS process of its own.

Why a separate process: a kernel serving over NATS from the caller's own process shares
the caller's event loop and interpreter lock, which is not what "another kernel" means in
production. This script boots a kernel with the benchmark's tenant component
(``benchmarks.ours_tenants.TenantDatabase``) for the targets it is given, serves it with
a ``NatsTransport``, and also runs the raw comparison's echo responder (a plain nats-py
connection answering every request on ``ECHO_SUBJECT`` with its own payload), so ours and
raw are measured against a responder in the same kind of process.

    python -m benchmarks.remote_peer URL USER PASSWORD NODE TARGET [TARGET ...]

It prints one JSON line ``{"ready": true, "pid": ...}`` once it serves, then lives until
its stdin closes (the benchmark ended or died).
"""
from __future__ import annotations

import asyncio
import json
import os
import sys

import nats

from benchmarks.ours_tenants import FACTORY, TenantDatabase
from signalpy_lab.kernel import Kernel
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider
from signalpy_lab.remote.transport import NatsTransport

__all__ = ["ECHO_SUBJECT", "build_kernel", "main"]

#: The raw responder's subject in this process (the caller's own one uses another).
ECHO_SUBJECT = "bench.echo.peer"


def build_kernel(name: str, targets: list[str], config_targets: list[str] | None = None
                 ) -> Kernel:
    """A kernel with config, logging, credentials and one ``tenant-db`` per target.

    ``config_targets`` (default: ``targets``) get a ``tenants.<t>.db_url`` in the config,
    so a tenant added later (a process-isolated one) finds its section there.
    """
    kernel = Kernel(name)
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, TenantDatabase])
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: {"db_url": f"postgres://db/{t}"} for t in (config_targets or targets)}}})
    for target in targets:
        kernel.instantiate(FACTORY, f"{FACTORY}-{target}", {"target": target})
    return kernel


async def echo_responder(url: str, seed: str, subject: str) -> object:
    """A nats-py connection (NKey ``seed``) that answers every request on ``subject`` with
    its payload."""
    nc = await nats.connect(url, nkeys_seed_str=seed, name=f"echo:{subject}")

    async def echo(msg: object) -> None:
        await msg.respond(msg.data)  # type: ignore[attr-defined]

    await nc.subscribe(subject, cb=echo)
    await nc.flush()
    return nc


async def _main(url: str, seed: str, node: str, targets: list[str]) -> None:
    kernel = build_kernel(node, targets)
    await kernel.boot()
    transport = await NatsTransport(kernel, url, nkeys_seed=seed).start()
    echo = await echo_responder(url, seed, ECHO_SUBJECT)
    print(json.dumps({"ready": True, "pid": os.getpid()}), flush=True)
    await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our stdin
    await echo.close()  # type: ignore[attr-defined]
    await transport.stop()
    await kernel.shutdown()


def main() -> None:
    url, node, *targets = sys.argv[1:]
    seed = sys.stdin.readline().strip()  # the admin's NKey seed: over stdin, never argv
    asyncio.run(_main(url, seed, node, targets))


if __name__ == "__main__":
    main()
