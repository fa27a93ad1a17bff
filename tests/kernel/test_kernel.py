"""Kernel lifecycle: default instances, dependency order, failures, hot add and remove."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import (
    DependencyCycleError,
    DependencyError,
    DuplicateInstanceError,
    InvalidNameError,
    InvalidPropertiesError,
    KernelStateError,
    RouteConflictError,
    UnknownFactoryError,
    UnknownInstanceError,
    UnknownTargetError,
)
from signalpy_lab.kernel import (
    Kernel,
    component,
    computed,
    effect,
    graph_stats,
    lifecycle,
    provides,
    requires,
    runnable,
)
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider

LOG: list[str] = []


@pytest.fixture(autouse=True)
def _clear_log():
    LOG.clear()


@component("alpha")
@provides("IAlpha")
class Alpha:
    @lifecycle.activate
    def start(self):
        LOG.append(f"activate {self.rt.name}")

    @lifecycle.deactivate
    def stop(self):
        LOG.append(f"deactivate {self.rt.name}")


@component("beta", depends=["alpha"])
class Beta:
    @lifecycle.activate
    async def start(self, rt):
        LOG.append(f"activate {rt.name}")

    @lifecycle.deactivate
    def stop(self, rt):
        LOG.append(f"deactivate {rt.name}")


@component("gamma")
@requires(alpha="IAlpha")
class Gamma:
    @lifecycle.activate
    def start(self):
        LOG.append(f"activate {self.rt.name} with {type(self.alpha).__name__}")

    @lifecycle.deactivate
    def stop(self):
        LOG.append(f"deactivate {self.rt.name}")


class Echo(BaseModel):
    text: str = ""


@component("worker", depends=["config"])
class Worker:
    @computed
    def greeting(self):
        return f"{self.rt.config.get('greeting', 'hi')} from {self.rt.name}"

    @runnable("echo", params=Echo)
    async def echo(self, params):
        return {"instance": self.rt.name, "text": params.text, "greeting": self.greeting()}


@component("broken")
class Broken:
    @lifecycle.activate
    def start(self):
        raise RuntimeError("database unreachable")


async def test_boot_activates_in_dependency_order_and_shutdown_reverses_it() -> None:
    """depends and requires both order activation; deactivation runs in reverse."""
    kernel = Kernel()
    kernel.discover([Gamma, Beta, Alpha])
    await kernel.boot()
    await kernel.shutdown()
    assert LOG[:3] in (
        ["activate alpha", "activate gamma with ServiceProxy", "activate beta"],
        ["activate alpha", "activate beta", "activate gamma with ServiceProxy"],
    )
    assert LOG[3:] == list(reversed([f"deactivate {e.split()[1]}" for e in LOG[:3]]))
    assert {i.state for i in kernel.instances()} == {"stopped"}


async def test_factories_without_instances_get_a_default_instance_named_after_them() -> None:
    """At boot, `alpha` gets an instance `alpha`; `worker`, instantiated twice, gets none."""
    kernel = Kernel()
    kernel.discover([Alpha, ConfigProvider, Worker])
    kernel.instantiate("worker", "worker-a", {"target": "a"})
    kernel.instantiate("worker", "worker-b", {"target": "b"})
    await kernel.boot()
    assert sorted(i.name for i in kernel.instances()) == ["alpha", "config", "worker-a",
                                                          "worker-b"]
    with pytest.raises(UnknownTargetError, match="no 'target' parameter. Known targets: 'a', 'b'"):
        await kernel.invoke("worker.echo", {"text": "x"})


async def test_failed_activation_is_recorded_and_the_others_still_boot() -> None:
    """An activate that raises marks its instance failed, keeps the error, boots the rest."""
    kernel = Kernel()
    kernel.discover([Alpha, Broken])
    await kernel.boot()
    states = {i.name: (i.state, i.error) for i in kernel.instances()}
    assert states["alpha"] == ("active", None)
    assert states["broken"] == ("failed", "RuntimeError: database unreachable")
    assert kernel.instance("broken").obj is None


async def test_dependents_of_a_failed_instance_fail_with_a_clear_reason() -> None:
    """If alpha fails, beta (which depends on it) is failed too, saying why."""

    @component("alpha")
    @provides("IAlpha")
    class FailingAlpha:
        @lifecycle.activate
        def start(self):
            raise ValueError("nope")

    kernel = Kernel()
    kernel.discover([FailingAlpha, Beta])
    await kernel.boot()
    beta = kernel.instance("beta")
    assert beta.state.value == "failed"
    assert "dependency 'alpha' is failed" in str(beta.error)


async def test_missing_dependency_raises_before_anything_activates() -> None:
    """A component depending on an undiscovered one fails boot, naming it; nothing starts."""
    kernel = Kernel()
    kernel.discover([Beta])
    with pytest.raises(DependencyError, match="'beta' depends on component 'alpha'"):
        await kernel.boot()
    assert LOG == []
    assert kernel.instances() == []
    assert kernel.state.value == "created"


async def test_dependency_cycle_is_named() -> None:
    """A depends on B depends on A: boot refuses and names the cycle."""

    @component("cyc-a", depends=["cyc-b"])
    class A:
        pass

    @component("cyc-b", depends=["cyc-a"])
    class B:
        pass

    kernel = Kernel()
    kernel.discover([A, B])
    with pytest.raises(DependencyCycleError, match="cyc-a -> cyc-b -> cyc-a"):
        await kernel.boot()


async def test_instantiate_after_boot_activates_a_new_tenant_at_once(seed_kernel) -> None:
    """Onboarding: a fourth tenant instantiated after boot is routable immediately."""
    config = seed_kernel.registry.require("IConfig")
    config.set("tenants.umbrella.db_url", "postgres://db4.prod/umbrella")
    seed_kernel.instantiate("tenant-db", "tenant-db-umbrella", {"target": "umbrella"})
    r = await seed_kernel.bus.invoke("tenant-db.query", {"target": "umbrella"})
    assert r["db_url"] == "postgres://db4.prod/umbrella"


async def test_hot_add_discovers_a_class_and_raises_its_activation_error() -> None:
    """hot_add takes a class; a failing activate raises to the caller and is recorded."""
    kernel = Kernel()
    kernel.discover([Alpha])
    await kernel.boot()
    inst = await kernel.hot_add(Beta, "beta-2")
    assert inst.state.value == "active"
    with pytest.raises(RuntimeError, match="database unreachable"):
        await kernel.hot_add(Broken)
    assert kernel.instance("broken").state.value == "failed"


async def test_hot_remove_releases_handlers_routes_and_reactive_nodes(seed_kernel) -> None:
    """Offboarding acme removes its routes and nodes; globex keeps working."""
    before = graph_stats()
    await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})  # builds acme's graph
    await seed_kernel.hot_remove("tenant-db-acme")
    assert graph_stats()["links"] < before["links"] + 1
    assert "tenant-db-acme.query" not in seed_kernel.bus.names()
    with pytest.raises(UnknownTargetError, match="Known targets: 'globex', 'initech'"):
        await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    r = await seed_kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    assert r["tenant"] == "globex"
    assert "tenant-db" in [f.name for f in seed_kernel.factories()]


async def test_hot_remove_then_reinstantiate_the_same_name(seed_kernel) -> None:
    """A removed name is free again (no stale claim on its routes)."""
    await seed_kernel.hot_remove("tenant-db-acme")
    seed_kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
    r = await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    assert r["tenant"] == "acme"


async def test_removing_a_dependency_of_active_instances_is_refused(seed_kernel) -> None:
    """config cannot go while tenants depend on it; nothing changes."""
    with pytest.raises(DependencyError, match="Cannot remove 'config'"):
        await seed_kernel.hot_remove("config")
    assert seed_kernel.instance("config").state.value == "active"


async def test_effects_of_a_component_run_and_are_disposed_with_it() -> None:
    """An @effect runs after activate, re-runs on change, and stops after hot_remove."""
    seen: list[str] = []

    @component("watcher", depends=["config"])
    class Watcher:
        @effect
        def watch(self):
            seen.append(self.rt.config.get("mode", "off"))

    kernel = Kernel()
    kernel.discover([ConfigProvider, Watcher])
    await kernel.boot()
    config = kernel.registry.require("IConfig")
    config.set("mode", "on")
    await kernel.hot_remove("watcher")
    config.set("mode", "later")
    assert seen == ["off", "on"]


async def test_failing_effect_is_contained_and_counted() -> None:
    """An effect that raises is reported on its instance; the instance stays active."""

    @component("fragile", depends=["config"])
    class Fragile:
        @effect
        def watch(self):
            if self.rt.config.get("explode", False):
                raise ValueError("boom")

    kernel = Kernel()
    kernel.discover([ConfigProvider, Fragile])
    await kernel.boot()
    kernel.registry.require("IConfig").set("explode", True)
    info = next(i for i in kernel.instances() if i.name == "fragile")
    assert (info.state, info.effect_errors) == ("active", 1)


# -- bad input: one clear error, nothing changed ---------------------------------------


async def test_unknown_factory_suggests_the_closest() -> None:
    """A typo in a factory name lists the closest match."""
    kernel = Kernel()
    kernel.discover([Alpha, Beta])
    with pytest.raises(UnknownFactoryError, match="Did you mean 'alpha'"):
        kernel.instantiate("alpah")


async def test_duplicate_instance_name_is_refused(seed_kernel) -> None:
    """A second `tenant-db-acme` is an error and the first stays."""
    with pytest.raises(DuplicateInstanceError, match="'tenant-db-acme' already exists"):
        seed_kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "zeta"})
    assert seed_kernel.instance("tenant-db-acme").target == "acme"


async def test_second_instance_for_a_served_target_is_refused(seed_kernel) -> None:
    """Never a silent takeover: acme already has tenant-db-acme."""
    with pytest.raises(RouteConflictError, match="already served by instance 'tenant-db-acme'"):
        seed_kernel.instantiate("tenant-db", "tenant-db-acme-2", {"target": "acme"})
    r = await seed_kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    assert r["tenant"] == "acme"
    assert "tenant-db-acme-2" not in [i.name for i in seed_kernel.instances()]


async def test_hot_remove_of_unknown_name_lists_close_names(seed_kernel) -> None:
    """Removing a name that does not exist suggests the real one."""
    with pytest.raises(UnknownInstanceError, match="Did you mean 'tenant-db-acme'"):
        await seed_kernel.hot_remove("tenant-db-acm")


@pytest.mark.parametrize(
    ("name", "properties", "error"),
    [
        ("has space", {}, InvalidNameError),
        ("ok-name", ["target", "x"], InvalidPropertiesError),
        ("ok-name", {"target": 3}, InvalidPropertiesError),
        ("ok-name", {"target": "../etc"}, InvalidPropertiesError),
    ],
)
def test_malformed_instances_are_refused(name, properties, error) -> None:
    """Names and targets are plain names; properties are string-keyed mappings."""
    kernel = Kernel()
    kernel.discover([Alpha])
    with pytest.raises(error):
        kernel.instantiate("alpha", name, properties)
    assert kernel.instances() == []


async def test_boot_twice_is_an_error() -> None:
    """A kernel boots once."""
    kernel = Kernel()
    await kernel.boot()
    with pytest.raises(KernelStateError, match="boot once"):
        await kernel.boot()


def test_discover_rejects_what_is_not_a_component() -> None:
    """discover says what it expected."""
    with pytest.raises(UnknownFactoryError, match="decorated with @component"):
        Kernel().discover([dict])


async def test_seed_providers_come_up_without_instantiate(seed_kernel) -> None:
    """The seed never instantiates logging or credentials: boot gives them default instances."""
    names = {i.name: i.state for i in seed_kernel.instances()}
    assert names["logging"] == names["credentials"] == "active"
    assert [f.name for f in seed_kernel.factories()] == [
        "config", "logging", "credentials", "tenant-db"]


def test_introspection_of_factories_and_instances() -> None:
    """factories() tells what each provides, requires and exposes."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, Worker])
    worker = next(f for f in kernel.factories() if f.name == "worker")
    assert (worker.runnables, worker.computeds, worker.depends) == (("echo",), ("greeting",),
                                                                    ("config",))


async def test_a_served_target_wins_over_a_default_instance_named_like_the_factory() -> None:
    """Booted with no tenants, `worker` got a default instance; tenants added later still route."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, Worker])
    await kernel.boot()
    assert (await kernel.invoke("worker.echo", {}))["instance"] == "worker"
    kernel.instantiate("worker", "worker-a", {"target": "a"})
    assert (await kernel.invoke("worker.echo", {"target": "a"}))["instance"] == "worker-a"


async def test_an_instance_echoes_one_line_in_a_repl() -> None:
    """What instantiate returns reprs as name, factory, target and state, not the record."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, Worker, Broken])
    acme = kernel.instantiate("worker", "worker-acme", {"target": "acme"})
    assert "<ComponentInstance worker-acme (worker, target acme): pending>" == repr(acme)
    await kernel.boot()
    assert "<ComponentInstance config (config): active>" == repr(kernel.instance("config"))
    assert "<ComponentInstance broken (broken): failed (RuntimeError)>" == \
        repr(kernel.instance("broken"))


async def test_a_routed_name_nobody_serves_yet_is_an_unknown_target() -> None:
    """`tenant-db.query` before any tenant exists says so, instead of 'no such handler'."""
    kernel = Kernel()
    kernel.discover([ConfigProvider])
    await kernel.boot()
    kernel.discover([Worker])  # discovered after boot: no default instance
    with pytest.raises(UnknownTargetError, match="for target 'a'. Known targets: none"):
        await kernel.invoke("worker.echo", {"target": "a"})


class TestFactoryDependencies:
    """`depends=["tenant-db"]`: a tenant needs its own tenant's instance; one of many suffices.

        quota-acme ──▶ tenant-db-acme        (its own tenant's, not globex's)
        admin ──▶ tenant-db-acme, tenant-db-globex   (any one keeps it satisfied)
    """

    @staticmethod
    def classes():
        from signalpy_lab.kernel import component

        @component("tenant-db")
        class Db:
            pass

        @component("quota", depends=["tenant-db"])
        class Quota:
            pass

        @component("admin", depends=["tenant-db"])
        class Admin:
            pass

        return [Db, Quota, Admin]

    async def test_a_targeted_consumer_depends_on_its_own_tenants_instance(self) -> None:
        kernel = Kernel()
        kernel.discover(self.classes())
        for tenant in ("acme", "globex"):
            kernel.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
        kernel.instantiate("quota", "quota-acme", {"target": "acme"})
        await kernel.boot()
        assert ("tenant-db-acme",) == kernel.instance("quota-acme").depends_on
        assert ("tenant-db-acme", "tenant-db-globex") == kernel.instance("admin").depends_on
        await kernel.shutdown()

    async def test_removing_one_of_several_providers_is_allowed_the_last_is_not(self) -> None:
        kernel = Kernel()
        kernel.discover(self.classes())
        for tenant in ("acme", "globex"):
            kernel.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
        kernel.instantiate("quota", "quota-acme", {"target": "acme"})
        await kernel.boot()
        await kernel.hot_remove("tenant-db-globex")  # admin still has acme's
        assert ("tenant-db-acme",) == kernel.instance("admin").depends_on
        with pytest.raises(DependencyError, match="active instances depend on it "
                                                  r"\('admin', 'quota-acme'\)"):
            await kernel.hot_remove("tenant-db-acme")
        await kernel.shutdown()


@component("slow-worker", depends=["config"])
class SlowWorker:
    """Takes a moment to activate, as a worker process or a database connection does."""

    @lifecycle.activate
    async def start(self) -> None:
        await asyncio.sleep(0.01)

    @runnable("echo", params=Echo)
    async def echo(self, params):
        return {"instance": self.rt.name, "text": params.text}


async def test_tenants_hot_added_at_once_retire_the_default_instance_once() -> None:
    """Five ``hot_add``s gathered on a booted kernel whose factory has its default instance:
    each succeeds, the default is retired once, and every tenant answers its own calls."""
    kernel = Kernel()
    kernel.discover([ConfigProvider, SlowWorker])
    await kernel.boot()
    assert "slow-worker" in {i.name for i in kernel.instances()}
    tenants = [f"t{i}" for i in range(5)]
    await asyncio.gather(*(kernel.hot_add("slow-worker", f"slow-worker-{t}", {"target": t})
                           for t in tenants))
    assert sorted(i.name for i in kernel.instances() if i.factory == "slow-worker") == \
        [f"slow-worker-{t}" for t in tenants]
    answers = [await kernel.invoke("slow-worker.echo", {"text": "x", "target": t})
               for t in tenants]
    assert [f"slow-worker-{t}" for t in tenants] == [a["instance"] for a in answers]
    await kernel.shutdown()
