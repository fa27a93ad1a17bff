"""Where lab data goes: a fresh folder per session, removed at the end, unless one is named.

A notebook must run any number of times in a row, so every lab session starts with empty
storage in a temporary folder of its own (never the notebook's folder); ``%reset`` empties it,
``%unload_ext`` removes it. ``SIGNALPY_LAB_DATA=/path`` keeps data there across sessions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from signalpy_lab.lab.session import ENV_DATA, LabData
from signalpy_lab.testing import LabShell


def storage(lab: LabShell):
    return lab.user_ns["kernel"].registry.require("IStorage")


def test_each_session_has_a_fresh_folder_removed_when_it_ends(tmp_path, monkeypatch) -> None:
    """Two sessions never share storage, the load message says where it is, nothing in cwd."""
    monkeypatch.delenv(ENV_DATA, raising=False)
    monkeypatch.chdir(tmp_path)
    with LabShell() as lab:
        first = Path(storage(lab).root)
        assert f"lab data in {first.parent}, a fresh folder removed when this session ends; " \
            f"set {ENV_DATA}=/path to keep it." in lab.output
        storage(lab).handle("tenant-db-acme").write_text("users.txt", "ada")
    assert not first.parent.exists()
    with LabShell() as lab:
        second = Path(storage(lab).root)
        assert second != first
        assert [] == storage(lab).handle("tenant-db-acme").list()
    assert [] == list(tmp_path.iterdir())


def test_reset_empties_storage_and_a_restart_keeps_it(monkeypatch) -> None:
    """`%reset` is a fresh kernel with fresh data; `%shutdown` then `%boot` keeps the files."""
    monkeypatch.delenv(ENV_DATA, raising=False)
    with LabShell() as lab:
        storage(lab).handle("tenant-db-acme").write_text("users.txt", "ada")
        lab.run("%shutdown")
        lab.run("%boot")
        assert "ada" == storage(lab).handle("tenant-db-acme").read_text("users.txt")
        lab.run("%reset")
        assert [] == storage(lab).handle("tenant-db-acme").list()


def test_a_named_folder_keeps_data_across_sessions(tmp_path, monkeypatch) -> None:
    """With SIGNALPY_LAB_DATA, storage lives in <it>/storage and outlives every session."""
    monkeypatch.setenv(ENV_DATA, str(tmp_path / "lab-data"))
    with LabShell() as lab:
        assert f"lab data in {tmp_path / 'lab-data'} (from ${ENV_DATA}; kept across " \
            "sessions, never emptied)." in lab.output
        assert tmp_path / "lab-data" / "storage" == Path(storage(lab).root)
        storage(lab).handle("tenant-db-acme").write_text("users.txt", "ada")
        lab.run("%reset")
    with LabShell() as lab:
        assert "ada" == storage(lab).handle("tenant-db-acme").read_text("users.txt")


def test_a_temporary_folder_goes_at_exit_even_without_close() -> None:
    """An abandoned LabData is removed when it is collected or the process exits."""
    data = LabData(environ={})
    path = data.path
    assert path.is_dir()
    del data
    assert not path.exists()


def test_a_killed_sessions_folder_is_removed_by_the_next_session() -> None:
    """A folder whose process is gone (killed before its exit code ran) goes; a live one stays."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        orphan = Path(tempfile.mkdtemp(prefix=f"signalpy-lab-{dead}-"))
        (orphan / "storage").mkdir()
        running = Path(tempfile.mkdtemp(prefix=f"signalpy-lab-{alive.pid}-"))
        data = LabData(environ={})
        assert (False, True) == (orphan.exists(), running.exists())
        assert data.path.name.startswith(f"signalpy-lab-{os.getpid()}-")
        data.remove()
    finally:
        alive.kill()
        alive.wait()
        running.rmdir()
