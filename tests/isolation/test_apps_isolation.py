"""`apps.<name>` is private to component <name>, whoever asks, and no secret reaches a view.

The victim ``vault-globex`` keeps ``apps.vault-globex.password`` and ``.token`` in config.
Every kind of attacker is tried: a tenant instance of another tenant (acme), one of the
victim's own tenant (globex), an untargeted component, and one *named* like the victim's
factory (``vault``). Each reads its own ``apps.<name>`` section and nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from signalpy_lab.errors import ConfigKeyError, TenantIsolationError, UndeclaredCallError
from signalpy_lab.kernel import Event, Kernel, component, computed, requires, runnable
from signalpy_lab.kernel.redaction import MASK

from .conftest import MALLORY_SECRETS, VICTIM, VICTIM_SECRETS

#: (instance name, target) of every kind of attacker.
ATTACKERS = [("mallory", "acme"), ("mallory", "globex"), ("mallory", None), ("vault", None)]
ATTACKER_IDS = ["other-tenant", "same-tenant", "untargeted", "named-like-the-factory"]

VICTIM_KEYS = [
    "apps",
    f"apps.{VICTIM}",
    f"apps.{VICTIM}.password",
    f"apps.{VICTIM}.targets",
    f"apps.{VICTIM}.targets.prod.api_key",
    "apps.*.password",                       # a glob is just a strange component name
    f"apps.mallory/{VICTIM}.password",       # '/' is no separator in config
]


class Section(BaseModel):
    password: str = ""


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


@pytest.mark.parametrize(("name", "target"), ATTACKERS, ids=ATTACKER_IDS)
@pytest.mark.parametrize("key", VICTIM_KEYS)
@pytest.mark.parametrize("method", ["get", "peek", "source", "explain", "keys"])
async def test_no_kind_of_component_reads_another_components_apps_section(
        attack, victim_intact, name, target, key, method) -> None:
    """Every read method, every attacker kind: TenantIsolationError naming key and rule."""
    with pytest.raises(TenantIsolationError, match=re.escape(
            f"may not read {key!r}")) as refused:
        await attack(lambda self: getattr(self.rt.config, method)(key), name=name,
                     target=target)
    assert "is private to component <name>" in str(refused.value)
    assert f"Instance {name!r}" in str(refused.value)
    await victim_intact()


@pytest.mark.parametrize(("name", "target"), ATTACKERS, ids=ATTACKER_IDS)
async def test_get_typed_cannot_validate_the_victims_section(attack, name, target) -> None:
    with pytest.raises(TenantIsolationError, match=re.escape(f"may not read 'apps.{VICTIM}'")):
        await attack(lambda self: self.rt.config.get_typed(f"apps.{VICTIM}", Section),
                     name=name, target=target)


@pytest.mark.parametrize(("name", "target"), ATTACKERS, ids=ATTACKER_IDS)
async def test_all_holds_only_its_own_apps_section(attack, name, target) -> None:
    """`all()` and `get_typed("", ...)` see `apps.<own name>` and nothing of the victim's."""
    everything = await attack(lambda self: (self.rt.config.all(),
                                            self.rt.config.get_typed("", Anything)),
                              name=name, target=target)
    assert set(everything[0].get("apps", {})) <= {name}
    assert VICTIM_SECRETS["password"] not in repr(everything)


@pytest.mark.parametrize(("name", "target"), ATTACKERS, ids=ATTACKER_IDS)
@pytest.mark.parametrize("key", [f"apps.{VICTIM}.password", f"apps.{VICTIM}.new", "apps",
                                 f"apps.{VICTIM}", "apps.mallory", "apps.vault"])
@pytest.mark.parametrize("method", ["set", "unset"])
async def test_no_kind_of_component_writes_another_apps_section_or_a_whole_section(
        attack, victim_intact, name, target, key, method) -> None:
    """Writes to the victim's section, to `apps` or to a whole section (even its own) raise."""
    args = (key, "pwned") if method == "set" else (key,)
    with pytest.raises(TenantIsolationError, match=re.escape(f"may not write {key!r}")):
        await attack(lambda self: getattr(self.rt.config, method)(*args), name=name,
                     target=target)
    await victim_intact()


@pytest.mark.parametrize(("name", "target"), ATTACKERS, ids=ATTACKER_IDS)
async def test_its_own_section_is_readable_and_writable(attack, kernel, name, target) -> None:
    """The control: each attacker rotates and reads its own secret through config."""
    own = f"apps.{name}.password"
    kernel.registry.require("IConfig").set(own, "mine")
    assert "rotated" == await attack(
        lambda self: (self.rt.config.set(own, "rotated"), self.rt.config.get(own))[1],
        name=name, target=target)


@pytest.mark.parametrize("spelling", [f"../{VICTIM}", f"{VICTIM}.password", "*", "", None,
                                      "prod/../..", 7])
async def test_for_target_takes_a_plain_target_name(attack, victim_intact, spelling) -> None:
    """`for_target` and `get(..., target=...)` refuse anything that is not a plain name."""
    with pytest.raises(ConfigKeyError, match="A credential target is a plain name"):
        await attack(lambda self: self.rt.creds.for_target(spelling))
    if spelling is not None:  # get(key, target=None) is the untargeted secret, by design
        with pytest.raises(ConfigKeyError, match="A credential target is a plain name"):
            await attack(lambda self: self.rt.creds.get("password", target=spelling))
    await victim_intact()


async def test_list_targets_and_for_target_stay_under_its_own_name(attack, kernel) -> None:
    """The victim's per-target secrets are not mallory's, whatever target name is asked."""
    config = kernel.registry.require("IConfig")
    config.set(f"apps.{VICTIM}.targets.prod.api_key", "globex-prod-key")
    config.set("apps.mallory.targets.dev.api_key", "mallory-dev-key")
    loot = await attack(lambda self: (self.rt.creds.list_targets(),
                                      dict(self.rt.creds.for_target("prod")),
                                      dict(self.rt.creds.for_target("dev"))))
    assert (["dev"], {}, {"api_key": "mallory-dev-key"}) == loot


# -- secrets never reach a view ----------------------------------------------------------


@component("leaky", depends=["config", "credentials"])
@requires(creds="ICredentials")
class Leaky:
    """A component whose computed and handler hand its own secret around (a common mistake)."""

    @computed
    def dsn(self) -> str:
        return f"postgres://app:{self.creds.get('password')}@db/{self.rt.target}"

    @computed
    def raw(self) -> Any:
        return self.creds.get("password")

    @runnable("connect")
    def connect(self, params: Any) -> dict[str, str]:
        return {"dsn": self.dsn(), "raw": self.raw()}


async def test_secrets_are_masked_in_graph_events_routes_instances_and_exports(kernel) -> None:
    """Every view the lab draws from shows the credential reads, never the values."""
    seen: list[Event] = []
    unsubscribe = kernel.events.subscribe(seen.append)
    try:
        kernel.registry.require("ICredentials").rotate("leaky-acme", "password", "leaky-pw-1")
        await kernel.hot_add(Leaky, "leaky-acme", {"target": "acme"})
        assert {"dsn": "postgres://app:leaky-pw-1@db/acme", "raw": "leaky-pw-1"} == \
            await kernel.bus.invoke("leaky.connect", {"target": "acme"})
        kernel.registry.require("ICredentials").rotate("leaky-acme", "password", "leaky-pw-2")
        await kernel.bus.invoke("leaky.connect", {"target": "acme"})
        await kernel.bus.invoke(f"{VICTIM}.read")   # returns the victim's password
        views = {
            "graph": kernel.graph().to_json(),
            "events": repr(seen),
            "routes": repr(kernel.routes()),
            "instances": repr(kernel.instances()),  # the credentials' `secrets` property
        }
    finally:
        unsubscribe()
    secrets = ["leaky-pw-1", "leaky-pw-2", *VICTIM_SECRETS.values(),
               *MALLORY_SECRETS.values()]
    for view, text in views.items():
        assert [] == [s for s in secrets if s in text], view
    graph = kernel.graph()
    assert MASK == graph.node("apps.leaky-acme.password").value
    assert MASK == graph.node("leaky-acme.raw").value
    assert MASK == graph.node("leaky-acme.dsn").value  # it read a secret: masked whole
    assert f"'dsn': 'postgres://app:{MASK}@db/acme'" in views["routes"]  # masked inside text


# -- calls only where declared -------------------------------------------------------------

UNDECLARED = ("config", "credentials", "storage")


@pytest.mark.parametrize(("handler", "params"), [
    ("vault-acme.read", None),            # its own tenant's instance, by exact name
    ("vault.read", {"target": "acme"}),   # the same, by routed factory name
    ("IVault.read", {"target": "acme"}),  # and by routed contract name
])
@pytest.mark.parametrize("target", ["acme", None], ids=["tenant", "untargeted"])
async def test_an_undeclared_call_is_refused_by_exact_and_routed_name(
        attack, kernel, handler, params, target) -> None:
    """mallory did not declare `vault` or `IVault`: UndeclaredCallError, the vault never runs."""
    calls = kernel.bus.handler("vault-acme.read").calls
    with pytest.raises(UndeclaredCallError, match=re.escape(
            f"Instance 'mallory' may not call {handler!r}")) as refused:
        await attack(lambda self: self.rt.bus.invoke(handler, params), depends=UNDECLARED,
                     target=target)
    assert "kernel.set_policy('mallory', invoke_allow=" in str(refused.value)
    assert calls == kernel.bus.handler("vault-acme.read").calls


async def test_a_grant_opens_exactly_what_it_names(attack, kernel) -> None:
    """With `invoke_allow=['vault.read']`, the routed call works; `vault-acme.read` does not."""
    kernel.set_policy("mallory", invoke_allow=["vault.read"])
    answer = await attack(lambda self: self.rt.bus.invoke("vault.read", {"target": "acme"}),
                          depends=UNDECLARED)
    assert "acme" == answer["tenant"]
    with pytest.raises(UndeclaredCallError, match="may not call 'vault-acme.read'"):
        await attack(lambda self: self.rt.bus.invoke("vault-acme.read"), depends=UNDECLARED)


async def test_an_undeclared_call_to_a_remote_kernel_is_refused_before_it_leaves(
        attack, kernel) -> None:
    """An untargeted component may use transports, but only for what a policy grants.

    A remote kernel's components are not local ones it could name in ``depends``."""
    remote = Kernel("remote")

    class Empty(BaseModel):
        pass

    @component("ledger")
    class Ledger:
        @runnable("balance", params=Empty)
        def balance(self, params: Empty) -> int:
            return 100

    from signalpy_lab.kernel import InProcessTransport

    remote.discover([Ledger])
    await remote.boot()
    transport = InProcessTransport(remote)
    kernel.bus.add_transport(transport)
    try:
        with pytest.raises(UndeclaredCallError, match="may not call 'ledger.balance'"):
            await attack(lambda self: self.rt.bus.invoke("ledger.balance"), target=None)
        assert 0 == remote.bus.handler("ledger.balance").calls
        kernel.set_policy("mallory", invoke_allow=["ledger.*"])
        assert 100 == await attack(lambda self: self.rt.bus.invoke("ledger.balance"),
                                   target=None)
    finally:
        kernel.bus.remove_transport(transport)
        await remote.shutdown()


@pytest.mark.parametrize("reach", [
    lambda self: self.rt.kernel,
    lambda self: self.rt.bus.kernel,
    lambda self: self.rt.bus._kernel,
    lambda self: self.rt.bus.set_policy("mallory", invoke_allow=["*"]),
    lambda self: self.rt.set_policy("mallory", invoke_allow=["*"]),
    lambda self: self.rt.service("IKernel"),
    lambda self: self.rt.bus.invoke.__self__._kernel,
], ids=["rt.kernel", "bus.kernel", "bus._kernel", "bus.set_policy", "rt.set_policy",
        "service", "bound-method"])
async def test_a_component_cannot_edit_policies(attack, kernel, reach) -> None:
    """No handle leads to the kernel or `set_policy`; the policy table stays the host's."""
    kernel.set_policy("auditor", invoke_allow=["nothing"])
    before = kernel.policies()
    with pytest.raises((AttributeError, LookupError, TypeError)):
        await attack(reach)
    assert before == kernel.policies()
