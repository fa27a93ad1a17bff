"""Decorators record metadata, checked at class definition, never shared with a parent."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from signalpy_lab.errors import ComponentDefinitionError
from signalpy_lab.kernel import component, computed, effect, lifecycle, provides, requires, runnable
from signalpy_lab.kernel.metadata import ComputedMethod, NoParams, meta_of


class Params(BaseModel):
    n: int = 1


@component("base", version="2.1", depends=["config"])
@provides("IBase")
@requires(config="IConfig")
class Base:
    @runnable("ping", params=Params, description="Answer a ping")
    async def ping(self, params):
        return params.n

    @computed
    def value(self):
        return 1

    @lifecycle.activate
    def start(self, rt):
        pass


def test_metadata_is_recorded() -> None:
    """The decorators' arguments end up in the class's ComponentMeta."""
    meta = meta_of(Base)
    assert (meta.factory_name, meta.version, meta.depends, meta.provides) == (
        "base", "2.1", ("config",), ("IBase",))
    assert meta.requires == {"config": "IConfig"}
    assert [(r.name, r.method, r.params, r.is_async, r.description) for r in meta.runnables] == [
        ("ping", "ping", Params, True, "Answer a ping")]
    assert (meta.computeds, meta.activate.takes_rt) == (("value",), True)


def test_decorating_a_subclass_does_not_change_the_parent() -> None:
    """A subclass gets its own copy of the metadata."""

    @component("derived")
    @provides("IDerived")
    class Derived(Base):
        @runnable("extra")
        async def extra(self, params):
            return None

    assert meta_of(Base).provides == ("IBase",)
    assert meta_of(Derived).provides == ("IBase", "IDerived")
    assert [r.name for r in meta_of(Base).runnables] == ["ping"]
    assert [r.name for r in meta_of(Derived).runnables] == ["extra", "ping"]


def test_an_undecorated_subclass_is_not_a_component() -> None:
    """Inheriting from a component does not make a new factory by accident."""

    class Plain(Base):
        pass

    assert meta_of(Plain) is None


def test_params_basemodel_means_no_params() -> None:
    """`params=BaseModel` (as in the seed) stands for a model with no fields."""

    @component("s")
    class S:
        @runnable("status", params=BaseModel)
        async def status(self, params):
            return None

    assert meta_of(S).runnables[0].params is NoParams


def test_computed_outside_a_kernel_is_still_a_cached_value() -> None:
    """Instances made by hand get a per-instance Computed on first access."""
    a, b = Base(), Base()
    assert isinstance(Base.__dict__["value"], ComputedMethod)
    assert a.value() == 1
    assert a.value is not b.value


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: runnable("q", params=dict), "params must be a pydantic model class, got <class"),
        (lambda: runnable("has space"), "runnable name must be a name"),
        (lambda: component("bad name"), "component name must be a name"),
        (lambda: component("x", depends="config"), "depends must be a list of component names"),
        (lambda: requires(config=42), "contract must be a name"),
    ],
)
def test_bad_decorator_arguments_fail_at_definition(make, message) -> None:
    """Mistakes are reported where they are made, naming the culprit."""
    with pytest.raises(ComponentDefinitionError, match=message):
        make()(lambda self, params: None)


def test_runnable_arity_is_checked() -> None:
    """A runnable takes (self, params)."""
    with pytest.raises(ComponentDefinitionError, match=r"a runnable takes \(self, params\)"):

        class C:
            @runnable("q")
            async def q(self):
                return None


def test_effect_and_lifecycle_arity_are_checked() -> None:
    """@effect takes only self; lifecycle hooks take (self) or (self, rt)."""
    def start(self, rt, extra):
        pass

    with pytest.raises(ComponentDefinitionError, match="an @effect takes only self"):
        effect(lambda self, extra: None)
    with pytest.raises(ComponentDefinitionError, match=r"takes \(self\) or \(self, rt\)"):
        lifecycle.activate(start)


def test_init_with_required_arguments_is_refused() -> None:
    """The kernel constructs instances, so __init__ must take no arguments."""
    with pytest.raises(ComponentDefinitionError, match="must be callable without arguments"):

        @component("needs-args")
        class NeedsArgs:
            def __init__(self, dsn):
                self.dsn = dsn
