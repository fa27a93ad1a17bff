"""Shared fixtures: a booted seed kernel, and a leak check on the reactive graph."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signalpy_lab.examples.multi_tenant import build_kernel
from signalpy_lab.kernel import Kernel


@pytest.fixture
async def seed_kernel() -> AsyncIterator[Kernel]:
    """The design note's kernel: config + logging + credentials + three tenant-db instances."""
    kernel = await build_kernel()
    yield kernel
    await kernel.shutdown()
