"""A tenant's own computed is no door into the reactive graph (and so into other tenants).

A ``Computed`` node links to its dependencies (config signals), their owner scope (the config
provider's, holding every tenant's signals) and the kernel's event hub. So a component's
``@computed`` attribute is a sealed ``ComputedValue`` handle, not the node.
"""

from __future__ import annotations

import copy
import pickle

import pytest

from signalpy_lab.kernel import component, computed, requires, runnable

from .conftest import GLOBEX_SECTION

NAME = "mallory-graph"


@component("graph-walker", depends=["config"])
@requires(config="IConfig")
class GraphWalker:
    """A tenant whose own computed reads its own section, and whose runnable attacks."""

    @computed
    def db_url(self):
        return self.config.get(f"tenants.{self.rt.target}.db_url")

    @runnable("attack")
    async def attack(self, params):
        return self.plan(self)


@pytest.fixture
async def walker(kernel):
    await kernel.hot_add(GraphWalker, NAME, {"target": "acme"})
    component = kernel.component(NAME)
    component.db_url()  # linked into the graph, like any used computed

    async def run(plan):
        component.plan = plan
        return await kernel.bus.invoke(f"{NAME}.attack")

    return run


@pytest.mark.parametrize("path", ["deps", "subs", "owner", "fn", "value", "label", "tenant"])
async def test_graph_attributes_are_not_reachable(walker, victim_intact, path) -> None:
    """`self.db_url.deps` (owner, fn, ...) does not exist on the handle."""
    with pytest.raises(AttributeError):
        await walker(lambda self: getattr(self.db_url, path))
    await victim_intact()


@pytest.mark.parametrize("path", ["deps", "owner", "fn", "__dict__"])
async def test_object_getattribute_finds_no_node(walker, path) -> None:
    """`object.__getattribute__(self.db_url, ...)` finds no state either."""
    with pytest.raises(AttributeError):
        await walker(lambda self: object.__getattribute__(self.db_url, path))


async def test_vars_and_copies_of_the_handle_fail(walker) -> None:
    """No `vars()`, no copy, no pickle of a computed handle."""
    for attempt in (vars, copy.copy, pickle.dumps):
        with pytest.raises(TypeError):
            await walker(lambda self, attempt=attempt: attempt(self.db_url))


async def test_the_handle_still_reads_its_own_value(walker) -> None:
    """What the handle is for still works: the tenant's own value, fresh."""
    assert "postgres://db1.prod/acme" == await walker(lambda self: self.db_url())
    assert (False, "postgres://db1.prod/acme") == await walker(
        lambda self: (self.db_url.stale, self.db_url.peek()))


async def test_no_other_tenants_value_through_the_handle(walker) -> None:
    """Every attribute the handle offers leads nowhere near globex's config."""

    def sweep(self):
        found = []
        for name in dir(self.db_url):
            try:
                value = getattr(self.db_url, name)
            except Exception:
                continue
            found.append(repr(value))
        return "\n".join(found)

    assert GLOBEX_SECTION["db_url"] not in await walker(sweep)
