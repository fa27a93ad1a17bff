"""``Record``: the kernel's immutable, named, one-call records (its events and causes)."""

from __future__ import annotations

import copy
import inspect
import pickle
import time
from dataclasses import field

import pytest

from signalpy_lab.kernel.events import Cause, ComputedRecomputed, HandlerInvoked, SignalSet
from signalpy_lab.kernel.record import Record


class Point(Record, kw_only=False):
    x: int
    y: int


class Stamped(Record):
    kind: str = "stamped"
    ts: float = field(default_factory=time.time)
    name: str


class Renamed(Stamped):
    kind: str = "renamed"
    old: str


def test_fields_come_from_annotations_in_order_and_subclasses_extend_them() -> None:
    assert Point._fields == ("x", "y")
    assert Stamped._fields == ("kind", "ts", "name")
    assert Renamed._fields == ("kind", "ts", "name", "old")


def test_keyword_construction_takes_defaults_and_calls_factories() -> None:
    before = time.time()
    record = Renamed(name="db", old="cache")
    assert (record.kind, record.name, record.old) == ("renamed", "db", "cache")
    assert before <= record.ts <= time.time()
    assert Renamed(name="db", old="c", ts=1.0).ts == 1.0
    assert str(inspect.signature(Renamed)) == "(*, name, old, kind='renamed', ts=<factory>)"


def test_a_missing_or_unknown_field_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="old"):
        Renamed(name="db")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="colour"):
        Point(1, 2, colour="red")  # type: ignore[call-arg]


def test_kw_only_false_makes_fields_positional() -> None:
    assert Point(1, 2) == Point(x=1, y=2)
    assert Point(1, 2).x == 1


def test_records_are_immutable_and_say_how_to_change_one() -> None:
    point = Point(1, 2)
    with pytest.raises(AttributeError, match=r"Point is immutable: cannot set 'x'.*replace"):
        point.x = 3  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        point.z = 3  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        del point.x
    moved = point.replace(x=3)
    assert (point, moved) == (Point(1, 2), Point(3, 2))
    with pytest.raises(TypeError, match="no field 'z'; its fields are x, y"):
        point.replace(z=1)


def test_equal_only_to_records_of_the_same_class() -> None:
    class Other(Record, kw_only=False):
        x: int
        y: int

    assert Point(1, 2) == Point(1, 2)
    assert Point(1, 2) != Other(1, 2)
    assert Point(1, 2) != (1, 2)
    assert hash(Point(1, 2)) == hash(Point(1, 2))
    assert len({Point(1, 2), Point(1, 2), Point(2, 1)}) == 2


def test_repr_pickle_copy_and_to_dict() -> None:
    cause = Cause(1, 7, "tenants.acme.db_url", "%config set", "'a'", "'b'")
    event = SignalSet(node_id=7, label="tenants.acme.db_url", instance="config",
                      tenant="acme", cause=cause, ts=5.0)
    assert repr(cause) == ("Cause(id=1, signal_id=7, signal='tenants.acme.db_url', "
                           "command='%config set', old=\"'a'\", new=\"'b'\")")
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.deepcopy(event) == event
    assert event.to_dict() == {
        "kind": "signal.set", "ts": 5.0, "node_id": 7, "label": "tenants.acme.db_url",
        "instance": "config", "tenant": "acme",
        "cause": {"id": 1, "signal_id": 7, "signal": "tenants.acme.db_url",
                  "command": "%config set", "old": "'a'", "new": "'b'"},
        "stale": (), "stale_labels": ()}


def test_match_by_field_name() -> None:
    match Point(1, 2):
        case Point(x=1, y=y):
            assert y == 2
        case _:
            pytest.fail("a Point(1, 2) did not match Point(x=1, y=...)")


def test_make_is_the_positional_constructor_of_the_hot_paths() -> None:
    """The engine and the bus build events with ``_make``: the same record as by keyword."""
    made = ComputedRecomputed._make(3, "db_url", "tenant-db-acme", "acme", 0.5, True,
                                    "'x'", None, None)
    by_name = ComputedRecomputed(node_id=3, label="db_url", instance="tenant-db-acme",
                                 tenant="acme", duration=0.5, changed=True, value="'x'",
                                 error=None, cause=None, ts=made.ts)
    assert made == by_name
    invoked = HandlerInvoked._make("a.b", "a.b", "exact", "a", None, 0.1, None, "1",
                                   command="%invoke a.b")
    assert (invoked.kind, invoked.command, invoked.result) == ("handler.invoked",
                                                               "%invoke a.b", "1")
    assert HandlerInvoked._make("a.b", "a.b", "exact", "a", None, 0.1, None, "1").command is None


def test_a_positional_field_after_a_defaulted_one_is_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="positional field without a default follows"):
        class Bad(Record, kw_only=False):
            x: int = 0
            y: int
