"""The public API: what `__all__` promises is exported, and the layers stay apart."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC_MODULES = [
    "signalpy_lab.errors",
    "signalpy_lab.extras",
    "signalpy_lab.kernel",
    "signalpy_lab.kernel.graph",
    "signalpy_lab.kernel.reactive",
    "signalpy_lab.kernel.events",
    "signalpy_lab.kernel.metadata",
    "signalpy_lab.kernel.registry",
    "signalpy_lab.kernel.runtime",
    "signalpy_lab.kernel.lifecycle",
    "signalpy_lab.kernel.bus",
    "signalpy_lab.kernel.introspection",
    "signalpy_lab.kernel.kernel",
    "signalpy_lab.providers",
    "signalpy_lab.lab",
    "signalpy_lab.lab.lines",
    "signalpy_lab.lab.model",
    "signalpy_lab.lab.render",
    "signalpy_lab.lab.suggest",
    "signalpy_lab.lab.widgets",
    "signalpy_lab.testing",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_names_exist_and_are_unique(name: str) -> None:
    """Every name in `__all__` is defined, and none is listed twice."""
    module = importlib.import_module(name)
    assert sorted(set(module.__all__)) == sorted(module.__all__)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []


def test_kernel_package_exports_the_issue_api() -> None:
    """The kernel API named in the design is importable from `signalpy_lab.kernel`."""
    import signalpy_lab.kernel as kernel

    wanted = {"Kernel", "component", "provides", "requires", "runnable", "computed", "effect",
              "lifecycle", "subscribe", "Signal", "Computed", "Effect", "batch", "untracked"}
    assert wanted - set(kernel.__all__) == set()


def test_kernel_imports_neither_ipython_nor_providers() -> None:
    """Importing the kernel pulls in no notebook machinery and no provider (layering)."""
    code = (
        "import sys, signalpy_lab.kernel;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('IPython', 'ipywidgets',"
        " 'ipykernel', 'graphviz') or m.startswith('signalpy_lab.providers')];"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
