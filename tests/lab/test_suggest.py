"""Typos get a suggestion: flags."""

from __future__ import annotations

import pytest

from signalpy_lab.lab.completion import candidates
from signalpy_lab.lab.magics import LabMagics
from signalpy_lab.lab.session import current_session
from signalpy_lab.lab.suggest import flags_of
from signalpy_lab.testing import LabShell


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run("%discover signalpy_lab.examples.multi_tenant.TenantDatabase")
        for tenant in ("acme", "globex"):
            shell.run(f"%config set tenants.{tenant}.db_url postgres://db/{tenant}")
            shell.run(f"%instantiate tenant-db tenant-db-{tenant} target={tenant}")
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
