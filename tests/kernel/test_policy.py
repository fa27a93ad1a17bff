"""Least privilege on the bus: a component calls its own handlers, what it declared, and what
a policy grants; the host is not restricted; the tenant rule stays on top.

    reporting ──depends──▶ billing          (declared by factory name)
    auditor   ──requires─▶ ILedger ◀─provides── billing   (declared by contract)
    snoop, snoop-acme (declare nothing) ──?──▶ billing.charge    refused unless granted
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from signalpy_lab.errors import (
    PolicyError,
    PublishDeniedError,
    TenantIsolationError,
    UndeclaredCallError,
)
from signalpy_lab.kernel import Kernel, Policy, component, provides, requires, runnable


@component("billing")
@provides("ILedger")
class Billing:
    @runnable("charge")
    def charge(self, params: Any) -> str:
        return "charged"

    @runnable("ping")
    async def ping(self, params: Any) -> str:
        return await self.rt.bus.invoke("billing.charge")  # its own handler: always allowed


def caller(name: str, **declares: Any) -> type:
    """A component class ``name`` that calls ``handler`` with ``params`` when invoked."""

    @component(name, depends=declares.get("depends", []))
    @requires(**declares.get("requires", {}))
    class Caller:
        @runnable("call")
        async def call(self, params: Any) -> Any:
            extra = dict(params.model_extra or {})
            return await self.rt.bus.invoke(extra.pop("handler"), extra)

        @runnable("publish")
        def publish(self, params: Any) -> int:
            return self.rt.bus.publish(params.model_extra["topic"])

    Caller.__qualname__ = f"Caller[{name}]"
    return Caller


@component("tenant-db")
class TenantDb:
    @runnable("query")
    def query(self, params: Any) -> str:
        return f"rows of {self.rt.target}"


@pytest.fixture
async def kernel():
    from pydantic import BaseModel, ConfigDict

    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    classes = [Billing, TenantDb,
               caller("reporting", depends=["billing"]),
               caller("auditor", requires={"ledger": "ILedger"}),
               caller("by-instance", depends=["billing"]),
               caller("snoop"),
               caller("tenant-snoop")]
    for cls in classes[2:]:  # every caller's runnables take any params
        meta = cls.__signalpy_meta__
        meta.runnables = tuple(type(r)(r.name, r.method, Open, r.description, r.is_async)
                               for r in meta.runnables)
    kernel = Kernel(policies={"reporting": {"publish_allow": ["reports.*"]}})
    kernel.discover(classes)
    kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
    kernel.instantiate("tenant-db", "tenant-db-globex", {"target": "globex"})
    kernel.instantiate("tenant-snoop", "snoop-acme", {"target": "acme"})
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def call_as(kernel: Kernel, who: str, handler: str, **params: Any) -> Any:
    return await kernel.bus.invoke(f"{who}.call", {"handler": handler, **params})


async def test_a_component_calls_its_own_handlers(kernel) -> None:
    assert "charged" == await kernel.bus.invoke("billing.ping")


async def test_a_dependency_named_by_factory_may_be_called(kernel) -> None:
    assert "charged" == await call_as(kernel, "reporting", "billing.charge")


async def test_a_dependency_named_by_contract_may_be_called(kernel) -> None:
    assert "charged" == await call_as(kernel, "auditor", "billing.charge")


async def test_an_undeclared_call_names_the_caller_the_handler_and_the_grant(kernel) -> None:
    with pytest.raises(UndeclaredCallError, match=re.escape(
            "Instance 'snoop' may not call 'billing.charge': it did not declare 'billing' in "
            "@component(depends=[...]) or @requires(...), and no policy grants it. Declare it, "
            "or grant it from the host: kernel.set_policy('snoop', "
            "invoke_allow=['billing.charge']).")):
        await call_as(kernel, "snoop", "billing.charge")


async def test_a_policy_grants_what_was_not_declared_at_once(kernel) -> None:
    kernel.set_policy("snoop", invoke_allow=["billing.*"])
    assert "charged" == await call_as(kernel, "snoop", "billing.charge")
    assert kernel.remove_policy("snoop")
    with pytest.raises(UndeclaredCallError):
        await call_as(kernel, "snoop", "billing.charge")


async def test_a_factory_policy_covers_its_instances_and_an_instance_policy_wins(kernel) -> None:
    kernel.set_policy("tenant-snoop", invoke_allow=["billing.charge"])
    assert "charged" == await call_as(kernel, "snoop-acme", "billing.charge")
    kernel.set_policy("snoop-acme", invoke_allow=["nothing.*"])
    with pytest.raises(UndeclaredCallError, match="Instance 'snoop-acme' may not call"):
        await call_as(kernel, "snoop-acme", "billing.charge")


async def test_no_policy_lets_a_tenant_reach_another_tenants_instance(kernel) -> None:
    """The tenant rule is checked first: a grant of everything still stops at globex."""
    kernel.set_policy("snoop-acme", invoke_allow=["*"])
    assert "rows of acme" == await call_as(kernel, "snoop-acme", "tenant-db.query",
                                           target="acme")
    with pytest.raises(TenantIsolationError, match="may not call 'tenant-db-globex.query'"):
        await call_as(kernel, "snoop-acme", "tenant-db.query", target="globex")


async def test_the_host_is_not_restricted(kernel) -> None:
    assert "charged" == await kernel.bus.invoke("billing.charge")
    assert "rows of globex" == await kernel.invoke("tenant-db.query", {"target": "globex"})


async def test_publish_allow_limits_topics(kernel) -> None:
    """`reporting` got its policy from `Kernel(policies=...)`: reports.* only."""
    assert 0 == await kernel.bus.invoke("reporting.publish", {"topic": "reports.daily"})
    with pytest.raises(PublishDeniedError, match=re.escape(
            "Instance 'reporting' may not publish 'payments.refund': its policy allows "
            "'reports.*'.")):
        await kernel.bus.invoke("reporting.publish", {"topic": "payments.refund"})
    assert 0 == await kernel.bus.invoke("snoop.publish", {"topic": "payments.refund"})


async def test_policies_are_visible_in_introspection(kernel) -> None:
    kernel.set_policy("tenant-snoop", invoke_allow=["billing.charge"])
    info = {i.name: i for i in kernel.instances()}
    assert {"invoke_allow": ["billing.charge"], "publish_allow": ["*"],
            "audit": False} == info["snoop-acme"].policy
    assert None is info["billing"].policy
    assert ("ILedger",) == info["auditor"].declared
    assert Policy(invoke_allow=("billing.charge",)) == kernel.policy_for("snoop-acme")


async def test_audit_logs_every_call_decision(kernel, caplog) -> None:
    kernel.set_policy("snoop", invoke_allow=["billing.charge"], audit=True)
    with caplog.at_level(logging.INFO, logger="signalpy_lab.audit"):
        await call_as(kernel, "snoop", "billing.charge")
    assert ['{"action": "invoke", "caller": \'snoop\', "handler": \'billing.charge\', '
            '"allowed": true}'] == [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    (("snoop",), {}, "set_policy('snoop') needs invoke_allow=[...]"),
    (("snoop", {"invoke": ["x"]}), {}, "Unknown policy field 'invoke'; valid fields"),
    (("snoop",), {"invoke_allow": "billing.*"}, "is a list of glob patterns like"),
    (("snoop", {"audit": True}), {"audit": True}, "either a policy or keyword fields"),
    (("no such name!",), {"audit": True}, "set for a component name like 'reporting'"),
])
def test_bad_policies_are_one_line_errors(args, kwargs, message) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        Kernel().set_policy(*args, **kwargs)
