"""The lab side of process-isolated tenants: `--process`, `%restart`, and every view of them.

    notebook process (pid A)                      worker process (pid B)
    config ── tenants.hooli.* ──▶ (config view → worker) ══NATS══▶ tenant-db-hooli.db_url

One worker per test (starting one takes about a second), so the tests stay few.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from signalpy_lab.kernel import Kernel
from signalpy_lab.kernel.events import Cause, SignalSet
from signalpy_lab.lab.model import LabModel
from signalpy_lab.testing import LabShell

SETUP = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
%config set tenants.acme.db_url postgres://db1/acme
%config set tenants.hooli.db_url postgres://db1/hooli
%instantiate tenant-db tenant-db-acme target=acme
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.05)
    return False


def row_of(table, name: str) -> dict[str, str]:
    for row in table.rows:
        if row[0] == name:
            return dict(zip(table.headers, row))
    raise AssertionError(f"no row {name!r} in {table}")


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run(SETUP)
        yield shell


def test_a_process_tenant_is_shown_like_any_other(lab) -> None:
    """`--process` hosts hooli in a worker; instances, bus, graph and %why all show it."""
    lab.run("%instantiate tenant-db tenant-db-hooli target=hooli --process")
    pid = lab.user_ns["kernel"].instance("tenant-db-hooli").pid
    sandbox = lab.user_ns["kernel"].isolation_host("process").sandbox_state("tenant-db-hooli")
    assert f"tenant-db-hooli: active (activated, in worker pid {pid}; sandbox: {sandbox})" \
        in lab.output
    assert pid != os.getpid()
    assert alive(pid)

    table = lab.run("%instances")
    assert (row_of(table, "tenant-db-hooli")["isolation"], row_of(table, "tenant-db-hooli")["pid"]
            ) == ("process", str(pid))
    assert (row_of(table, "tenant-db-acme")["isolation"], row_of(table, "tenant-db-acme")["pid"]
            ) == ("inline", "")
    assert ("connected", "") == (row_of(table, "tenant-db-hooli")["transport"],
                                 row_of(table, "tenant-db-acme")["transport"])
    assert (sandbox, "") == (row_of(table, "tenant-db-hooli")["sandbox"],
                             row_of(table, "tenant-db-acme")["sandbox"])
    assert sandbox.startswith(("landlock v", "none ("))
    assert table.footer.startswith("nats:lab connected to nats://127.0.0.1:")
    assert "<th style='text-align:left'>isolation</th>" in table._repr_html_()
    assert f"<td style='text-align:left'>{pid}</td>" in table._repr_html_()

    assert lab.run("%invoke tenant-db.query target=hooli")["db_url"] == "postgres://db1/hooli"
    assert "tenant-db.query via transport in" in lab.output
    bus = lab.run("%bus --text")
    rows = {r[4].split(" ")[0]: dict(zip(bus.headers, r)) for r in bus.rows}
    hooli, acme = rows["tenant-db.query[hooli]"], rows["tenant-db.query[acme]"]
    assert (hooli["via"], hooli["calls"], acme["via"]) == ("transport", "1", "local")
    from signalpy_lab.lab.widgets import BusTable

    widget = BusTable(lab.session.model, filter="via:transport")
    assert [(r["handler"], r["via"], r["calls"]) for r in widget.rows] == [
        ("tenant-db-hooli.query", "transport", 1), ("tenant-db-hooli.status", "transport", 0)]
    assert " · nats:lab connected to nats://127.0.0.1:" in widget.summary
    widget.close()

    graph = lab.run("%graph --text --instance tenant-db-hooli")
    nodes = {r[4]: dict(zip(graph.headers, r)) for r in graph.rows}
    assert nodes["tenant-db-hooli.db_url"]["reads"] == "tenants.hooli.db_url"
    assert nodes["tenants.hooli.db_url"]["instance"] == "config@w-tenant-db-hooli"
    assert not any(r[1].startswith(("logging@", "storage@")) for r in graph.rows)
    runs = int(nodes["tenant-db-hooli.db_url"]["runs"])
    # Its params model is known here (the class was discovered here): a typo is refused.
    assert "unknown parameter 'tabel'. Did you mean 'table'?" in lab.usage_error(
        "%invoke tenant-db.query target=hooli tabel=users")

    lab.run("%invoke tenant-db.query target=acme")  # acme's db_url has run: it can stay put
    lab.run("%config set tenants.hooli.db_url postgres://db9/hooli")
    assert lab.run("%invoke tenant-db.query target=hooli")["db_url"] == "postgres://db9/hooli"
    why = str(lab.run("%why tenant-db-hooli.db_url"))
    assert why.startswith("tenant-db-hooli.db_url: recomputed in epoch")
    assert ("because tenants.hooli.db_url changed from 'postgres://db1/hooli' to "
            "'postgres://db9/hooli' by `%config set tenants.hooli.db_url postgres://db9/hooli`"
            ) in why
    assert "through tenants.hooli.db_url → tenant-db-hooli.db_url" in why
    assert f"runs so far: {runs + 1}" in why  # one body run, in the worker
    assert str(lab.run("%why tenant-db-acme.db_url")).startswith(
        "tenant-db-acme.db_url: did NOT recompute")


def test_a_dead_worker_fails_at_once_shows_failed_and_restarts(lab) -> None:
    """SIGKILL the worker: calls fail at once, %instances says failed, %restart brings it back."""
    lab.run("%instantiate tenant-db tenant-db-hooli target=hooli --process")
    kernel = lab.user_ns["kernel"]
    pid = kernel.instance("tenant-db-hooli").pid
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while kernel.instance("tenant-db-hooli").state.value != "failed" and \
            time.monotonic() < deadline:
        time.sleep(0.02)

    started = time.monotonic()
    error = lab.usage_error("%invoke tenant-db.query target=hooli")
    assert time.monotonic() - started < 1.0
    assert f"(pid {pid}) exited with code -9" in error
    assert "%restart tenant-db-hooli" in error
    row = row_of(lab.run("%instances"), "tenant-db-hooli")
    assert (row["state"], row["pid"]) == ("failed", "")
    assert row["error"].startswith("WorkerError: the worker process of 'tenant-db-hooli'")
    assert "which is failed: WorkerError" in lab.usage_error("%why tenant-db-hooli.db_url")
    assert lab.run("%invoke tenant-db.query target=acme")["tenant"] == "acme"  # unaffected

    assert lab.usage_error("%restart tenant-db-hoolie").startswith(
        "%restart: no instance 'tenant-db-hoolie'. Did you mean 'tenant-db-hooli'")
    lab.run("%restart tenant-db-hooli")
    new_pid = kernel.instance("tenant-db-hooli").pid
    assert lab.output.strip() == f"tenant-db-hooli: active (worker pid {new_pid})"
    assert new_pid != pid
    assert lab.run("%invoke tenant-db.query target=hooli")["db_url"] == "postgres://db1/hooli"
    lab.run("%restart tenant-db-acme")
    assert lab.output.strip() == "tenant-db-acme: active (in this process)"


def test_shutdown_boot_and_unload_leave_no_worker_behind() -> None:
    """%shutdown stops the worker, %boot brings it back in a new one, %unload_ext stops it."""
    with LabShell(load=False) as lab:
        lab.run("%load_ext signalpy_lab")
        try:
            lab.run(SETUP + "%instantiate tenant-db tenant-db-hooli target=hooli --process")
            kernel = lab.user_ns["kernel"]
            first = kernel.instance("tenant-db-hooli").pid
            lab.run("%shutdown")
            assert wait_gone(first)
            lab.run("%boot")
            kernel = lab.user_ns["kernel"]
            second = kernel.instance("tenant-db-hooli").pid
            assert kernel.instance("tenant-db-hooli").isolation == "process"
            assert second not in (None, first)
            assert alive(second)
            assert lab.run("%invoke tenant-db.query target=hooli")["tenant"] == "hooli"
        finally:
            lab.run("%unload_ext signalpy_lab")
        assert wait_gone(second)


def test_instantiate_process_before_boot_is_queued_with_its_isolation() -> None:
    """Before %boot, `--process` queues the instance; %boot starts its worker."""
    with LabShell() as lab:
        lab.run("%reset --no-boot")
        lab.run(SETUP.replace("%instantiate tenant-db tenant-db-acme target=acme\n", ""))
        lab.run("%instantiate tenant-db tenant-db-hooli target=hooli --process")
        assert lab.output.strip() == ("tenant-db-hooli: pending (queued until %boot; %boot "
                                      "starts its worker process)")
        row = row_of(lab.run("%instances"), "tenant-db-hooli")
        assert (row["state"], row["isolation"], row["pid"]) == ("pending", "process", "")
        lab.run("%boot")
        assert lab.user_ns["kernel"].instance("tenant-db-hooli").pid not in (None, os.getpid())


def test_a_relayed_echo_of_this_epochs_write_stays_in_the_epoch() -> None:
    """A worker's copy of a `%config set`, relayed after the cell ended, keeps the epoch.

        %config set (epoch 1) ─▶ tenants.hooli.* (here) ···relay 50 ms···▶ tenants.hooli.db_url
                                                                           (worker, id ≥ 10⁹)
    """
    kernel = Kernel()
    model = LabModel(kernel)
    command = "%config set tenants.hooli.db_url postgres://db9/hooli"

    def write(node_id: int, label: str, instance: str, command: str) -> None:
        kernel.events.emit(SignalSet(
            node_id=node_id, label=label, instance=instance, tenant="hooli",
            cause=Cause(id=node_id + 1, signal_id=node_id, signal=label, command=command,
                        old="'a'", new="'b'")))

    model.cell_started("cell [3]: " + command)
    write(7, "tenants.hooli.*", "config", command)
    model.cell_finished()
    model.epoch = type(model.epoch)(model.epoch.number, model.epoch.label,
                                    model.epoch.started - 1)  # the relay comes late
    write(3_000_000_007, "tenants.hooli.db_url", "config@w-tenant-db-hooli", command)
    assert (model.epoch.number, model.status_of(7), model.status_of(3_000_000_007)) == (
        1, "set", "set")
    write(3_000_000_009, "tenants.hooli.other", "config@w-tenant-db-hooli", "elsewhere")
    assert (model.epoch.number, model.status_of(7)) == (2, "untouched")  # a new write: new epoch
    model.close()


def test_as_a_process_tenant_runs_the_cell_inside_its_worker(lab) -> None:
    """`%%as tenant-db-hooli` runs in hooli's worker with its rt and self: its own section
    reads, the notebook's names do not exist there, prints come back, the OS refuses the
    host's /proc in one line, and a bug is a traceback numbered as the cell."""
    lab.run("%instantiate tenant-db tenant-db-hooli target=hooli --process")
    kernel = lab.user_ns["kernel"]
    pid = kernel.instance("tenant-db-hooli").pid
    assert {"db_url": "postgres://db1/hooli", "pid": pid, "me": "TenantDatabase"} == lab.run(
        "%%as tenant-db-hooli\nimport os\nprint('inside', os.getpid())\n"
        "{'db_url': rt.config.get(f'tenants.{rt.target}.db_url'), 'pid': os.getpid(),"
        " 'me': type(self).__name__}")
    assert lab.output.startswith(f"inside {pid}\n")

    error, shown = lab.failure("%%as tenant-db-hooli\nkernel")
    assert (NameError, "name 'kernel' is not defined") == (type(error), str(error))
    assert "line 2, in <module>" in shown
    assert "    kernel" in shown

    error, shown = lab.failure("%%as tenant-db-hooli\nrt.config.get('tenants.acme.db_url')")
    assert shown.startswith("TenantIsolationError: Instance 'tenant-db-hooli' (target "
                            "'hooli') may not read")
    assert 1 == len(shown.splitlines())
    if "landlock" in (kernel.instances()[-1].sandbox or ""):
        error, shown = lab.failure(f"%%as tenant-db-hooli\n"
                                   f"open('/proc/{os.getpid()}/environ').read()")
        assert isinstance(error, PermissionError)
        assert f"PermissionError: [Errno 13] Permission denied: '/proc/{os.getpid()}/environ'" \
            == shown
