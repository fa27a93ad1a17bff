"""Typos get a suggestion: flags and `%invoke` parameters."""

from __future__ import annotations

import pytest

from signalpy_lab.lab.completion import candidates
from signalpy_lab.lab.magics import LabMagics
from signalpy_lab.lab.session import current_session
from signalpy_lab.lab.suggest import flags_of
from signalpy_lab.testing import LabShell

SETUP = """
from pydantic import BaseModel, ConfigDict
from signalpy_lab.kernel import component, runnable

class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")

@component("echo")
class Echo:
    @runnable("echo", params=Anything)
    def echo(self, params):
        return params.model_extra
"""


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run("%discover signalpy_lab.examples.multi_tenant.TenantDatabase")
        for tenant in ("acme", "globex"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
        shell.run(SETUP)
        shell.run("%discover Echo")
        shell.run("%instantiate echo")
        yield shell


def _method(name: str):
    return getattr(LabMagics, LabMagics.magics["line"][name])


# The least each magic with a parser needs before a flag (its required positionals).
REQUIRED = {"discover": "X", "instantiate": "tenant-db", "restart": "tenant-db-acme",
            "remove": "tenant-db-acme", "invoke": "tenant-db.query", "why": "x.y"}
PARSED = sorted(name for name, method in LabMagics.magics["line"].items()
                if hasattr(getattr(LabMagics, method), "parser"))


def test_every_magic_but_config_has_a_parser() -> None:
    """Flags are checked by each magic's parser; only %config (and the cell %%as) parse by
    hand, because IPython owns the rest of %config."""
    assert set(LabMagics.magics["line"]) - set(PARSED) == {"config"}


@pytest.mark.parametrize("magic", PARSED)
def test_an_unknown_flag_lists_the_valid_ones(lab, magic) -> None:
    """`%magic --bogus` names the flag and lists the magic's flags (or says it takes none)."""
    flags = flags_of(_method(magic))
    line = f"%{magic} {REQUIRED.get(magic, '')} --bogus".replace("  ", " ")
    if flags:
        expected = f"%{magic}: unknown flag '--bogus'. Valid flags: {', '.join(flags)}."
    elif magic in REQUIRED:
        expected = f"%{magic}: unknown flag '--bogus'. %{magic} takes no flags."
    else:
        expected = f"%{magic} takes no arguments, got '--bogus'."
    assert expected == lab.usage_error(line)


def test_lab_bogus_and_a_near_miss(lab) -> None:
    """The issue's example, and a typo that gets the closest flags first."""
    assert lab.usage_error("%lab --bogus") == \
        "%lab: unknown flag '--bogus'. Valid flags: --inline, --record, --tenant, --text."
    assert lab.usage_error("%graph --provders").startswith(
        "%graph: unknown flag '--provders'. Did you mean --providers?")
    assert lab.usage_error("%reset --no-bot") == \
        "%reset: unknown flag '--no-bot'. Did you mean --no-boot? Valid flags: --no-boot."


@pytest.mark.parametrize("magic", PARSED)
def test_completion_offers_exactly_the_flags_that_are_checked(lab, magic) -> None:
    """Tab completion reads the same parser as the check: the two cannot drift."""
    session = current_session()
    assert candidates(session, f"%{magic} --") == [f for f in flags_of(_method(magic))
                                                    if f.startswith("--")]


def test_completion_offers_a_flags_choices(lab) -> None:
    """After `--inline `, the values it takes."""
    assert candidates(current_session(), "%lab --inline ") == ["auto", "off", "on"]


def test_an_unknown_parameter_names_the_field(lab) -> None:
    """`tabel` → `table`, the call is not made (no silent default), in both spellings."""
    handler = lab.user_ns["kernel"].bus.handler("tenant-db-acme.query")
    message = lab.usage_error("r = %invoke tenant-db.query target=acme tabel=users")
    assert message == ("%invoke tenant-db.query: unknown parameter 'tabel'. Did you mean "
                       "'table'? Valid parameters: 'limit', 'table', 'target'.")
    assert (handler.calls, "r" in lab.user_ns) == (0, False)
    assert "Did you mean 'table'?" in lab.usage_error(
        '%invoke tenant-db-acme.query {"tabel": "users"}')
    assert lab.usage_error("%invoke tenant-db.query target=acme tabel=users limt=3") == (
        "%invoke tenant-db.query: unknown parameters 'tabel' (did you mean 'table'?), "
        "'limt' (did you mean 'limit'?). Valid parameters: 'limit', 'table', 'target'.")


def test_routing_and_declared_parameters_pass(lab) -> None:
    """`target` routes (and may be given to an exact name too); declared fields pass."""
    assert lab.run("%invoke tenant-db.query target=acme table=orders limit=3")["table"] == \
        "orders"
    assert lab.run("%invoke tenant-db-acme.status target=acme")["tenant"] == "acme"


def test_a_model_that_keeps_extras_keeps_them(lab) -> None:
    """`extra="allow"`: every key is the component's to read."""
    assert lab.run("%invoke echo.echo tabel=users anything=1") == {"tabel": "users",
                                                                  "anything": 1}
