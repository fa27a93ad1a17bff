"""The lab's lifecycle story: %boot is idempotent, %shutdown then %boot restarts the same lab."""

from __future__ import annotations

import pytest

from signalpy_lab.testing import LabShell

TOUR = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
"""


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run(TOUR)
        for tenant in ("acme", "globex"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        yield shell


def instances(lab: LabShell) -> dict[str, str]:
    return {i.name: i.state for i in lab.user_ns["kernel"].instances()}


def test_boot_on_a_running_kernel_says_what_runs_and_changes_nothing(lab) -> None:
    """Run All of an instantiate-then-boot notebook: `%boot` is a no-op, not an error."""
    kernel = lab.user_ns["kernel"]
    before = instances(lab)
    lab.run("%boot")
    assert lab.output.strip() == "already running, nothing to boot: 6 instances (6 active)"
    assert lab.user_ns["kernel"] is kernel
    assert instances(lab) == before


def test_boot_after_reset_no_boot_activates_what_was_queued() -> None:
    """The design note's order: instantiate (queued), then boot."""
    with LabShell() as lab:
        lab.run("%reset --no-boot")
        lab.run(TOUR)
        lab.run("%instantiate tenant-db tenant-db-acme target=acme")
        lab.run("%boot")
        assert lab.output.startswith("booted: 5 instances (5 active)")
        lab.run("%boot")
        assert lab.output.startswith("already running")


def test_shutdown_says_what_works_next(lab) -> None:
    """The message after %shutdown names only commands that then work."""
    lab.run("%shutdown")
    assert lab.output.strip() == (
        "kernel stopped: 6 instances deactivated. %boot restarts it with the same factories, "
        "instances and config; %reset starts a fresh one")
    assert set(instances(lab).values()) == {"stopped"}
    assert "%boot restarts it" in lab.usage_error("%invoke tenant-db.query target=acme")
    assert "%boot restarts it" in lab.usage_error(
        "%instantiate tenant-db tenant-db-initech target=initech")
    lab.run("%shutdown")
    assert lab.output.strip() == ("kernel already stopped: %boot restarts it, %reset starts "
                                  "a fresh one")


def test_shutdown_then_boot_restarts_with_the_same_factories_instances_and_config(lab) -> None:
    """After the restart the same instances serve the same routes with the same config."""
    lab.run("%config set tenants.acme.db_url postgres://migrated/acme")  # a runtime value
    before = lab.user_ns["kernel"]
    lab.run("%shutdown")
    lab.run("%boot")
    assert lab.output.strip() == ("restarted with the same factories, instances and config: "
                                  "6 instances (6 active)")
    kernel = lab.user_ns["kernel"]
    assert kernel is not before
    assert kernel is lab.run("%kernel")
    assert instances(lab) == {"config": "active", "logging": "active", "storage": "active",
                              "credentials": "active", "tenant-db-acme": "active",
                              "tenant-db-globex": "active"}
    assert [f.name for f in kernel.factories()] == [f.name for f in before.factories()]
    r = lab.run("%invoke tenant-db.query target=acme")
    assert r["db_url"] == "postgres://migrated/acme"
    assert lab.run("%config get tenants.globex.db_url") == "postgres://db/globex"
    assert "(source: runtime)" in lab.output


def test_restart_keeps_defaults_apart_from_runtime_values() -> None:
    """`%config unset` after a restart still uncovers the defaults, as before it."""
    with LabShell() as lab:
        lab.run("%reset --no-boot")
        lab.run("%config set region eu")  # pending: a default at the first boot
        lab.run("%boot")
        lab.run("%config set region us")
        lab.run("%shutdown")
        lab.run("%boot")
        assert lab.run("%config get region") == "us"
        assert "(source: runtime)" in lab.output
        lab.run("%config unset region")
        assert lab.run("%config get region") == "eu"


def test_what_changes_while_stopped_is_what_restarts(lab) -> None:
    """A %remove or a %config set while stopped is honoured by the restart."""
    lab.run("%shutdown")
    lab.run("%remove tenant-db-globex")
    lab.run("%config set tenants.acme.pool 3")
    assert "pending: applied when %boot restarts the kernel" in lab.output
    shown = lab.run("%config show tenants")
    assert [row[0] for row in shown.rows] == ["tenants.acme.db_url", "tenants.globex.db_url",
                                              "tenants.acme.pool"]
    lab.run("%boot")
    assert "tenant-db-globex" not in instances(lab)
    assert lab.run("%config get tenants.acme.pool") == 3
    assert lab.run("%config get tenants.acme.db_url") == "postgres://db/acme"


def test_widgets_follow_the_restarted_kernel(lab) -> None:
    """A LabModel (and every view on it) follows the new kernel: the page stays live."""
    session = lab.session
    model = session.model
    lab.run("%shutdown")
    lab.run("%boot")
    assert session.model is model
    assert model.kernel is session.kernel
    lab.run("%invoke tenant-db.query target=acme")
    labels = {n["label"]: n["status"] for n in model.snapshot()["nodes"]}
    assert labels["tenant-db-acme.db_url"] == "recomputed"
