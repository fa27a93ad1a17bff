"""Credentials: `self.rt.creds` reaches `apps.<own instance name>.*` and nothing else.

The attacker ``mallory`` owns ``apps.mallory.password``; the victim ``vault-globex`` owns
``apps.vault-globex.password`` and ``.token``. No key, however dotted, leaves the prefix.
"""

from __future__ import annotations

import re

import pytest

from signalpy_lab.errors import ConfigKeyError, TenantIsolationError
from signalpy_lab.providers import CredentialHandle

from .conftest import MALLORY_SECRETS, VICTIM_SECRETS


async def test_own_secret_is_readable(attack) -> None:
    """The control: the same handle returns mallory's own password, so refusals are precise."""
    assert MALLORY_SECRETS["password"] == await attack(lambda self: self.rt.creds.get("password"))


async def test_keys_lists_only_its_own_secrets(attack) -> None:
    """`keys()` names mallory's secrets, never the victim's `password` and `token`."""
    assert ["password"] == await attack(lambda self: self.creds.keys())


@pytest.mark.parametrize("key", [
    "../vault-globex.password",   # path traversal spelled with dots
    "../vault-globex/password",   # path traversal spelled with slashes still has '..'
    "..",                          # the parent of its own prefix
    ".password",                   # an empty first part
    "password.",                   # an empty last part
    "",                            # the prefix itself
    "apps..vault-globex.password",
    None,
    ("vault-globex", "password"),
    b"password",
])
async def test_keys_that_try_to_climb_are_config_key_errors(attack, victim_intact, key) -> None:
    """Keys with empty parts, empty keys and non-strings never parse: ConfigKeyError."""
    with pytest.raises(ConfigKeyError, match="credential key is a dotted string"):
        await attack(lambda self: self.rt.creds.get(key))
    await victim_intact()


@pytest.mark.parametrize("key", [
    "apps.vault-globex.password",  # an absolute-looking path is relative to apps.mallory.
    "vault-globex.password",       # a sibling component name, nested under mallory
    "/apps/vault-globex/password",  # '/' is no separator for secrets
    "*",
])
async def test_dotted_tricks_stay_under_its_own_prefix(attack, key) -> None:
    """A well-formed key is looked up below `apps.mallory.`, where nothing is: the default."""
    assert "<none>" == await attack(lambda self: self.rt.creds.get(key, default="<none>"))


async def test_rotating_a_dotted_victim_key_writes_under_its_own_prefix(attack, kernel,
                                                                      victim_intact) -> None:
    """`rotate("apps.vault-globex.password", ...)` creates mallory's own nested secret."""
    await attack(lambda self: self.rt.creds.rotate("apps.vault-globex.password", "pwned"))
    service = kernel.registry.require("ICredentials")
    assert ["apps.vault-globex.password", "password"] == service.keys("mallory")
    await victim_intact()


async def test_rotating_with_a_climbing_key_is_refused(attack, victim_intact) -> None:
    """`set("../vault-globex.password", ...)` is a ConfigKeyError, nothing is written."""
    with pytest.raises(ConfigKeyError, match=re.escape("got '../vault-globex.password'")):
        await attack(lambda self: self.creds.set("../vault-globex.password", "pwned"))
    await victim_intact()


async def test_posing_as_the_victims_tenant_does_not_reach_its_secrets(attack) -> None:
    """An instance targeted at `globex` still reads `apps.mallory.*`: scope is the name."""
    loot = await attack(lambda self: (self.rt.creds.get("password"), self.rt.creds.keys()),
                        target="globex")
    assert (MALLORY_SECRETS["password"], ["password"]) == loot


@pytest.mark.parametrize("method", ["revoke", "components"])
async def test_the_handle_has_no_admin_methods(attack, method) -> None:
    """`revoke` and `components` are the service's; the handle has no such attribute."""
    with pytest.raises(AttributeError, match=f"no attribute '{method}'"):
        await attack(lambda self: getattr(self.rt.creds, method))


async def test_the_contract_lookup_returns_the_same_scoped_handle(attack) -> None:
    """`rt.service("ICredentials")` is the very handle `rt.creds` is, scoped to mallory."""
    assert (True, ["password"]) == await attack(
        lambda self: (self.rt.service("ICredentials") is self.rt.creds,
                      self.rt.service("ICredentials").keys()))


async def test_the_handle_class_cannot_issue_handles(attack, victim_intact) -> None:
    """Handles are issued by module-private functions; the class offers no `issue`."""
    with pytest.raises(AttributeError, match="'CredentialHandle' has no attribute 'issue'"):
        await attack(lambda self: type(self.rt.creds).issue(self.rt.creds, "vault-globex"))
    await victim_intact()


async def test_a_same_tenant_service_object_does_not_carry_its_own_credentials(attack) -> None:
    """`self.rt.service("IVault")` (vault-acme's object) must not expose vault-acme's secrets."""
    with pytest.raises((AttributeError, TypeError, TenantIsolationError)):
        await attack(lambda self: self.rt.service("IVault").rt.creds.get("password"))


async def test_patching_the_handle_class_does_not_harvest_the_victims_handle(
        attack, kernel) -> None:
    """Wrapping `type(self.rt.creds).get` must not hand mallory the victim's own handle."""
    harvested: list[CredentialHandle] = []
    genuine_get = CredentialHandle.get

    def plant(self):
        original = type(self.rt.creds).get

        def spy(handle, key, default=None):
            harvested.append(handle)
            return original(handle, key, default)

        type(self.rt.creds).get = spy

    try:
        await attack(plant)
    except (AttributeError, TypeError):
        pass  # refusing the patch is one acceptable fix
    await kernel.bus.invoke("vault.read", {"target": "globex"})  # the victim reads its secret
    stolen = {genuine_get(h, "password") for h in list(harvested)}
    assert VICTIM_SECRETS["password"] not in stolen
