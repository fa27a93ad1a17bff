"""Config: a targeted instance reads shared keys and its own section, writes only its own.

Every attack runs as the code of ``mallory`` (``{"target": "acme"}`` unless said otherwise)
against globex's section ``tenants.globex``; ``victim_intact()`` then checks globex's config,
secrets, files and route are as booted.
"""

from __future__ import annotations

import re

import pytest

from signalpy_lab.errors import ConfigKeyError, TenantIsolationError

from .conftest import ACME_SECTION, GLOBEX_SECTION, SHARED_REGION


def refused_read(key: str, target: str = "acme") -> str:
    """The key phrase of the error for a refused read (it names the instance and the key)."""
    return re.escape(f"Instance 'mallory' (target {target!r}) may not read {key!r}")


def refused_write(key: str) -> str:
    return re.escape(f"Instance 'mallory' (target 'acme') may not write {key!r}")


async def test_own_section_and_shared_keys_are_readable(attack) -> None:
    """The control: an acme instance reads `region` and `tenants.acme.*` (refusals are precise)."""
    loot = await attack(lambda self: (self.rt.config.get("region"),
                                      self.rt.config.get("tenants.acme.db_url"),
                                      self.config.get("tenants.acme")))
    assert (SHARED_REGION, ACME_SECTION["db_url"], ACME_SECTION) == loot


@pytest.mark.parametrize("method", ["get", "peek", "source", "explain"])
async def test_reading_another_tenants_key_is_refused(attack, victim_intact, method) -> None:
    """Every read method refuses `tenants.globex.api_key` with a TenantIsolationError."""
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.globex.api_key")):
        await attack(lambda self: getattr(self.rt.config, method)("tenants.globex.api_key"))
    await victim_intact()


async def test_the_refusal_is_a_permission_error_naming_the_owner(attack) -> None:
    """TenantIsolationError is a PermissionError that says whose key it is."""
    with pytest.raises(PermissionError, match="it belongs to tenant 'globex'"):
        await attack(lambda self: self.rt.config.get("tenants.globex.db_url"))


async def test_the_injected_config_attribute_is_scoped_too(attack, victim_intact) -> None:
    """`@requires(config="IConfig")` injects the same tenant view: globex is refused."""
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.globex.api_key")):
        await attack(lambda self: self.config.get("tenants.globex.api_key"))
    await victim_intact()


async def test_reading_the_whole_tenants_section_is_refused(attack) -> None:
    """`tenants` as a whole belongs to every tenant, so even `get("tenants")` is refused."""
    with pytest.raises(TenantIsolationError, match="it belongs to every tenant"):
        await attack(lambda self: self.rt.config.get("tenants"))


async def test_listing_another_tenants_keys_is_refused(attack) -> None:
    """`keys("tenants.globex")` would reveal globex's key names: refused."""
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.globex")):
        await attack(lambda self: self.rt.config.keys("tenants.globex"))


async def test_listing_all_keys_shows_shared_and_own_only(attack) -> None:
    """`keys()` lists its own secret, `region` and acme's keys; nothing of globex's."""
    keys = await attack(lambda self: self.rt.config.keys())
    assert ["apps.mallory.password", "region", "tenants.acme.api_key",
            "tenants.acme.db_url"] == keys


async def test_a_glob_in_the_tenant_part_is_just_another_tenant(attack) -> None:
    """`tenants.*.api_key` names a tenant called '*', which is not acme: refused."""
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.*.api_key")):
        await attack(lambda self: self.rt.config.get("tenants.*.api_key"))


@pytest.mark.parametrize("key", ["tenants..globex.db_url", "tenants.acme..globex", ".tenants",
                                 "", ["tenants", "globex", "db_url"], None])
async def test_malformed_keys_are_config_key_errors(attack, key) -> None:
    """Empty parts, empty keys and non-strings never parse into a path: ConfigKeyError."""
    with pytest.raises(ConfigKeyError, match="is a dotted string like"):
        await attack(lambda self: self.rt.config.get(key))


@pytest.mark.parametrize("key", [" tenants.globex.db_url", "Tenants.globex.db_url",
                                 "tenants_.globex.db_url"])
async def test_look_alike_sections_are_plain_missing_shared_keys(attack, key) -> None:
    """A key that only looks like `tenants.` is a shared key nobody set: the default comes back."""
    assert "<none>" == await attack(lambda self: self.rt.config.get(key, "<none>"))


async def test_an_instance_of_an_unknown_tenant_reads_no_tenant_section(attack) -> None:
    """`{"target": "evil"}` has an empty own section and is still refused globex's."""
    assert None is await attack(lambda self: self.rt.config.get("tenants.evil.db_url"),
                                target="evil")
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.globex.db_url", "evil")):
        await attack(lambda self: self.rt.config.get("tenants.globex.db_url"), target="evil")


async def test_reading_another_tenant_in_activate_fails_the_activation(attack, kernel,
                                                                      victim_intact) -> None:
    """An activate that reads globex's key raises, and the attacker is left `failed`."""
    with pytest.raises(TenantIsolationError, match=refused_read("tenants.globex.api_key")):
        await attack(lambda self: self.config.get("tenants.globex.api_key"), on="activate")
    assert "failed" == kernel.instance("mallory").state.value
    await victim_intact()


async def test_writing_another_tenants_key_is_refused(attack, victim_intact) -> None:
    """`set("tenants.globex.db_url", ...)` would redirect globex's database: refused."""
    with pytest.raises(TenantIsolationError, match=refused_write("tenants.globex.db_url")):
        await attack(lambda self: self.rt.config.set("tenants.globex.db_url", "postgres://evil"))
    await victim_intact()


async def test_unsetting_another_tenants_section_is_refused(attack, victim_intact) -> None:
    """`unset("tenants.globex")` is a write outside acme's section: refused."""
    with pytest.raises(TenantIsolationError, match=refused_write("tenants.globex")):
        await attack(lambda self: self.config.unset("tenants.globex"))
    await victim_intact()


@pytest.mark.parametrize("key", ["region", "tenants", "tenants.acme"])
async def test_writing_outside_its_own_section_is_refused(attack, victim_intact, key) -> None:
    """Shared keys, `tenants` itself and the own section as a whole are not writable."""
    with pytest.raises(TenantIsolationError, match="may write only inside 'tenants.acme.'"):
        await attack(lambda self: self.rt.config.set(key, {"globex": {"db_url": "evil"}}))
    await victim_intact()


async def test_writing_its_own_section_leaves_the_victim_alone(attack, kernel,
                                                              victim_intact) -> None:
    """The control: acme's own write lands in `tenants.acme`, globex's answer is unchanged."""
    await attack(lambda self: self.rt.config.set("tenants.acme.db_url", "postgres://new/acme"))
    assert "postgres://new/acme" == kernel.registry.require("IConfig").peek("tenants.acme.db_url")
    kernel.registry.require("IConfig").unset("tenants.acme.db_url")
    await victim_intact()


@pytest.mark.parametrize("method", ["as_dict", "merge"])
async def test_the_tenant_view_has_no_whole_tree_methods(attack, method) -> None:
    """`as_dict` and `merge` exist on the service only; the view has no such attribute."""
    with pytest.raises(AttributeError, match=f"'ConfigView' object has no attribute '{method}'"):
        await attack(lambda self: getattr(self.rt.config, method))


async def test_an_untargeted_admin_component_sees_every_tenant(attack) -> None:
    """The rule is precise: a component with no target reads every tenant's section."""
    loot = await attack(lambda self: (self.config.get("tenants.globex"),
                                      self.rt.config.get("tenants")),
                        target=None, name="admin")
    assert (GLOBEX_SECTION, {"acme": ACME_SECTION, "globex": GLOBEX_SECTION}) == loot


async def test_private_helpers_of_the_view_do_not_return_the_service(attack,
                                                                     victim_intact) -> None:
    """`self.rt.config._readable("region")` must not hand out the whole-config service.

    Any refusal fixes it: no such attribute, a TypeError, or a TenantIsolationError.
    """

    def steal(self):
        service, _key = self.rt.config._readable("region")
        service.set("tenants.globex.db_url", "postgres://evil/globex")
        return service.get("tenants.globex.api_key")

    with pytest.raises((AttributeError, TypeError, TenantIsolationError)):
        await attack(steal)
    await victim_intact()


async def test_patching_the_view_class_does_not_change_what_the_victim_reads(
        attack, victim_intact) -> None:
    """Replacing `type(self.rt.config).get` must not change the victim's route answer."""

    def poison(self):
        type(self.rt.config).get = lambda view, key, default=None: "postgres://evil/all"

    try:
        await attack(poison)
    except (AttributeError, TypeError):
        pass  # refusing the patch is one acceptable fix
    await victim_intact()
