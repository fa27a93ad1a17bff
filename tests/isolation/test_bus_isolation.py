"""Bus: `self.rt.bus` calls and publishes *as* the instance, within its own tenant.

The victim serves ``vault-globex.read`` and, by target, ``vault.read`` / ``IVault.read``.
A targeted attacker may call its own tenant's handlers and untargeted ones, never another
tenant's, never through transports; its events carry a kernel-set source and reach only its
own tenant's subscribers and untargeted ones.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import TenantIsolationError, UnknownHandlerError, UnknownTargetError
from signalpy_lab.kernel import InProcessTransport, Kernel, component, runnable

from .conftest import VICTIM, VICTIM_ANSWER, Listener


def refused_call(handler: str, target: str = "acme") -> str:
    return re.escape(f"Instance 'mallory' (target {target!r}) may not call {handler!r}, "
                     "which serves target 'globex'")


class Targeted(BaseModel):
    target: str


async def test_its_own_tenants_route_answers(attack) -> None:
    """The control: `vault.read` for acme answers acme's data, so refusals are precise."""
    answer = await attack(lambda self: self.rt.bus.invoke("vault.read", {"target": "acme"}))
    assert ("acme", "acme-pw") == (answer["tenant"], answer["password"])


async def test_calling_the_victim_by_exact_name_is_refused(attack, victim_intact) -> None:
    """`vault-globex.read` is globex's handler: TenantIsolationError, the handler never runs."""
    with pytest.raises(TenantIsolationError, match=refused_call("vault-globex.read")):
        await attack(lambda self: self.rt.bus.invoke("vault-globex.read"))
    await victim_intact()


@pytest.mark.parametrize("routed", ["vault.read", "IVault.read"])
async def test_a_routed_call_with_the_victims_target_is_refused(attack, victim_intact,
                                                                routed) -> None:
    """By factory or by contract name, `target: globex` resolves to globex's handler: refused."""
    with pytest.raises(TenantIsolationError, match=refused_call("vault-globex.read")):
        await attack(lambda self: self.rt.bus.invoke(routed, {"target": "globex"}))
    await victim_intact()


async def test_a_routed_call_with_a_model_as_params_is_refused(attack, victim_intact) -> None:
    """Params given as a pydantic model with `target="globex"` route the same way: refused."""
    with pytest.raises(TenantIsolationError, match=refused_call("vault-globex.read")):
        await attack(lambda self: self.rt.bus.invoke("vault.read", Targeted(target="globex")))
    await victim_intact()


async def test_an_instance_of_an_unknown_tenant_is_refused_too(attack, victim_intact) -> None:
    """`{"target": "evil"}` calling globex's route: TenantIsolationError naming 'evil'."""
    with pytest.raises(TenantIsolationError, match=refused_call("vault-globex.read", "evil")):
        await attack(lambda self: self.rt.bus.invoke("vault.read", {"target": "globex"}),
                     target="evil")
    await victim_intact()


async def test_a_routed_call_without_a_target_does_not_default_to_anyone(attack) -> None:
    """`vault.read` with no target is an UnknownTargetError, not a call to some tenant."""
    with pytest.raises(UnknownTargetError, match="has no 'target' parameter"):
        await attack(lambda self: self.rt.bus.invoke("vault.read"))


@pytest.fixture
async def remote() -> AsyncIterator[Kernel]:
    """Another kernel whose untargeted `remote-vault.read` holds globex's ledger."""

    @component("remote-vault")
    class RemoteVault:
        @runnable("read")
        def read(self, params):
            return {"ledger": "globex-remote-ledger"}

    kernel = Kernel("remote")
    kernel.discover([RemoteVault])
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def test_a_targeted_instance_never_reaches_transports(attack, kernel, remote) -> None:
    """The admin reaches `remote-vault.read` via a transport; mallory gets UnknownHandlerError."""
    kernel.bus.add_transport(InProcessTransport(remote))
    assert {"ledger": "globex-remote-ledger"} == await kernel.bus.invoke("remote-vault.read")
    with pytest.raises(UnknownHandlerError, match="No handler 'remote-vault.read'"):
        await attack(lambda self: self.rt.bus.invoke("remote-vault.read"))


@pytest.mark.parametrize("forged", [{"source": VICTIM}, {"target": "globex"},
                                    {"source": "kernel", "target": None}])
async def test_publish_takes_no_source_or_target(attack, kernel, forged) -> None:
    """`publish(..., source=...)` / `target=...` is a TypeError; nothing is delivered."""
    with pytest.raises(TypeError, match="publish\\(\\) got an unexpected keyword argument"):
        await attack(lambda self: self.rt.bus.publish("payments.sent", {"amount": 1}, **forged))
    assert [] == kernel.component(VICTIM).events
    assert [] == kernel.component("auditor").events


async def test_publish_takes_no_positional_source(attack, kernel) -> None:
    """A third positional argument (a would-be source) is a TypeError too."""
    with pytest.raises(TypeError, match="takes from 2 to 3 positional arguments but 4"):
        await attack(lambda self: self.rt.bus.publish("payments.sent", {"amount": 1}, VICTIM))
    assert [] == kernel.component("auditor").events


async def test_events_reach_own_tenant_and_untargeted_subscribers_only(attack,
                                                                       kernel) -> None:
    """acme's vault, the auditor and mallory itself hear its event, with a kernel-set source;
    globex's vault does not."""
    delivered = await attack(lambda self: self.rt.bus.publish("payments.sent", {"amount": 1}))
    heard = ("payments.sent", "mallory", "acme", {"amount": 1})
    assert 3 == delivered  # vault-acme, auditor, and mallory's own subscriber
    assert [heard] == kernel.component("vault-acme").events
    assert [heard] == kernel.component("auditor").events
    assert [] == kernel.component(VICTIM).events


async def test_the_bus_handle_cannot_subscribe(attack) -> None:
    """Subscriptions are declared with `@subscribe` and scoped by the kernel; rt.bus has none."""
    with pytest.raises(AttributeError, match="'ScopedBus' object has no attribute 'subscribe'"):
        await attack(lambda self: self.rt.bus.subscribe("payments.*", print))


async def test_a_subscriber_cannot_rewrite_the_source_later_subscribers_see(attack,
                                                                           kernel) -> None:
    """Mallory's own subscriber relabels its event as globex's; a later auditor must not see it."""

    def relabel(self, event):
        for field, forged in (("source", VICTIM), ("target", "globex")):
            try:
                object.__setattr__(event, field, forged)
            except AttributeError:  # events are tuples: the kernel-set fields cannot change
                pass

    await attack(lambda self: self.rt.bus.publish("payments.sent", {"amount": 1}),
                 on_event=relabel, invoke=False)
    await kernel.hot_add(Listener, "late-auditor")
    await kernel.bus.invoke("mallory.attack")
    assert [("payments.sent", "mallory", "acme", {"amount": 1})] == \
        kernel.component("late-auditor").events


async def test_a_subscriber_cannot_tamper_with_what_another_tenant_receives(attack,
                                                                           kernel) -> None:
    """An untargeted broadcast reaches globex's late listener with the amount it was sent with."""

    def inflate(self, event):
        event.payload["amount"] = 1_000_000

    await attack(lambda self: None, on_event=inflate, invoke=False)
    await kernel.hot_add(Listener, "listener-globex", {"target": "globex"})
    kernel.bus.publish("payments.broadcast", {"amount": 5})
    assert [("payments.broadcast", None, None, {"amount": 5})] == \
        kernel.component("listener-globex").events


async def test_the_victims_route_still_answers_after_every_bus_attack(attack,
                                                                      kernel) -> None:
    """After refused exact, routed and contract calls, globex's route answers globex's data."""
    for call in (lambda self: self.rt.bus.invoke("vault-globex.read"),
                 lambda self: self.rt.bus.invoke("IVault.read", {"target": "globex"})):
        with pytest.raises(TenantIsolationError):
            await attack(call)
    assert VICTIM_ANSWER == await kernel.bus.invoke("IVault.read", {"target": "globex"})
