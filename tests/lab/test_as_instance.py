"""`%%as INSTANCE`: a cell runs as the instance's own code, and its scoping holds.

    %%as tenant-db-acme
    rt.config.get("tenants.globex.db_url")     -> refused, one line
"""

from __future__ import annotations

import pytest

from signalpy_lab.testing import LabShell

SETUP = """
from signalpy_lab.kernel import component, computed, effect, requires
from signalpy_lab.examples.multi_tenant import TenantDatabase

@component("db-client", depends=["config", "credentials"])
@requires(creds="ICredentials")
class DbClient:
    connected = []

    @effect
    def connect(self):
        DbClient.connected.append(self.creds.get("api_key", target="prod"))

    @computed
    def key_length(self):
        return len(self.creds.get("api_key", target="prod") or "")

%discover TenantDatabase DbClient
%config set tenants.acme.db_url postgres://db/acme
%config set tenants.globex.db_url postgres://db/globex
%config set apps.db-client.targets.prod.api_key key-v1
%instantiate tenant-db tenant-db-acme target=acme
%instantiate tenant-db tenant-db-globex target=globex
%instantiate db-client
"""


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run(SETUP)
        yield shell


def test_a_cell_as_acme_reads_its_own_section(lab) -> None:
    """The control: acme's own key reads as acme's code would read it."""
    assert "postgres://db/acme" == lab.run(
        '%%as tenant-db-acme\nrt.config.get(f"tenants.{rt.target}.db_url")')


def test_another_tenants_key_is_refused_in_one_line(lab) -> None:
    """globex's key through acme's handle: one line naming TenantIsolationError, no
    traceback (a refusal is the answer, not a crash)."""
    from signalpy_lab.errors import TenantIsolationError

    error, shown = lab.failure('%%as tenant-db-acme\nrt.config.get("tenants.globex.db_url")')
    assert isinstance(error, TenantIsolationError)
    assert shown.startswith("TenantIsolationError: Instance 'tenant-db-acme' (target 'acme') "
                            "may not read 'tenants.globex.db_url'")
    assert "\n" not in shown


def test_the_notebooks_variables_are_not_there(lab) -> None:
    """`kernel` would bypass every handle: in a %%as cell it does not exist."""
    error, shown = lab.failure('%%as tenant-db-acme\nkernel.registry.require("IConfig")')
    assert isinstance(error, NameError)
    assert "NameError: name 'kernel' is not defined" in shown


def test_a_bug_shows_its_traceback_with_the_cells_line_numbers(lab) -> None:
    """A real bug on line 3 of a %%as cell: a traceback of the cell's own frames, line 3
    quoted from the cell (line 1 is the %%as line), none of the lab's machinery."""
    error, shown = lab.failure('%%as tenant-db-acme\nx = 1\ny = x / 0\n')
    assert isinstance(error, ZeroDivisionError)
    assert "----> 3 y = x / 0" in shown
    assert "ZeroDivisionError" in shown
    assert "as_instance.py" not in shown
    assert "runner.py" not in shown


def test_rotating_its_own_credential_re_runs_its_effect(lab) -> None:
    """db-client rotates its own key; its effect re-runs once and its computed follows."""
    assert 6 == lab.run('%%as db-client\nself.key_length()')
    lab.run('%%as db-client\nrt.creds.rotate("api_key", "key-v2-long", target="prod")')
    assert ["key-v1", "key-v2-long"] == lab.user_ns["DbClient"].connected
    assert 11 == lab.run('%%as db-client\nself.key_length()')
    _error, shown = lab.failure(
        '%%as db-client\nrt.creds.get("password", target="../tenant-db-acme")')
    assert shown.startswith("ConfigKeyError: A credential target is a plain name")


def test_top_level_await_runs_on_the_kernels_loop(lab) -> None:
    """`await rt.bus.invoke(...)` works; calling another tenant is refused there too."""
    answer = lab.run('%%as tenant-db-acme\nr = await rt.bus.invoke("tenant-db.query", '
                     '{"target": "acme"})\nr["tenant"]')
    assert "acme" == answer
    _error, shown = lab.failure(
        '%%as tenant-db-acme\nawait rt.bus.invoke("tenant-db-globex.query")')
    assert "may not call 'tenant-db-globex.query'" in shown


@pytest.mark.parametrize(("cell", "expected"), [
    ("%%as\n1", "%%as takes one instance name"),
    ("%%as tenant-db-acm\n1", "no instance 'tenant-db-acm'. Did you mean 'tenant-db-acme'"),
])
def test_mistakes_are_one_line(lab, cell, expected) -> None:
    assert expected in lab.usage_error(cell)


def test_a_syntax_error_names_the_cells_line(lab) -> None:
    """`1 +` on the cell's line 3: one line, numbered as the notebook shows the cell."""
    error, shown = lab.failure("%%as tenant-db-acme\nx = 1\n1 +")
    assert isinstance(error, SyntaxError)
    assert shown.startswith("SyntaxError: ")
    assert "(line 3 of the cell)" in shown


def test_writes_are_labelled_with_the_cell(lab) -> None:
    """The event log ties the rotation to `%%as db-client`."""
    lab.run("%lab")
    lab.run('%%as db-client\nrt.creds.rotate("api_key", "key-v3", target="prod")')
    log = str(lab.run("%events"))
    assert "%%as db-client" in log
    assert "key-v3" not in log  # the secret itself never shows
