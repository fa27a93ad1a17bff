"""The bus: exact names first, then factory/contract + target, then transports."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel, ConfigDict, Field

from signalpy_lab.errors import (
    InvalidParamsError,
    InvokeTimeoutError,
    RouteConflictError,
    UnknownHandlerError,
    UnknownTargetError,
)
from signalpy_lab.kernel import (
    InProcessTransport,
    Kernel,
    component,
    lifecycle,
    provides,
    runnable,
    subscribe,
)


class Query(BaseModel):
    table: str = "users"
    limit: int = Field(10, ge=1)


@component("postgres-db")
@provides("tenant-db")
class PostgresDB:
    @runnable("query", params=Query)
    async def query(self, params):
        return {"engine": "postgres", "tenant": self.rt.target, "instance": self.rt.name}


@component("mysql-db")
@provides("tenant-db")
class MySQLDB:
    @runnable("query", params=Query)
    def query(self, params):  # a sync runnable works too
        return {"engine": "mysql", "tenant": self.rt.target, "instance": self.rt.name}


class StrictQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    table: str = "users"


@component("strict-db")
class StrictDB:
    @runnable("query", params=StrictQuery)
    def query(self, params):
        return {"tenant": self.rt.target, "table": params.table}


class Sleep(BaseModel):
    seconds: float


@component("sleepy")
class Sleepy:
    @runnable("nap", params=Sleep)
    async def nap(self, params):
        await asyncio.sleep(params.seconds)
        return "rested"

    @runnable("fail")
    async def fail(self, params):
        raise ValueError("handler exploded")


@pytest.fixture
async def kernel():
    kernel = Kernel()
    kernel.discover([PostgresDB, MySQLDB, Sleepy, StrictDB])
    kernel.instantiate("postgres-db", "tenant-db-acme", {"target": "acme"})
    kernel.instantiate("mysql-db", "tenant-db-globex", {"target": "globex"})
    kernel.instantiate("strict-db", "strict-db-acme", {"target": "acme"})
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


async def test_one_routed_name_reaches_tenants_served_by_different_factories(kernel) -> None:
    """`tenant-db.query` + target reaches postgres for acme and mysql for globex."""
    acme = await kernel.bus.invoke("tenant-db.query", {"target": "acme"})
    globex = await kernel.bus.invoke("tenant-db.query", {"target": "globex"})
    assert acme == {"engine": "postgres", "tenant": "acme", "instance": "tenant-db-acme"}
    assert globex == {"engine": "mysql", "tenant": "globex", "instance": "tenant-db-globex"}


async def test_factory_routed_names_work_too(kernel) -> None:
    """`mysql-db.query` + globex also resolves; `mysql-db.query` + acme does not."""
    r = await kernel.invoke("mysql-db.query", {"target": "globex"})
    assert r["engine"] == "mysql"
    with pytest.raises(UnknownTargetError, match="Known targets: 'globex'"):
        await kernel.invoke("mysql-db.query", {"target": "acme"})


async def test_exact_names_win_over_routes(kernel) -> None:
    """A direct instance call needs no target."""
    r = await kernel.invoke("tenant-db-acme.query", {"table": "orders"})
    assert r["instance"] == "tenant-db-acme"


async def test_routes_table_lists_each_target(kernel) -> None:
    """routes() shows route[target] -> handler with factory and state."""
    rows = {(r.route, r.target): (r.handler, r.factory, r.state) for r in kernel.routes()}
    assert rows[("tenant-db.query", "acme")] == ("tenant-db-acme.query", "postgres-db", "active")
    assert rows[("tenant-db.query", "globex")] == ("tenant-db-globex.query", "mysql-db",
                                                   "active")


async def test_contract_route_conflict_across_factories_is_refused(kernel) -> None:
    """mysql-db for acme would take `tenant-db.query[acme]` from postgres: refused."""
    with pytest.raises(RouteConflictError, match="already served by instance 'tenant-db-acme'"):
        kernel.instantiate("mysql-db", "acme-mysql", {"target": "acme"})


async def test_unknown_handler_suggests_closest_names(kernel) -> None:
    """A typo gets 'Did you mean'."""
    with pytest.raises(UnknownHandlerError, match="Did you mean 'tenant-db.query'"):
        await kernel.invoke("tenant-db.qeury", {"target": "acme"})


async def test_unknown_target_lists_known_targets(kernel) -> None:
    """A routed call to a tenant nobody serves lists the ones that exist."""
    with pytest.raises(UnknownTargetError,
                       match="for target 'initech'. Known targets: 'acme', 'globex'"):
        await kernel.invoke("tenant-db.query", {"target": "initech"})


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target": "acme", "limit": "many"}, "limit: Input should be a valid integer"),
        ({"target": "acme", "limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"target": "acme", "table": None}, "table: Input should be a valid string"),
    ],
)
async def test_invalid_params_name_the_field_and_problem(kernel, params, message) -> None:
    """Pydantic failures become one line naming field and problem."""
    with pytest.raises(InvalidParamsError, match=message) as info:
        await kernel.invoke("tenant-db.query", params)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("tenant-db-acme.query: invalid params:")


async def test_undeclared_params_are_the_models_business(kernel) -> None:
    """A default model ignores an undeclared key (as pydantic and the original do); the bus
    itself refuses nothing (the lab's %invoke does, see tests/lab/test_suggest.py)."""
    r = await kernel.invoke("tenant-db.query", {"target": "acme", "tabel": "orders"})
    assert r["tenant"] == "acme"


async def test_a_model_forbidding_extras_still_takes_target_and_suggests_the_field(
        kernel) -> None:
    """`extra="forbid"` refuses `tabel` naming `table`, yet a routed call's `target` routes."""
    assert await kernel.invoke("strict-db.query", {"target": "acme", "table": "orders"}) == \
        {"tenant": "acme", "table": "orders"}
    with pytest.raises(InvalidParamsError, match=r"strict-db-acme.query: invalid params: "
                       r"tabel: Extra inputs are not permitted \(got 'orders'; did you mean "
                       r"'table'\?\)$"):
        await kernel.invoke("strict-db.query", {"target": "acme", "tabel": "orders"})


async def test_params_must_be_a_mapping(kernel) -> None:
    """A list is not params."""
    with pytest.raises(InvalidParamsError, match="params must be a mapping"):
        await kernel.invoke("tenant-db-acme.query", ["users"])


async def test_handler_errors_reach_the_caller_and_are_counted(kernel) -> None:
    """The handler's own exception propagates; the handler's error count goes up."""
    with pytest.raises(ValueError, match="handler exploded"):
        await kernel.invoke("sleepy.fail")
    handler = kernel.bus.handler("sleepy.fail")
    assert (handler.calls, handler.errors) == (1, 1)
    assert await kernel.invoke("sleepy.nap", {"seconds": 0}) == "rested"


async def test_timeout_cancels_a_hung_handler_without_blocking_others(kernel) -> None:
    """A 10 s nap with a 50 ms timeout fails clearly; a concurrent call still succeeds."""
    slow = asyncio.create_task(kernel.invoke("sleepy.nap", {"seconds": 10}, timeout=0.05))
    fast = await kernel.invoke("tenant-db.query", {"target": "acme"})
    with pytest.raises(InvokeTimeoutError, match=r"sleepy.nap did not finish within 0.05s"):
        await slow
    assert fast["tenant"] == "acme"


async def test_transport_fall_through_to_a_second_kernel(kernel) -> None:
    """Names unknown here go to transports in order; a real second kernel answers."""
    remote = Kernel("remote")

    @component("billing")
    class Billing:
        @runnable("invoice")
        async def invoice(self, params):
            return "invoiced remotely"

    remote.discover([Billing, MySQLDB])
    remote.instantiate("mysql-db", "remote-initech", {"target": "initech"})
    await remote.boot()
    kernel.bus.add_transport(InProcessTransport(remote))

    assert await kernel.invoke("billing.invoice") == "invoiced remotely"
    r = await kernel.invoke("tenant-db.query", {"target": "initech"})
    assert r == {"engine": "mysql", "tenant": "initech", "instance": "remote-initech"}
    local = await kernel.invoke("tenant-db.query", {"target": "acme"})
    assert local["instance"] == "tenant-db-acme"  # local routes still come first
    with pytest.raises(UnknownHandlerError, match="Did you mean 'billing.invoice'"):
        await kernel.invoke("billing.invoise")
    await remote.shutdown()


class TestOnlyTheTargetsInstanceAnswers:
    """A call naming a target of a routed name is answered by that target's instance only.

        caller ── tenant-db.query {target: T} ──▶ route[T] here ─▶ transports ─▶ UnknownTargetError
                                                   ✗ the default instance `tenant-db` (untargeted)
    """

    @staticmethod
    def tenant_db():
        @component("tenant-db")
        class TenantDb:
            @runnable("query", params=Query)
            def query(self, params):
                return {"tenant": self.rt.target, "instance": self.rt.name}

        @component("admin", depends=["tenant-db"])
        class Admin:  # depends on the factory by name: keeps its default instance
            pass

        return TenantDb, Admin

    async def test_a_default_instance_answers_untargeted_calls_only(self) -> None:
        """No tenant anywhere: the default answers `tenant-db.query`, a target is refused."""
        kernel = Kernel()
        kernel.discover([self.tenant_db()[0]])
        await kernel.boot()
        assert {"tenant": None, "instance": "tenant-db"} == await kernel.invoke(
            "tenant-db.query")
        with pytest.raises(UnknownTargetError, match=r"^No instance serves 'tenant-db.query' "
                                                     r"for target 'a0'. Known targets: none.$"):
            await kernel.invoke("tenant-db.query", {"target": "a0"})
        await kernel.shutdown()

    async def test_a_kept_default_never_answers_an_unknown_target(self) -> None:
        """The default stays (admin needs it) beside acme: `nobody` is refused naming acme."""
        kernel = Kernel()
        kernel.discover(self.tenant_db())
        await kernel.boot()
        kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
        assert "tenant-db" in {i.name for i in kernel.instances()}  # kept: admin depends on it
        assert "tenant-db-acme" == (await kernel.invoke(
            "tenant-db.query", {"target": "acme"}))["instance"]
        with pytest.raises(UnknownTargetError, match="for target 'nobody'. Known targets: "
                                                     "'acme'.$"):
            await kernel.invoke("tenant-db.query", {"target": "nobody"})
        await kernel.shutdown()

    async def test_another_kernels_tenant_answers_not_the_local_default(self) -> None:
        """B has the factory and no tenants; a0 and a1 live on A: A's instances answer, and a
        target nobody serves is refused naming A's targets."""
        a, b = Kernel("a"), Kernel("b")
        a.discover([self.tenant_db()[0]])
        for tenant in ("a0", "a1"):
            a.instantiate("tenant-db", f"tenant-db-{tenant}", {"target": tenant})
        b.discover([self.tenant_db()[0]])
        await a.boot()
        await b.boot()
        b.bus.add_transport(InProcessTransport(a))
        assert [{"tenant": t, "instance": f"tenant-db-{t}"} for t in ("a0", "a1")] == [
            await b.invoke("tenant-db.query", {"target": t}) for t in ("a0", "a1")]
        with pytest.raises(UnknownTargetError, match="for target 'zz'. Known targets: 'a0', "
                                                     "'a1'.$"):
            await b.invoke("tenant-db.query", {"target": "zz"})
        assert "tenant-db" == (await b.invoke("tenant-db.query"))["instance"]
        await b.shutdown()
        await a.shutdown()

    async def test_known_targets_are_capped_in_the_message(self) -> None:
        """Fifteen tenants: the error names twelve and counts the rest, on one line."""
        kernel = Kernel()
        kernel.discover([self.tenant_db()[0]])
        for n in range(15):
            kernel.instantiate("tenant-db", f"tenant-db-t{n:02}", {"target": f"t{n:02}"})
        await kernel.boot()
        with pytest.raises(UnknownTargetError, match=r"Known targets: 't00', .*, 't11', \.\.\. "
                                                     r"\(3 more\).$"):
            await kernel.invoke("tenant-db.query", {"target": "zz"})
        await kernel.shutdown()


async def test_register_target_route_exists_as_in_the_seed(kernel) -> None:
    """The seed's bus.register_target_route maps a routed name to an instance handler."""
    kernel.bus.register_target_route("db.query", "acme", "tenant-db-acme.query")
    r = await kernel.bus.invoke("db.query", {"target": "acme"})
    assert r["instance"] == "tenant-db-acme"
    with pytest.raises(RouteConflictError, match="no silent takeover"):
        kernel.bus.register_target_route("db.query", "acme", "tenant-db-globex.query")


async def test_published_events_reach_own_tenant_and_untargeted_subscribers() -> None:
    """Events carry a kernel-set source; tenant subscribers see only their tenant's."""
    received: list[tuple[str, str, str | None]] = []

    @component("listener")
    class Listener:
        @subscribe("orders.*")
        def on_order(self, event):
            received.append((self.rt.name, event.topic, event.source))

    @component("publisher")
    class Publisher:
        @lifecycle.activate
        def start(self):
            self.rt.bus.publish("orders.created", {"id": 1})

    kernel = Kernel()
    kernel.discover([Listener, Publisher])
    kernel.instantiate("listener", "listener-acme", {"target": "acme"})
    kernel.instantiate("listener", "listener-globex", {"target": "globex"})
    kernel.instantiate("listener", "listener-admin")
    kernel.instantiate("publisher", "publisher-acme", {"target": "acme"})
    await kernel.boot()
    assert sorted(received) == [
        ("listener-acme", "orders.created", "publisher-acme"),
        ("listener-admin", "orders.created", "publisher-acme"),
    ]
