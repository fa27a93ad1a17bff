"""Properties are read-only, and an instance cannot change its own target.

The attacker is ``mallory-acme`` (``{"target": "acme"}``, named unlike its factory so it has
the route ``mallory.attack`` for acme). After each attempt ``still_acme()`` checks that the
kernel's record, its route and its config and bus scoping still say ``acme``.
"""

from __future__ import annotations

import gc

import pytest

from signalpy_lab.errors import TenantIsolationError
from signalpy_lab.kernel import Runtime

NAME = "mallory-acme"
PROPERTIES = {"limits": {"rows": 10}, "tags": ["a"]}


@pytest.fixture
def attack_as_acme(attack):
    """`attack` as `mallory-acme`, with nested properties to tamper with."""

    async def run(plan, **kwargs):
        return await attack(plan, name=NAME, properties=PROPERTIES, **kwargs)

    return run


async def test_properties_read_back_frozen(attack_as_acme) -> None:
    """The control: the instance sees its properties, nested values frozen to proxies and tuples."""
    props = await attack_as_acme(lambda self: (self.rt.properties["target"],
                                               dict(self.rt.properties["limits"]),
                                               self.rt.properties["tags"]))
    assert ("acme", {"rows": 10}, ("a",)) == props


async def test_item_assignment_of_the_target_is_refused(attack_as_acme, still_acme) -> None:
    """`rt.properties["target"] = "globex"` is a TypeError (a mappingproxy)."""

    def retarget(self):
        self.rt.properties["target"] = "globex"

    with pytest.raises(TypeError, match="does not support item assignment"):
        await attack_as_acme(retarget)
    await still_acme(NAME)


async def test_deleting_the_target_is_refused(attack_as_acme, still_acme) -> None:
    """`del rt.properties["target"]` is a TypeError."""

    def untarget(self):
        del self.rt.properties["target"]

    with pytest.raises(TypeError, match="does not support item deletion"):
        await attack_as_acme(untarget)
    await still_acme(NAME)


async def test_nested_mappings_are_read_only(attack_as_acme, still_acme) -> None:
    """`rt.properties["limits"]["rows"] = ...` is a TypeError: nested mappings are proxies."""

    def raise_limit(self):
        self.rt.properties["limits"]["rows"] = 10**6

    with pytest.raises(TypeError, match="does not support item assignment"):
        await attack_as_acme(raise_limit)
    await still_acme(NAME)


async def test_nested_lists_are_tuples(attack_as_acme, still_acme) -> None:
    """`rt.properties["tags"].append(...)` is an AttributeError: lists became tuples."""
    with pytest.raises(AttributeError, match="'tuple' object has no attribute 'append'"):
        await attack_as_acme(lambda self: self.rt.properties["tags"].append("tenant:globex"))
    await still_acme(NAME)


@pytest.mark.parametrize("setter", [
    lambda rt: setattr(rt, "target", "globex"),
    lambda rt: object.__setattr__(rt, "target", "globex"),
    lambda rt: object.__setattr__(rt, "properties", {"target": "globex"}),
    lambda rt: object.__setattr__(rt, "name", "vault-globex"),
])
async def test_runtime_identity_attributes_have_no_setter(attack_as_acme, still_acme,
                                                          setter) -> None:
    """Assigning `target`, `properties` or `name` on the runtime, even via object.__setattr__,
    is an AttributeError."""
    with pytest.raises(AttributeError, match="of 'Runtime' object has no setter"):
        await attack_as_acme(lambda self: setter(self.rt))
    await still_acme(NAME)


async def test_deleting_the_runtimes_target_is_refused(attack_as_acme, still_acme) -> None:
    """`del rt.target` is an AttributeError."""

    def untarget(self):
        del self.rt.target

    with pytest.raises(AttributeError, match="of 'Runtime' object has no deleter"):
        await attack_as_acme(untarget)
    await still_acme(NAME)


async def test_a_copy_of_the_properties_is_only_a_copy(attack_as_acme, still_acme) -> None:
    """`rt.properties.copy()` is a plain dict; changing it leaves the properties as they were."""

    def fork(self):
        forked = self.rt.properties.copy()
        forked["target"] = "globex"
        return forked["target"], self.rt.properties["target"]

    assert ("globex", "acme") == await attack_as_acme(fork)
    await still_acme(NAME)


async def test_a_lying_runtime_subclass_only_breaks_the_attacker(attack_as_acme,
                                                                   kernel) -> None:
    """Swapping `rt.__class__` for a subclass whose `target` says globex changes no scoping.

    The re-typed handle is dead (its record belongs to Runtime, not to the subclass), and the
    kernel never reads `rt.target`: the record, the route and config still say acme.
    """

    class Lying(Runtime):
        __slots__ = ()
        target = property(lambda rt: "globex")

    def lie(self):
        rt = self.rt
        object.__setattr__(rt, "__class__", Lying)
        try:
            return rt.target, rt.config.get("tenants.acme.db_url")
        finally:
            object.__setattr__(rt, "__class__", Runtime)

    with pytest.raises(TypeError, match="Lying object is not a kernel-issued Runtime handle"):
        await attack_as_acme(lie)
    rt = kernel.component(NAME).rt
    assert "acme" == kernel.instance(NAME).target
    assert f"{NAME}.attack" == kernel.bus.route_owner("mallory.attack", "acme")
    with pytest.raises(TenantIsolationError, match="may not read 'tenants.globex.db_url'"):
        rt.config.get("tenants.globex.db_url")
    with pytest.raises(TenantIsolationError, match="may not call 'vault-globex.read'"):
        await rt.bus.invoke("vault.read", {"target": "globex"})


async def test_rewriting_the_backing_dict_does_not_move_the_instance(attack_as_acme,
                                                                    still_acme) -> None:
    """Even with `gc.get_referents(rt.properties)[0]["target"] = "globex"`, scoping stays acme."""

    def rewrite(self):
        for referent in gc.get_referents(self.rt.properties):
            if isinstance(referent, dict):
                referent["target"] = "globex"

    await attack_as_acme(rewrite)
    await still_acme(NAME)


@pytest.mark.xfail(strict=True, reason="DOCUMENTED LIMIT (README, Security model): gc is "
                   "deliberate introspection; gc.get_referents(rt.properties) returns the dict "
                   "behind the read-only view. Routing and scoping still use the fixed target.")
async def test_properties_stay_as_given_even_through_gc(attack_as_acme, kernel) -> None:
    """After rewriting the dict behind the proxy, `rt.properties["target"]` must still be acme."""

    def rewrite(self):
        for referent in gc.get_referents(self.rt.properties):
            if isinstance(referent, dict):
                referent["target"] = "globex"

    await attack_as_acme(rewrite)
    assert "acme" == kernel.component(NAME).rt.properties["target"]
