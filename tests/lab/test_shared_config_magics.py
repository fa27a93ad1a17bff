"""`%config share` and `%config history`, typed as a user would, on the lab's private
nats-server with JetStream."""

from __future__ import annotations

from signalpy_lab.testing import LabShell

SETUP = """
from signalpy_lab.examples.multi_tenant import TenantDatabase
%discover TenantDatabase
%config set tenants.acme.db_url postgres://db1/acme
%instantiate tenant-db tenant-db-acme target=acme
"""


def test_share_show_history_and_off() -> None:
    """Before sharing, history is refused in one line; shared, `show` names the bucket and
    `history` lists each revision's writer and command; `off` keeps the values."""
    with LabShell() as lab:
        lab.run(SETUP)
        error = lab.usage_error("%config history tenants.acme.db_url")
        assert "only a shared config keeps revisions" in error
        assert "\n" not in error.strip()

        lab.run("%config share")
        assert "config shared through bucket 'spl-config' on nats://127.0.0.1:" in lab.output
        shown = str(lab.run("%config show tenants"))
        assert "Config (shared: bucket 'spl-config', connected, revision 1) under tenants" in \
            shown, shown
        lab.run("%config set tenants.acme.db_url postgres://moved/acme")
        history = str(lab.run("%config history tenants.acme.db_url"))
        rows = [line.split()[:4] for line in history.splitlines()]
        assert ["1", "'postgres://db1/acme'", "lab", "shared"] in rows, history
        assert ["2", "'postgres://moved/acme'", "lab", "%config"] in rows, history

        error = lab.usage_error("%config set tenants.acme.da%20tabase 1")
        assert "cannot be shared" in error
        assert "\n" not in error.strip()
        assert "postgres://moved/acme" == lab.run("%config get tenants.acme.db_url")

        lab.run("%config share off")
        assert "config no longer shared: it keeps its values" in lab.output
        assert "postgres://moved/acme" == lab.run("%config get tenants.acme.db_url")
        assert "(shared" not in str(lab.run("%config show tenants"))
