"""Config views: `all()`, `get_typed()`, and `apps.<name>` private to component <name>."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import ConfigKeyError, ConfigValidationError, TenantIsolationError
from signalpy_lab.kernel import Kernel, component, computed, effect, lifecycle, requires
from signalpy_lab.providers import DEFAULT_PROVIDERS

DEFAULTS = {
    "region": "eu",
    "tenants": {
        "acme": {"db_url": "postgres://db1/acme", "quota": {"per_minute": 60}},
        "globex": {"db_url": "postgres://db2/globex", "quota": {"per_minute": "lots"}},
    },
    "apps": {
        "db-acme": {"password": "acme-pw", "targets": {"prod": {"api_key": "acme-prod-key"},
                                                        "staging": {"api_key": "acme-stg"}}},
        "db-globex": {"password": "globex-pw"},
        "analytics": {"token": "analytics-token"},
    },
}


class Quota(BaseModel):
    per_minute: int


@component("db", depends=["config", "credentials"])
@requires(config="IConfig", creds="ICredentials")
class Db:
    """A tenant component that counts how often each reactive body ran."""

    @lifecycle.activate
    def start(self) -> None:
        self.views: list[dict] = []
        self.keys_seen: list[str | None] = []

    @effect
    def watch_everything(self) -> None:
        self.views.append(self.config.all())

    @effect
    def connect(self) -> None:
        self.keys_seen.append(self.creds.get("api_key", target="prod"))

    @computed
    def quota(self) -> Quota:
        return self.config.get_typed(f"tenants.{self.rt.target}.quota", Quota)


@component("analytics", depends=["config"])
@requires(config="IConfig")
class Analytics:
    """Untargeted: every tenant's section, but no other component's credentials."""


@pytest.fixture
async def kernel(tmp_path):
    kernel = Kernel()
    kernel.discover([*DEFAULT_PROVIDERS, Db, Analytics])
    kernel.instantiate("config", properties={"defaults": DEFAULTS})
    kernel.instantiate("storage", properties={"root": str(tmp_path)})
    kernel.instantiate("db", "db-acme", {"target": "acme"})
    kernel.instantiate("db", "db-globex", {"target": "globex"})
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


def test_a_tenant_view_of_all_is_shared_keys_its_tenant_and_its_own_apps(kernel) -> None:
    """`all()` through acme's handle: region, tenants.acme and apps.db-acme, nothing else."""
    assert {
        "region": "eu",
        "tenants": {"acme": DEFAULTS["tenants"]["acme"]},
        "apps": {"db-acme": DEFAULTS["apps"]["db-acme"]},
    } == kernel.component("db-acme").config.all()


def test_all_re_runs_on_a_change_inside_the_view_only(kernel) -> None:
    """A globex or another component's write re-runs nothing of acme's; its own tenant's does."""
    acme, config = kernel.component("db-acme"), kernel.registry.require("IConfig")
    assert 1 == len(acme.views)
    config.set("tenants.globex.db_url", "postgres://new/globex")
    config.set("apps.db-globex.password", "rotated")
    config.set("apps.analytics.token", "rotated")
    assert 1 == len(acme.views)
    config.set("tenants.acme.db_url", "postgres://new/acme")
    config.set("region", "us")
    config.set("feature.flag", True)  # a new shared key is in every tenant's view
    config.set("apps.db-acme.password", "rotated")
    assert 5 == len(acme.views)
    assert {"region": "us", "feature": {"flag": True}} == {
        k: v for k, v in acme.views[-1].items() if k not in ("tenants", "apps")}


def test_an_all_consumer_does_not_make_per_key_readers_re_run(kernel) -> None:
    """acme's credential effect re-runs for its own key only, though `all()` re-runs too."""
    acme, config = kernel.component("db-acme"), kernel.registry.require("IConfig")
    config.set("tenants.acme.db_url", "postgres://new/acme")
    config.set("apps.db-acme.targets.staging.api_key", "stg-2")
    assert ["acme-prod-key"] == acme.keys_seen
    config.set("apps.db-acme.targets.prod.api_key", "prod-2")
    assert ["acme-prod-key", "prod-2"] == acme.keys_seen


def test_the_hosts_all_sees_everything(kernel) -> None:
    """The host's service is not scoped: `all()` is the whole effective tree."""
    assert DEFAULTS == kernel.registry.require("IConfig").all()


def test_get_typed_validates_a_section_reactively(kernel) -> None:
    """acme's quota is a Quota; raising the limit recomputes it with the new value."""
    acme, config = kernel.component("db-acme"), kernel.registry.require("IConfig")
    assert Quota(per_minute=60) == acme.quota()
    config.set("tenants.acme.quota.per_minute", 120)
    assert Quota(per_minute=120) == acme.quota()


def test_get_typed_errors_name_the_key(kernel) -> None:
    """globex's quota says 'lots': the error names `tenants.globex.quota.per_minute`."""
    with pytest.raises(ConfigValidationError,
                       match=re.escape("tenants.globex.quota.per_minute: Input should be a valid "
                                       "integer")):
        kernel.component("db-globex").quota()


def test_get_typed_on_a_value_that_is_no_section_says_so(kernel) -> None:
    """`region` is a string, not a mapping a model could validate."""
    config = kernel.registry.require("IConfig")
    with pytest.raises(ConfigValidationError, match="region must be a section"):
        config.get_typed("region", Quota)


def test_get_typed_cannot_read_around_the_view(kernel) -> None:
    """acme's handle validating globex's section is refused like a plain read."""
    with pytest.raises(TenantIsolationError, match="may not read 'tenants.globex.quota'"):
        kernel.component("db-acme").config.get_typed("tenants.globex.quota", Quota)


def test_an_untargeted_component_sees_every_tenant_but_no_other_apps_section(kernel) -> None:
    """analytics reads globex's section and its own token, never db-acme's password."""
    view = kernel.component("analytics").rt.config
    assert "postgres://db2/globex" == view.get("tenants.globex.db_url")
    assert "analytics-token" == view.get("apps.analytics.token")
    with pytest.raises(TenantIsolationError, match=re.escape(
            "Instance 'analytics' may not read 'apps.db-acme.password': it belongs to "
            "component 'db-acme', and 'apps.<name>' is private to component <name>")):
        view.get("apps.db-acme.password")
    assert {"analytics": {"token": "analytics-token"}} == view.all()["apps"]


@pytest.mark.parametrize("key", ["apps", "apps.db-globex", "apps.db-globex.password"])
def test_no_component_reads_apps_as_a_whole_or_another_components_section(kernel, key) -> None:
    """Through a component's handle, `apps` and what is under another name raise."""
    with pytest.raises(TenantIsolationError, match=re.escape(f"may not read {key!r}")):
        kernel.component("db-acme").rt.config.get(key)


def test_a_component_writes_its_own_apps_section(kernel) -> None:
    """acme rotates its own key through config; its effect sees it."""
    acme = kernel.component("db-acme")
    acme.rt.config.set("apps.db-acme.targets.prod.api_key", "self-rotated")
    assert "self-rotated" == acme.keys_seen[-1]


class TestCredentials:
    """`rt.creds` is a scoped view of config's `apps.<own name>` tree."""

    def test_get_with_and_without_a_target(self, kernel) -> None:
        creds = kernel.component("db-acme").rt.creds
        assert ("acme-pw", "acme-prod-key") == (creds.get("password"),
                                                creds.get("api_key", target="prod"))
        assert "fallback" == creds.get("missing", default="fallback")

    def test_for_target_is_a_read_only_mapping(self, kernel) -> None:
        section = kernel.component("db-acme").rt.creds.for_target("prod")
        assert {"api_key": "acme-prod-key"} == dict(section)
        with pytest.raises(TypeError):
            section["api_key"] = "x"  # type: ignore[index]

    def test_list_targets(self, kernel) -> None:
        assert ["prod", "staging"] == kernel.component("db-acme").rt.creds.list_targets()
        assert [] == kernel.component("db-globex").rt.creds.list_targets()

    def test_a_target_is_a_plain_name(self, kernel) -> None:
        """A fallback passed where the target goes is a teaching error, not a silent None."""
        with pytest.raises(ConfigKeyError, match="pass a fallback as default="):
            kernel.component("db-acme").rt.creds.get("password", "<none>")

    def test_rotation_through_the_handle_is_a_config_write(self, kernel) -> None:
        kernel.component("db-acme").rt.creds.rotate("api_key", "via-handle", target="prod")
        config = kernel.registry.require("IConfig")
        assert "via-handle" == config.get("apps.db-acme.targets.prod.api_key")
        assert ["acme-prod-key", "via-handle"] == kernel.component("db-acme").keys_seen

    async def test_secrets_property_and_rotate_write_the_one_tree(self, tmp_path) -> None:
        """`credentials(secrets=...)` seeds config's defaults; `rotate` writes its runtime layer."""
        kernel = Kernel()
        kernel.discover(list(DEFAULT_PROVIDERS))
        kernel.instantiate("config", properties={"defaults": {"apps": {"svc": {"a": "1"}}}})
        kernel.instantiate("credentials", properties={"secrets": {"svc": {"b": "2"}}})
        kernel.instantiate("storage", properties={"root": str(tmp_path)})
        await kernel.boot()
        config, creds = kernel.registry.require("IConfig"), kernel.registry.require("ICredentials")
        assert {"a": "1", "b": "2"} == config.get("apps.svc")
        assert "defaults" == config.source("apps.svc.b")
        creds.rotate("svc", "b", "3", target="prod")
        assert "3" == config.get("apps.svc.targets.prod.b")
        assert "runtime" == config.source("apps.svc.targets.prod.b")
        assert ["a", "b", "targets.prod.b"] == creds.keys("svc")
        await kernel.shutdown()
