"""What the worker sandbox costs at start-up: `confine()`, and a child with and without it.

    .venv/bin/python -m benchmarks.sandbox [--quick]

Why: ``confine()`` runs at every worker start (issue 19), and item 4's goal is a worker ready
in 50 ms, so its share must be known. Each round starts two fresh interpreters, interleaved
so a slow spell of the 2-core machine hits both: one imports ``signalpy_lab.remote.sandbox``,
builds ``Confinement.for_worker(...)`` (storage and temp dir in a temporary folder, one NATS
port) and calls ``confine()``; the other does the same but does not confine. Reported:
``confine()`` as it measures itself (``SandboxReport.seconds``: closing inherited descriptors,
prctl, the Landlock ruleset, the seccomp filter, dropping capabilities), ``for_worker()``
(resolving the read-only paths), and each child's whole wall time, median and p90.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._harness import REPO_ROOT, Table, progress, report_main

FULL, QUICK = 40, 6

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from signalpy_lab.remote.sandbox import Confinement, confine
t1 = time.perf_counter()
c = Confinement.for_worker(storage=sys.argv[1], temp_dir=sys.argv[2], connect_ports=[4222])
t2 = time.perf_counter()
report = confine(c) if sys.argv[3] == "confine" else None
print(json.dumps({"import": t1 - t0, "for_worker": t2 - t1,
                  "confine": report.seconds if report else None,
                  "sandbox": str(report) if report else None}))
"""


def _child(storage: Path, tmp: Path, mode: str) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, str(storage), str(tmp), mode],
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT).stdout
    return time.perf_counter() - started, json.loads(out)


def _ms(values: list[float]) -> tuple[str, str, str]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return (f"{statistics.median(ordered) * 1000:.2f}", f"{p90 * 1000:.2f}",
            f"{ordered[0] * 1000:.2f}")


async def run(rounds: int) -> list[Table]:
    with tempfile.TemporaryDirectory(prefix="spl-bench-sandbox-") as root:
        storage, tmp = Path(root, "acme"), Path(root, "tmp")
        storage.mkdir()
        tmp.mkdir()
        walls: dict[str, list[float]] = {"confine": [], "plain": []}
        inner: dict[str, list[float]] = {"confine": [], "for_worker": []}
        sandbox = ""
        for i in range(rounds):
            progress(f"round {i + 1}/{rounds}")
            for mode in (("confine", "plain") if i % 2 else ("plain", "confine")):
                wall, report = _child(storage, tmp, mode)
                walls[mode].append(wall)
                if mode == "confine":
                    inner["confine"].append(float(report["confine"]))  # type: ignore[arg-type]
                    inner["for_worker"].append(float(report["for_worker"]))  # type: ignore[arg-type]
                    sandbox = str(report["sandbox"])
    table = Table(f"Worker sandbox at start-up ({rounds} rounds; ms)",
                  ["what", "median", "p90", "min"])
    table.add("confine()", *_ms(inner["confine"]))
    table.add("Confinement.for_worker()", *_ms(inner["for_worker"]))
    table.add("child: import + for_worker + confine", *_ms(walls["confine"]))
    table.add("child: import + for_worker, no confine", *_ms(walls["plain"]))
    table.notes.append(f"confine() applied: `sandbox: {sandbox}`. Child times are whole "
                       "processes (interpreter start-up included), started one at a time.")
    return [table]


def _header() -> str:
    from signalpy_lab.remote.sandbox import landlock_abi

    return f"- Landlock ABI of this kernel: {landlock_abi()}"


def main(argv: list[str] | None = None) -> None:
    report_main(argv, module="benchmarks.sandbox", doc=__doc__,
                title="Worker sandbox: what confine() costs at start-up",
                quick_help="a smoke run (~2 s)", header=_header,
                run=lambda quick: run(QUICK if quick else FULL))


if __name__ == "__main__":
    main()
