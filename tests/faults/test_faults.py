"""Faults stay contained: the caller gets a clear error, everyone else keeps working."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import DisposedError, InvokeTimeoutError, UnknownTargetError
from signalpy_lab.kernel import (
    Kernel,
    component,
    computed,
    effect,
    graph_stats,
    lifecycle,
    requires,
    runnable,
)
from signalpy_lab.providers import ConfigProvider, CredentialProvider, LoggingProvider


class Work(BaseModel):
    seconds: float = 0.0


@component("svc", depends=["config"])
@requires(config="IConfig")
class Service:
    """A tenant service whose every part can be made to fail through config."""

    @lifecycle.activate
    def start(self):
        if self.config.get(f"tenants.{self.rt.target}.fail_activate", False):
            raise RuntimeError(f"{self.rt.target}: activate failed")
        self.effect_runs = 0

    @lifecycle.deactivate
    def stop(self):
        if self.config.get(f"tenants.{self.rt.target}.fail_deactivate", False):
            raise RuntimeError(f"{self.rt.target}: deactivate failed")

    @computed
    def divisor(self):
        return 10 // self.config.get(f"tenants.{self.rt.target}.n", 1)

    @effect
    def watch(self):
        self.effect_runs += 1
        if self.config.get(f"tenants.{self.rt.target}.fail_effect", False):
            raise ValueError(f"{self.rt.target}: effect failed")

    @runnable("work", params=Work)
    async def work(self, params):
        await asyncio.sleep(params.seconds)
        return {"tenant": self.rt.target, "divisor": self.divisor()}

    @runnable("crash")
    async def crash(self, params):
        raise KeyError(f"{self.rt.target}: runnable failed")


TENANTS = ("acme", "globex", "initech")


async def make_kernel(**tenant_flags) -> Kernel:
    kernel = Kernel()
    kernel.discover([ConfigProvider, LoggingProvider, CredentialProvider, Service])
    kernel.instantiate("config", properties={"defaults": {"tenants": {
        t: dict(tenant_flags.get(t, {})) for t in TENANTS}}})
    for tenant in TENANTS:
        kernel.instantiate("svc", f"svc-{tenant}", {"target": tenant})
    await kernel.boot()
    return kernel


async def others_still_work(kernel: Kernel, *tenants: str) -> None:
    for tenant in tenants:
        r = await kernel.invoke("svc.work", {"target": tenant})
        assert r["tenant"] == tenant


async def test_failing_activate_is_contained() -> None:
    """globex's activate raises: globex is failed with its error; acme and initech serve."""
    kernel = await make_kernel(globex={"fail_activate": True})
    globex = kernel.instance("svc-globex")
    assert (globex.state.value, str(globex.error)) == ("failed", "globex: activate failed")
    with pytest.raises(UnknownTargetError, match="Known targets: 'acme', 'initech'"):
        await kernel.invoke("svc.work", {"target": "globex"})
    await others_still_work(kernel, "acme", "initech")


async def test_failing_deactivate_still_removes_the_instance() -> None:
    """A deactivate that raises is recorded; the instance is removed all the same."""
    kernel = await make_kernel(acme={"fail_deactivate": True})
    record = kernel.instance("svc-acme")
    await kernel.hot_remove("svc-acme")
    assert (record.state.value, str(record.error)) == ("removed", "acme: deactivate failed")
    assert "svc-acme" not in [i.name for i in kernel.instances()]
    await others_still_work(kernel, "globex", "initech")


async def test_failing_runnable_is_counted_per_handler() -> None:
    """The caller gets the handler's error; its route row counts it; others are unaffected."""
    kernel = await make_kernel()
    with pytest.raises(KeyError, match="acme: runnable failed"):
        await kernel.invoke("svc.crash", {"target": "acme"})
    rows = {(r.route, r.target): r for r in kernel.routes()}
    assert (rows[("svc.crash", "acme")].errors, rows[("svc.crash", "globex")].errors) == (1, 0)
    await others_still_work(kernel, "acme", "globex", "initech")


async def test_failing_computed_is_cached_until_its_input_changes() -> None:
    """n = 0 makes acme's computed raise on every call until n changes again."""
    kernel = await make_kernel()
    config = kernel.registry.require("IConfig")
    config.set("tenants.acme.n", 0)
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            await kernel.invoke("svc.work", {"target": "acme"})
    node = kernel.graph().node("svc-acme.divisor")
    assert (node.runs, node.error.split(":")[0]) == (1, "ZeroDivisionError")  # cached error
    await others_still_work(kernel, "globex", "initech")
    config.set("tenants.acme.n", 5)
    assert (await kernel.invoke("svc.work", {"target": "acme"}))["divisor"] == 2


async def test_failing_effect_is_contained_and_visible() -> None:
    """An effect that raises is counted on its instance; the instance stays active."""
    kernel = await make_kernel()
    kernel.registry.require("IConfig").set("tenants.initech.fail_effect", True)
    info = {i.name: i for i in kernel.instances()}
    assert (info["svc-initech"].state, info["svc-initech"].effect_errors) == ("active", 1)
    assert info["svc-acme"].effect_errors == 0
    await others_still_work(kernel, "acme", "globex", "initech")


async def test_a_hung_handler_times_out_without_blocking_others() -> None:
    """A call that would take 30 s fails after 50 ms; calls to other tenants complete."""
    kernel = await make_kernel()
    hung = asyncio.create_task(kernel.invoke("svc.work", {"target": "acme", "seconds": 30},
                                              timeout=0.05))
    await others_still_work(kernel, "globex", "initech")
    with pytest.raises(InvokeTimeoutError, match="svc-acme.work did not finish within 0.05s"):
        await hung
    assert kernel.bus.handler("svc-acme.work").inflight == 0


async def test_hot_remove_with_calls_in_flight() -> None:
    """In-flight calls to acme finish with acme's data; then acme's route is gone, cleanly."""
    kernel = await make_kernel()
    baseline = graph_stats()
    in_flight = [asyncio.create_task(kernel.invoke("svc.work", {"target": "acme",
                                                                "seconds": 0.05}))
                 for _ in range(10)]
    await asyncio.sleep(0.01)
    await kernel.hot_remove("svc-acme")
    results = await asyncio.gather(*in_flight, return_exceptions=True)
    assert [r["tenant"] for r in results] == ["acme"] * 10
    with pytest.raises(UnknownTargetError, match="Known targets: 'globex', 'initech'"):
        await kernel.invoke("svc.work", {"target": "acme"})
    assert not [n for n in kernel.bus.names() if n.startswith("svc-acme.")]
    assert not [n for n in kernel.graph().nodes if n.instance == "svc-acme"]
    assert graph_stats()["derived_nodes"] == baseline["derived_nodes"] - 2  # computed + effect
    await others_still_work(kernel, "globex", "initech")


async def test_a_computed_read_after_its_instance_is_gone_fails_cleanly() -> None:
    """A stray reference to a removed instance's computed raises DisposedError, not garbage."""
    kernel = await make_kernel()
    divisor = kernel.component("svc-acme").divisor
    await kernel.hot_remove("svc-acme")
    with pytest.raises(DisposedError, match="'svc-acme.divisor' was disposed"):
        divisor()
