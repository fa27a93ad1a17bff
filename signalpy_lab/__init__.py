"""signalpy_lab: a reactive, multi-tenant component microkernel and a notebook lab over it.

``import signalpy_lab`` is cheap: the lab (IPython, ipywidgets) is imported only by
``%load_ext signalpy_lab``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "load_ipython_extension", "unload_ipython_extension"]

__version__ = "0.1.0"


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext signalpy_lab``: a booted lab kernel, magics and live widgets."""
    from .lab.extension import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext signalpy_lab``: remove everything the extension added; stop the kernel."""
    from .lab.extension import unload_ipython_extension as unload

    unload(ip)
