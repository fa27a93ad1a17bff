"""The bus table at 100 tenants: one row per handler, natural sort, filter, recent first, window."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from signalpy_lab.kernel import Kernel, component, provides, runnable
from signalpy_lab.lab.bus_rows import bus_view, merge_routes, natural_key
from signalpy_lab.lab.model import LabModel
from signalpy_lab.lab.widgets import BusTable
from signalpy_lab.providers import DEFAULT_PROVIDERS

TENANTS = [f"t{i}" for i in range(100)]


@component("postgres-db")
@provides("tenant-db")
class PostgresDatabase:
    """A tenant database reached as `postgres-db.query` and, by contract, `tenant-db.query`."""

    @runnable("query")
    async def query(self, params):
        return {"tenant": self.rt.target}


@pytest.fixture
async def hundred() -> AsyncIterator[tuple[Kernel, LabModel]]:
    """100 tenants, each served by one postgres-db instance (two routed names each)."""
    kernel = Kernel()
    kernel.discover([*DEFAULT_PROVIDERS, PostgresDatabase])
    for tenant in TENANTS:
        kernel.instantiate("postgres-db", f"postgres-db-{tenant}", {"target": tenant})
    await kernel.boot()
    model = LabModel(kernel)
    yield kernel, model
    model.close()
    await kernel.shutdown()


@pytest.fixture
def table(hundred) -> AsyncIterator[BusTable]:
    widget = BusTable(hundred[1])
    yield widget
    widget.close()


def test_natural_key_orders_digits_as_numbers() -> None:
    """t2 before t10; the text around the digits still counts."""
    assert sorted(["t10", "t2", "t1", "T3", "a10"], key=natural_key) == [
        "a10", "t1", "t2", "T3", "t10"]


def test_one_row_per_handler_lists_both_routed_names(table) -> None:
    """Factory and contract route to the same handler: one row naming both, factory first."""
    assert table.total == 100
    first = table.rows[0]
    assert first["routes"] == ["postgres-db.query", "tenant-db.query"]
    assert first["arrow"] == ("postgres-db.query[t0], tenant-db.query[t0] → "
                              "postgres-db-t0.query")
    assert first["key"] == "postgres-db-t0.query[t0]"


def test_rows_sort_naturally_and_by_any_column(table) -> None:
    """Default: by target, naturally; sorting by a column again reverses it."""
    assert [r["target"] for r in table.rows[:12]] == [f"t{i}" for i in range(12)]
    table.sort("target")
    assert [r["target"] for r in table.rows[:3]] == ["t99", "t98", "t97"]
    table.sort("instance")
    assert (table.sort_by, table.descending) == ("instance", False)
    assert table.rows[10]["instance"] == "postgres-db-t10"


async def test_sort_by_calls_puts_the_busiest_first_when_descending(hundred, table) -> None:
    """A numeric column sorts as numbers."""
    kernel, _model = hundred
    for tenant, times in (("t7", 3), ("t70", 1)):
        for _ in range(times):
            await kernel.bus.invoke("tenant-db.query", {"target": tenant})
    table.sort("calls", descending=True)
    assert [(r["target"], r["calls"]) for r in table.rows[:3]] == [
        ("t7", 3), ("t70", 1), ("t0", 0)]


def test_the_filter_matches_tenant_instance_or_runnable(table) -> None:
    """A word matches inside any of them; `tenant:t1` matches exactly; the rest is counted."""
    table.filter = "t1"
    assert [r["target"] for r in table.rows] == ["t1"] + [f"t{i}" for i in range(10, 20)]
    assert table.summary == "100 routes · 11 match 't1' · showing 11, 89 hidden (89 by the filter)"
    table.filter = "tenant:t1"
    assert [r["target"] for r in table.rows] == ["t1"]
    table.filter = "query t42"
    assert [r["instance"] for r in table.rows] == ["postgres-db-t42"]
    table.filter = "nobody"
    assert (table.rows, table.matched) == ([], 0)


async def test_most_recently_called_first(hundred, table) -> None:
    """The option puts called rows newest first; the others keep their natural order."""
    kernel, _model = hundred
    for tenant in ("t5", "t50", "t9"):
        await kernel.bus.invoke("postgres-db.query", {"target": tenant})
    table.recent_first = True
    table.flush()
    assert [r["target"] for r in table.rows[:5]] == ["t9", "t50", "t5", "t0", "t1"]


def test_a_window_says_how_many_rows_are_hidden(table) -> None:
    """At most `limit` rows reach the browser; the summary says what was cut and why."""
    table.limit = 25
    assert len(table.rows) == 25
    assert table.summary == ("100 routes · showing 25, 75 hidden (75 past the first 25: "
                             "narrow the filter)")
    table.limit = 200
    assert table.summary == "100 routes · all shown"


def test_an_unknown_sort_column_lists_the_valid_ones(table) -> None:
    """The error names the valid columns."""
    with pytest.raises(ValueError, match="Did you mean 'calls'"):
        table.sort("cals")


def test_bus_view_is_pure_data() -> None:
    """The model works on plain rows, without a kernel or a browser."""
    route = {"route": "tenant-db.query", "target": "t2", "handler": "db-t2.query",
             "instance": "db-t2", "factory": "db", "state": "active", "calls": 0,
             "errors": 0, "last_latency": None, "last_result": None, "last_error": None}
    rows = merge_routes([route, {**route, "target": "t10", "handler": "db-t10.query",
                                 "instance": "db-t10"}])
    assert [r["target"] for r in bus_view(rows).rows] == ["t2", "t10"]
