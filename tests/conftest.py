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


#: The IPython 8 the lab is also tested under (IPython 9 is what a fresh install gets): 9
#: advances the prompt number before a cell's hooks run, 8 after, and labels must say the
#: number shown beside the cell under both.
IPYTHON_8 = "ipython>=8.12,<9"


@pytest.fixture(scope="session")
def ipython8_path(tmp_path_factory) -> str:
    """A folder holding IPython 8 (and ``decorator``, which 8 needs and 9 does not), to put
    first on ``PYTHONPATH``: everything else comes from this interpreter's environment.

    Installed from PyPI with pip, once per session (pip's cache makes reruns quick).
    """
    import subprocess
    import sys

    target = tmp_path_factory.mktemp("ipython8")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--target", str(target), IPYTHON_8, "decorator"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"could not install {IPYTHON_8}: {done.stderr[-2000:]}"
    check = subprocess.run(
        [sys.executable, "-c", "import IPython; print(IPython.version_info[0])"],
        env={**__import__("os").environ, "PYTHONPATH": str(target)},
        capture_output=True, text=True, check=False)
    assert check.stdout.strip() == "8", f"IPython 8 does not import: {check.stderr[-2000:]}"
    return str(target)


@pytest.fixture(scope="session")
def ipython8_kernel(kernel_name, ipython8_path, tmp_path_factory) -> str:
    """A Jupyter kernelspec like ``kernel_name``'s, running IPython 8."""
    import json
    import os
    import sys

    root = os.environ["JUPYTER_PATH"].split(os.pathsep)[0]
    spec = os.path.join(root, "kernels", "signalpy-lab-ipython8")
    os.makedirs(spec, exist_ok=True)
    with open(os.path.join(spec, "kernel.json"), "w") as file:
        json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                            "{connection_file}"],
                   "display_name": "signalpy_lab tests (IPython 8)", "language": "python",
                   "env": {"PYTHONPATH": ipython8_path}}, file)
    return "signalpy-lab-ipython8"
