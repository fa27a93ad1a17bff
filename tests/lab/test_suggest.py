"""Typos get a suggestion: flags, `%invoke` parameters, config keys, `%config` subcommands."""

from __future__ import annotations

import pytest

from signalpy_lab.lab.completion import candidates
from signalpy_lab.lab.magics import LabMagics
from signalpy_lab.lab.suggest import flags_of, near_keys
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
    assert lab.usage_error("%lab --bogus") == ("%lab: unknown flag '--bogus'. Valid flags: "
                                               "--inline, --record, --sidecar, --tenant, --text.")
    assert lab.usage_error("%graph --provders").startswith(
        "%graph: unknown flag '--provders'. Did you mean --providers?")
    assert lab.usage_error("%reset --no-bot") == \
        "%reset: unknown flag '--no-bot'. Did you mean --no-boot? Valid flags: --no-boot."


@pytest.mark.parametrize("magic", PARSED)
def test_completion_offers_exactly_the_flags_that_are_checked(lab, magic) -> None:
    """Tab completion reads the same parser as the check: the two cannot drift."""
    session = lab.session
    assert candidates(session, f"%{magic} --") == [f for f in flags_of(_method(magic))
                                                    if f.startswith("--")]


def test_completion_offers_a_flags_choices(lab) -> None:
    """After `--inline `, the values it takes."""
    assert candidates(lab.session, "%lab --inline ") == ["auto", "off", "on"]


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


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("tenants.acme.db_ur", ["tenants.acme.db_url"]),
        ("tenants.acme.db_rul", ["tenants.acme.db_url"]),  # two letters swapped
        ("tenants.acm.db_url", ["tenants.acme.db_url"]),
        ("tenant.acme", ["tenants.acme"]),
        ("tenants.initech.db_url", []),  # another tenant: unset, not a typo
        ("tenants.t100.db_url", []),  # t10 exists: another number is another tenant
        ("region.east", []),  # not close enough to region.west to be called a typo
    ],
)
def test_near_keys(key, expected) -> None:
    """One dotted part differs, by a typo; a different name or number is not near."""
    keys = ["tenants.acme.db_url", "tenants.globex.db_url", "tenants.t10.db_url", "region.west"]
    assert expected == near_keys(key, keys)


def test_config_get_of_a_near_key_is_a_mistake_and_of_another_key_is_unset(lab) -> None:
    """`db_ur`: the closest key, and `r` stays unassigned; an unset key simply says so."""
    assert lab.usage_error("r = %config get tenants.acme.db_ur") == \
        "%config get: 'tenants.acme.db_ur' is not set. Did you mean 'tenants.acme.db_url'?"
    assert "r" not in lab.user_ns
    assert lab.run("%config get tenants.initech.db_url") is None
    assert lab.output == "tenants.initech.db_url is not set (no runtime value, no default)\n"


def test_config_unset_and_show_of_a_near_key(lab) -> None:
    """A typo in `unset` or `show PREFIX` would silently do nothing: it is named instead."""
    assert lab.usage_error("%config unset tenants.globex.db_ulr") == (
        "%config unset: 'tenants.globex.db_ulr' is not set. "
        "Did you mean 'tenants.globex.db_url'?")
    assert lab.run("%config get tenants.globex.db_url") == "postgres://db/globex"
    assert lab.usage_error("%config show tenants.acm") == \
        "%config show: 'tenants.acm' is not set. Did you mean 'tenants.acme'?"


def test_a_config_subcommand_typo_is_ours_ipythons_use_is_not(lab) -> None:
    """`%config sett` names `set`; `%config InteractiveShell` is still IPython's help."""
    assert lab.usage_error("%config sett tenants.acme.db_url x").startswith(
        "%config: no subcommand 'sett'. Did you mean 'set' or 'unset'?")
    lab.run("%config InteractiveShell")
    assert "InteractiveShell(" in lab.output
