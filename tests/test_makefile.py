"""The Makefile: `make` lists the jobs, `make lab` opens the tour, and what is missing is said.

Each test runs make (or `.ci/chromium`) with a venv path that does not exist, so nothing is
installed; where a job would install, the test stops it before (a missing Python or browser)
or only prints its commands (`make -n`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run make here; the caller's own make switches (``SKIP_BROWSER=1 pytest ...``) are not
    passed on, so each test sees make as a new user's shell would."""
    inherited = {k: v for k, v in os.environ.items()
                 if k not in {"SKIP_BROWSER", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run([MAKE, "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**inherited, **(env or {})})


def not_root(tmp_path: Path) -> str:
    """A PATH whose `id` says uid 1000, so `.ci/chromium` acts as for a user who is not root."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def test_make_alone_lists_every_target_with_its_description() -> None:
    """`make` is `make help`: one line per target that has a `## description`."""
    described = re.findall(r"^([a-z][a-z-]*):[^=\n]*## (.+)$", (ROOT / "Makefile").read_text(),
                           re.MULTILINE)
    out = make().stdout
    assert out == make("help").stdout
    listed = re.findall(r"^  ([a-z-]+) +(.+)$", out, re.MULTILINE)
    assert described == listed
    assert {"help", "lab", "demo", "test", "bench", "screenshots", "clean"} <= dict(listed).keys()


def test_make_lab_opens_the_tour_notebook(tmp_path) -> None:
    """JupyterLab's printed URL goes to the tour itself (default_url), not the file browser."""
    out = make("-n", "lab", f"VENV={tmp_path / 'venv'}").stdout
    (path,) = re.findall(r"--LabApp\.default_url=/lab/tree/(\S+)", out)
    assert "notebooks/01_multi_tenant_tour.ipynb" == path
    assert (ROOT / path).is_file()


def test_a_python_older_than_3_11_is_named(tmp_path) -> None:
    """PYTHON that is not 3.11+ stops the setup with one line saying so; no venv is made."""
    venv, old = tmp_path / "venv", tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.12" && exit 0\n'
                   'exit 1\n')  # fails the version check, as a real 3.10 does
    old.chmod(0o755)
    done = make("demo", f"VENV={venv}", f"PYTHON={old}")
    assert 0 != done.returncode
    assert (f"make: PYTHON={old} is not Python 3.11 or newer (it says: Python 3.10.12)."
            in done.stderr)
    assert not venv.exists()


def test_no_python_found_says_what_to_install(tmp_path) -> None:
    """With no python3.1x nor python3 on PATH, make says which it tried and how to fix it."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("cksum", "cut"):
        (tools / tool).symlink_to(shutil.which(tool))
    done = make("demo", f"VENV={tmp_path / 'venv'}", env={"PATH": str(tools)})
    assert 0 != done.returncode
    assert ("make: signalpy_lab needs Python 3.11 or newer, and none of python3.13, "
            "python3.12, python3.11, python3 on PATH is one.") in done.stderr
    assert "make PYTHON=/path/to/python3.12" in done.stderr


def test_make_test_without_chromium_asks_for_it_before_installing(tmp_path) -> None:
    """Not root and no Chromium: the exact apt-get command and SKIP_BROWSER=1, then a failure."""
    venv = tmp_path / "venv"
    # SKIP_BROWSER emptied: the suite itself may run under SKIP_BROWSER=1, which make reads.
    done = make("test", f"VENV={venv}", env={"PATH": not_root(tmp_path), "SKIP_BROWSER": "",
                                             "CHROMIUM": str(tmp_path / "chromium")})
    assert 0 != done.returncode
    assert "    sudo sh -c 'apt-get update && apt-get install -y chromium'" in done.stderr
    assert "make test SKIP_BROWSER=1" in done.stderr
    assert not venv.exists()


def test_skip_browser_runs_the_suite_without_tests_browser(tmp_path) -> None:
    """`make test SKIP_BROWSER=1` needs no Chromium and leaves tests/browser out."""
    out = make("-n", "test", "SKIP_BROWSER=1", f"VENV={tmp_path / 'venv'}",
               env={"PATH": not_root(tmp_path), "CHROMIUM": str(tmp_path / "chromium")}).stdout
    assert ".ci/chromium" not in out
    assert f"{tmp_path / 'venv'}/bin/python -m pytest --ignore=tests/browser" in out


def test_chromium_script_is_quiet_when_chromium_is_there(tmp_path) -> None:
    """An executable at $CHROMIUM: nothing to do, whoever runs it."""
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    done = subprocess.run([ROOT / ".ci" / "chromium"], capture_output=True, text=True,
                          env={**os.environ, "CHROMIUM": str(fake)}, timeout=30)
    assert (0, "", "") == (done.returncode, done.stdout, done.stderr)
