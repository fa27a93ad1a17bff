"""A plain `pip install signalpy-lab`, from the wheel, is the kernel and the lab, and no more.

The wheel is built from this checkout and installed without extras into a new venv
(dependencies come from PyPI or pip's cache), as a library user would. There: the kernel
imports without IPython, every module outside ``signalpy_lab.remote`` imports, the lab loads
in an IPython shell and draws an SVG graph with the pip-installed Graphviz, nothing of
JupyterLab or NATS is installed, and what needs the [remote] extra says so in one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HINT = "pip install 'signalpy-lab[remote]'"

CHECKS = textwrap.dedent("""
    import importlib.util, json, sys
    from pathlib import Path

    report = {}
    import signalpy_lab.kernel
    report["kernel_pulls_ipython"] = "IPython" in sys.modules
    report["engine"] = signalpy_lab.kernel.ENGINE
    import pkgutil, signalpy_lab
    failed = []
    for module in pkgutil.walk_packages(signalpy_lab.__path__, "signalpy_lab."):
        if not module.name.startswith("signalpy_lab.remote"):
            try:
                importlib.import_module(module.name)
            except Exception as exc:
                failed.append(f"{module.name}: {exc!r}")
    report["unimportable"] = failed
    report["installed"] = sorted(
        m for m in ("nats", "cloudpickle", "jupyterlab", "ipykernel", "graphviz", "sidecar")
        if importlib.util.find_spec(m) is not None)

    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "signalpy_lab")
    ip.run_line_magic("discover", "signalpy_lab.examples.multi_tenant.TenantDatabase")
    ip.run_cell_magic("config", "", "tenants: {acme: {db_url: 'postgres://db1/acme'}}")
    ip.run_line_magic("instantiate", "tenant-db tenant-db-acme target=acme")
    report["invoke"] = ip.run_line_magic("invoke", "tenant-db.query target=acme")
    svg = Path("graph.svg")
    ip.run_line_magic("graph", f"--export {svg}")
    report["svg"] = svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    try:
        ip.run_line_magic("instantiate", "tenant-db tenant-db-hooli target=hooli --process")
    except UsageError as exc:
        report["process_magic"] = str(exc)
    ip.run_line_magic("unload_ext", "signalpy_lab")

    try:
        import signalpy_lab.remote
    except ImportError as exc:
        report["remote_import"] = f"{type(exc).__name__}: {exc}"
    print("REPORT " + json.dumps(report, default=str))
""")


def run(*command: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          cwd=cwd, timeout=240)
    assert 0 == done.returncode, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(280)
def test_a_plain_install_is_the_kernel_and_the_lab(tmp_path) -> None:
    """Without extras: kernel and lab work, no JupyterLab or NATS, [remote] named in one line."""
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT)
    (wheel,) = dist.glob("signalpy_lab-*.whl")
    # No pip inside the new venv: this pip installs into it (`pip --python`), which is faster.
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", wheel)

    out = run(python, "-c", CHECKS, cwd=work)
    report = json.loads(out.split("REPORT ", 1)[1])
    assert report["kernel_pulls_ipython"] is False
    # pip wheel compiled graph.py (hatch_build.py) where a C compiler and Python's headers
    # exist (issue 21), and installed the pure one elsewhere.
    can_compile = shutil.which("cc") and Path(sysconfig.get_paths()["include"], "Python.h").exists()
    assert report["engine"] == ("compiled" if can_compile else "pure")
    assert [] == report["unimportable"]
    assert [] == report["installed"]
    assert "acme" == report["invoke"]["tenant"]
    assert report["svg"] is True
    assert report["process_magic"].endswith(HINT)
    assert "\n" not in report["process_magic"]
    assert ("MissingExtraError: signalpy_lab.remote needs nats-py and cloudpickle, which are "
            f"not installed: {HINT}") == report["remote_import"]
    assert "signalpy_lab: kernel booted" in out
