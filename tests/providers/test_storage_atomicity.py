"""Storage writes are atomic: a process killed mid-write leaves the old value or the new one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from signalpy_lab.kernel.sealed import seal
from signalpy_lab.providers.storage import StorageHandle

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from signalpy_lab.kernel.sealed import seal
    from signalpy_lab.providers.storage import StorageHandle

    root, size = Path(sys.argv[1]), int(sys.argv[2])
    handle = seal(StorageHandle, ((root / "writer").resolve(), "writer"))
    version = 0
    print("ready", flush=True)
    while True:  # ever-new complete values, each one byte repeated
        version += 1
        handle.write("state.bin", bytes([version % 251]) * size)
""")


def test_a_killed_writer_never_leaves_a_partial_file(tmp_path) -> None:
    """SIGKILL a process writing 4 MiB values in a loop, 15 times: every file is whole."""
    size = 4 * 1024 * 1024
    handle = seal(StorageHandle, ((tmp_path / "writer").resolve(), "writer"))
    handle.write("state.bin", b"\xff" * size)
    for attempt in range(15):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(size)],
                                   stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.02 + 0.013 * attempt)  # land the kill at different points of a write
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        process.stdout.close()
        data = handle.read("state.bin")
        assert len(data) == size, f"partial file after kill {attempt}: {len(data)} bytes"
        assert data == data[:1] * size, f"mixed contents after kill {attempt}"
        assert handle.list() == ["state.bin"]  # leftover temp files are never listed
