"""Shared fixtures: a booted seed kernel, a key a thousand computeds read, and a leak check
on the reactive graph."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from signalpy_lab.examples.multi_tenant import build_kernel
from signalpy_lab.kernel import Computed, Kernel, Signal
from signalpy_lab.kernel.reactive import Scope


@pytest.fixture
def shared_key() -> SimpleNamespace:
    """``kernel``; ``signal`` (``shared.timeout = 5``), owned by a scope on the kernel's hub;
    and ``readers``, 1,000 computeds ``tenant-<i>.timeout`` that have each read it once."""
    kernel = Kernel()
    with Scope("shared", hub=kernel.events).active():
        timeout = Signal(5, label="shared.timeout")
        readers = [Computed(lambda i=i: timeout() + i, label=f"tenant-{i}.timeout")
                   for i in range(1000)]
    for reader in readers:
        reader()
    return SimpleNamespace(kernel=kernel, signal=timeout, readers=readers)


@pytest.fixture
async def seed_kernel() -> AsyncIterator[Kernel]:
    """The design note's kernel: config + logging + credentials + three tenant-db instances."""
    kernel = await build_kernel()
    yield kernel
    await kernel.shutdown()


@pytest.fixture(scope="session")
def kernel_name(tmp_path_factory) -> str:
    """A Jupyter kernelspec that runs *this* interpreter, whatever else is installed.

    A user- or system-wide `python3` kernelspec may point at another Python without
    signalpy_lab; JUPYTER_PATH is searched first, so this spec always wins.
    """
    import json
    import os
    import sys

    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / "signalpy-lab-tests"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "signalpy_lab tests", "language": "python",
    }))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        filter(None, [str(root), os.environ.get("JUPYTER_PATH")]))
    return "signalpy-lab-tests"
