"""`%config` as the host sees it, with every secret (`apps.` and below) masked on screen."""

from __future__ import annotations

import pytest

from signalpy_lab.kernel.redaction import MASK
from signalpy_lab.lab.masking import SecretValue
from signalpy_lab.lab.session import current_session
from signalpy_lab.testing import LabShell

API_KEY = "sk-live-4242424242"


@pytest.fixture
def lab():
    with LabShell() as shell:
        shell.run("%config set tenants.acme.db_url postgres://db/acme")
        shell.run(f"%config set apps.billing.api_key {API_KEY}")
        shell.run("%config set apps.billing.pin 42")  # short and not a string: masked by key
        yield shell


def test_bare_config_show_lists_the_whole_config_with_secrets_masked(lab) -> None:
    """`%config show` with no prefix: every key, values under apps. masked, and said so."""
    table = lab.run("%config show")
    assert table.title == "Config"
    assert table.rows == [
        ["apps.billing.api_key", MASK, "runtime"],
        ["apps.billing.pin", MASK, "runtime"],
        ["tenants.acme.db_url", "'postgres://db/acme'", "runtime"],
    ]
    assert table.footer == f"values under apps. are secrets, shown as {MASK}"
    assert API_KEY not in str(table)
    assert API_KEY not in table._repr_html_()


def test_config_show_masks_secrets_before_boot_too() -> None:
    """Pending config (before %boot) is listed the same way, secrets masked by key."""
    with LabShell() as lab:
        lab.run("%reset --no-boot")
        lab.run("%config set apps.billing.pin 42")
        lab.run("%config set region eu")
        table = lab.run("%config show")
        assert table.rows == [["apps.billing.pin", MASK, "pending (defaults at boot)"],
                              ["region", "'eu'", "pending (defaults at boot)"]]


def test_config_get_of_a_secret_prints_and_displays_the_mask(lab) -> None:
    """`%config get` masks the value it prints; the returned value displays masked too."""
    lab.run("%config get apps.billing.api_key")
    assert API_KEY not in lab.output  # neither the printed line nor Out[...]
    assert f"apps.billing.api_key = {MASK} (source: runtime)" in lab.output
    assert f"SecretValue('apps.billing.api_key', '{MASK}')" in lab.output
    lab.run("%config get apps.billing")  # a whole section of secrets
    assert "42" not in lab.output
    assert API_KEY not in lab.output


def test_the_returned_secret_reveals_its_value_to_code(lab) -> None:
    """`r = %config get KEY` of a secret: a SecretValue; code asks for the value by name."""
    lab.run("r = %config get apps.billing.api_key")
    secret = lab.user_ns["r"]
    assert isinstance(secret, SecretValue)
    assert secret.reveal() == API_KEY
    assert str(secret) == MASK
    assert lab.run("%config get tenants.acme.db_url") == "postgres://db/acme"  # not a secret


def test_config_set_of_a_secret_does_not_echo_it(lab) -> None:
    """The confirmation line of a write under apps. shows the key, not the value."""
    lab.run("%config set apps.billing.api_key sk-live-rotated-0001")
    assert lab.output.strip() == (f"apps.billing.api_key = {MASK} (runtime); no readers yet, "
                                  "nothing recomputes")
    assert "sk-live" not in str(current_session().model.epoch_record().writes)


def test_help_says_what_get_returns_for_a_secret(lab) -> None:
    """`%config?` documents the masking and `reveal()`."""
    doc = lab.shell.find_line_magic("config").__doc__
    assert "SecretValue" in doc
    assert ".reveal()" in doc
