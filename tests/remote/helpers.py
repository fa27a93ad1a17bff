"""A nats-py client for tests that records what the server told it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from signalpy_lab.remote.server import NatsServer


async def settle(nc: Any) -> None:
    """Return once the server has processed everything ``nc`` sent so far.

    One ``flush()`` is not that barrier in nats-py 2.16: it writes PING straight to the socket,
    ahead of SUB/PUB commands still queued for the client's flusher task, so the PONG can come
    back before a ``subscribe()`` made just before it is in place. By the time the first PONG is
    back the flusher has run; the second PING is behind those commands.
    """
    await nc.flush()
    await nc.flush()


class Client:
    """A nats-py connection that records what the server told it (``error_cb`` and friends)."""

    def __init__(self) -> None:
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.nc: Any = None

    async def on_error(self, exc: Exception) -> None:
        await self.errors.put(exc)

    async def on_closed(self) -> None:
        self.closed.set()

    async def on_disconnected(self) -> None:
        self.disconnected.set()

    async def on_reconnected(self) -> None:
        self.reconnected.set()

    async def next_violations(self, count: int, timeout: float = 5.0) -> list[str]:
        """The next ``count`` permission violations the server reported, waiting at most
        ``timeout`` for each (connection errors such as "unexpected EOF" are skipped)."""
        found: list[str] = []
        while len(found) < count:
            message = str(await asyncio.wait_for(self.errors.get(), timeout))
            if "permissions violation" in message:
                found.append(message)
        return found


@asynccontextmanager
async def connect(server: NatsServer, seed: str, **options: Any) -> AsyncIterator[Client]:
    """Connect with NKey ``seed``; callbacks are coroutine functions, as nats-py requires."""
    import nats

    client = Client()
    options.setdefault("allow_reconnect", False)
    client.nc = await nats.connect(
        server.url, nkeys_seed_str=seed, error_cb=client.on_error,
        closed_cb=client.on_closed, disconnected_cb=client.on_disconnected,
        reconnected_cb=client.on_reconnected, connect_timeout=5, **options)
    try:
        yield client
    finally:
        await client.nc.close()
