"""The remote tests' private nats-server, shared by a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signalpy_lab.remote.server import NatsServer


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    """A started NatsServer on 127.0.0.1 (authorization on), stopped after the module."""
    server = NatsServer().start()
    try:
        yield server
    finally:
        server.stop()
