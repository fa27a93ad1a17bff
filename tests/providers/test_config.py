"""Config: layered values, per-key reactivity, sources, tenant views and bad keys."""

from __future__ import annotations

import pytest

from signalpy_lab.errors import ConfigKeyError, TenantIsolationError
from signalpy_lab.kernel import Computed, Effect, Kernel, batch
from signalpy_lab.providers import ConfigProvider

DEFAULTS = {
    "region": "eu",
    "tenants": {
        "acme": {"db_url": "postgres://db1/acme", "pool": 5},
        "globex": {"db_url": "postgres://db2/globex", "pool": 5},
    },
}


@pytest.fixture
async def config():
    kernel = Kernel()
    kernel.discover([ConfigProvider])
    kernel.instantiate("config", properties={"defaults": DEFAULTS})
    await kernel.boot()
    yield kernel.registry.require("IConfig")
    await kernel.shutdown()


class counted:
    """A Computed over ``fn`` that counts how often its body ran."""

    def __init__(self, fn):
        self.runs = 0

        def body():
            self.runs += 1
            return fn()

        self.node = Computed(body)

    def get(self):
        return self.node.get()

    @property
    def stale(self):
        return self.node.stale


def test_get_set_unset_and_source(config) -> None:
    """Runtime values shadow defaults; unset lets the defaults show through again."""
    assert config.explain("tenants.acme.db_url").source == "defaults"
    config.set("tenants.acme.db_url", "postgres://new/acme")
    assert config.get("tenants.acme.db_url") == "postgres://new/acme"
    assert config.source("tenants.acme.db_url") == "runtime"
    assert config.source("tenants.acme") == "runtime+defaults"
    assert config.unset("tenants.acme.db_url") is True
    assert config.get("tenants.acme.db_url") == "postgres://db1/acme"
    assert config.unset("tenants.acme.db_url") is False
    assert config.get("missing.key", "fallback") == "fallback"
    assert config.source("missing.key") is None


def test_setting_globex_does_not_touch_readers_of_acme(config) -> None:
    """Per key: acme's computed is neither re-run nor even marked stale by a globex write."""
    acme = counted(lambda: config.get("tenants.acme.db_url"))
    globex = counted(lambda: config.get("tenants.globex.db_url"))
    acme.get(), globex.get()
    config.set("tenants.globex.db_url", "postgres://moved/globex")
    assert (acme.stale, globex.stale) == (False, True)
    assert globex.get() == "postgres://moved/globex"
    acme.get()
    assert (acme.runs, globex.runs) == (1, 2)


def test_replacing_a_parent_reaches_readers_of_keys_under_it(config) -> None:
    """`tenants.globex = {...}` re-runs readers of `tenants.globex.db_url`."""
    url = counted(lambda: config.get("tenants.globex.db_url"))
    pool = counted(lambda: config.get("tenants.globex.pool"))
    acme = counted(lambda: config.get("tenants.acme.db_url"))
    url.get(), pool.get(), acme.get()
    config.set("tenants.globex", {"db_url": "postgres://new/globex"})
    assert url.get() == "postgres://new/globex"
    assert pool.get() is None  # the whole subtree was replaced
    assert acme.stale is False


def test_reading_a_subtree_depends_on_everything_within_it(config) -> None:
    """A reader of `tenants.acme` re-runs when `tenants.acme.pool` changes."""
    section = counted(lambda: config.get("tenants.acme"))
    assert section.get()["pool"] == 5
    config.set("tenants.acme.pool", 9)
    assert section.get() == {"db_url": "postgres://db1/acme", "pool": 9}
    config.set("tenants.globex.pool", 1)
    assert section.stale is False


def test_writing_an_equal_value_triggers_nothing(config) -> None:
    """Setting the value a key already has re-runs nothing."""
    seen = []
    effect = Effect(lambda: seen.append(config.get("region")))
    config.set("region", "eu")
    assert seen == ["eu"]
    effect.dispose()


def test_batched_writes_run_an_effect_once(config) -> None:
    """Two keys in one batch: the effect that reads both runs once more."""
    seen = []
    effect = Effect(lambda: seen.append((config.get("region"), config.get("tenants.acme.pool"))))
    with batch():
        config.set("region", "us")
        config.set("tenants.acme.pool", 7)
    assert seen == [("eu", 5), ("us", 7)]
    effect.dispose()


def test_returned_containers_are_copies(config) -> None:
    """Mutating what get() returned cannot change the config."""
    section = config.get("tenants.acme")
    section["db_url"] = "tampered"
    assert config.get("tenants.acme.db_url") == "postgres://db1/acme"


def test_merge_sets_leaves_and_keeps_siblings(config) -> None:
    """merge() is a deep merge: siblings of merged keys keep their values."""
    count = config.merge({"tenants": {"acme": {"pool": 20}}, "feature": {"beta": True}})
    assert count == 2
    assert config.get("tenants.acme") == {"db_url": "postgres://db1/acme", "pool": 20}
    assert config.get("feature.beta") is True


def test_keys_lists_effective_leaves(config) -> None:
    """keys(prefix) lists dotted leaf keys, runtime ones included."""
    config.set("tenants.initech.db_url", "postgres://db3/initech")
    assert config.keys("tenants.initech") == ["tenants.initech.db_url"]
    assert "region" in config.keys()  # noqa: SIM118 (config.keys is not dict.keys)


async def test_an_empty_config_has_no_keys() -> None:
    """No defaults and nothing set: keys() is empty (not the root's empty key '')."""
    kernel = Kernel()
    kernel.discover([ConfigProvider])
    kernel.instantiate("config")
    await kernel.boot()
    config = kernel.registry.require("IConfig")
    assert (config.keys(), config.as_dict()) == ([], {})
    await kernel.shutdown()


@pytest.mark.parametrize("key", ["", "tenants..acme", ".x", "x.", 42, None, ("a", "b")])
def test_keys_must_be_dotted_strings(config, key) -> None:
    """A malformed key is a one-line ConfigKeyError, and nothing is written."""
    before = config.as_dict()
    with pytest.raises(ConfigKeyError, match="dotted string like 'tenants.acme.db_url'"):
        config.set(key, "x")
    with pytest.raises(ConfigKeyError):
        config.get(key)
    assert config.as_dict() == before


def test_tenant_view_reads_own_section_and_shared_keys(config) -> None:
    """A targeted view sees `region` and its own tenant, not another tenant or the whole map."""
    view = config.scoped_for(type("C", (), {"target": "acme", "name": "tenant-db-acme"})())
    assert view.get("region") == "eu"
    assert view.get("tenants.acme.pool") == 5
    with pytest.raises(TenantIsolationError, match="belongs to tenant 'globex'"):
        view.get("tenants.globex.db_url")
    with pytest.raises(TenantIsolationError, match="belongs to every tenant"):
        view.get("tenants")
    with pytest.raises(TenantIsolationError, match="may write only inside 'tenants.acme.'"):
        view.set("region", "us")
    view.set("tenants.acme.pool", 6)
    assert config.get("tenants.acme.pool") == 6
    assert config.get("region") == "eu"


async def test_a_key_set_below_a_replaced_subtree_shows_in_every_listing(config) -> None:
    """`set("tenants", {...})` then `set("tenants.acme.pool", 3)`: get, as_dict and keys agree."""
    config.set("tenants", {"acme": {"db_url": "postgres://x/acme"}})
    config.set("tenants.acme.pool", 3)
    assert 3 == config.get("tenants.acme.pool")
    assert {"acme": {"db_url": "postgres://x/acme", "pool": 3}} == config.as_dict("tenants")
    assert {"db_url": "postgres://x/acme", "pool": 3} == config.all()["tenants"]["acme"]
    assert ["tenants.acme.db_url", "tenants.acme.pool"] == config.keys("tenants")
