"""Instance records, their states, and the dependency order they activate in.

Order comes from ``@component(depends=[...])`` (component names: a factory means all of its
instances, or an instance name) and ``@requires`` (contracts: the instances whose factory
provides it). A targeted consumer of a factory or contract depends on its own tenant's
instances of it when there are any (a tenant's quota needs its own tenant's database, not
every tenant's). Kahn's algorithm, stable in instantiation order, linear in instances + edges.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DependencyCycleError, DependencyError, choices
from .metadata import ComponentMeta
from .reactive import Scope

__all__ = ["ComponentInstance", "InstanceState", "activation_order", "dependencies_of"]


class InstanceState(enum.Enum):
    """Where an instance is in its life. ``FAILED`` keeps the error that put it there."""

    PENDING = "pending"  # instantiated, waiting for boot
    ACTIVATING = "activating"
    ACTIVE = "active"
    FAILED = "failed"
    DEACTIVATING = "deactivating"
    STOPPED = "stopped"  # after shutdown
    REMOVED = "removed"  # after hot_remove

    def __str__(self) -> str:
        return self.value


@dataclass(eq=False)
class ComponentInstance:
    """One named instance of a factory: the kernel's record, not the user object."""

    name: str
    meta: ComponentMeta
    properties: dict[str, Any]  # the kernel's private copy; the instance sees a frozen one
    state: InstanceState = InstanceState.PENDING
    error: BaseException | None = None
    obj: Any = None
    scope: Scope | None = None
    runtime: Any = None
    handlers: list[str] = field(default_factory=list)
    routes: list[tuple[str, str]] = field(default_factory=list)  # (routed name, target)
    depends_on: tuple[str, ...] = ()
    effect_errors: int = 0
    last_effect_error: str | None = None
    #: ``inline``, or the name of the ``IsolationHost`` that runs it elsewhere (``process``).
    isolation: str = "inline"
    pid: int | None = None  # the worker's, while one runs
    remote_graph: Any = None  # the worker's latest relayed GraphSnapshot
    #: Created by boot for a factory with no instance (named after it); retired when a
    #: tenant instance of the factory comes (``Kernel._placeholder_for``).
    default: bool = False

    @property
    def factory(self) -> str:
        return self.meta.factory_name

    target: str | None = field(init=False)  # fixed at instantiation, like the properties

    def __post_init__(self) -> None:
        target = self.properties.get("target")
        self.target = str(target) if target is not None else None

    def __repr__(self) -> str:
        """One line a REPL can echo: name, factory, target, state (the record holds much more).

        >>> kernel.instantiate("tenant-db", "tenant-db-acme", {"target": "acme"})
        <ComponentInstance tenant-db-acme (tenant-db, target acme): pending>
        """
        what = self.factory if self.target is None else f"{self.factory}, target {self.target}"
        state = str(self.state)
        if self.isolation != "inline":
            state += f", {self.isolation}" + (f" pid {self.pid}" if self.pid else "")
        if self.state is InstanceState.FAILED and self.error is not None:
            state += f" ({type(self.error).__name__})"
        return f"<ComponentInstance {self.name} ({what}): {state}>"


def dependencies_of(instance: ComponentInstance, by_factory: Mapping[str, Iterable[str]],
                    by_contract: Mapping[str, Iterable[str]],
                    instances: Mapping[str, ComponentInstance]) -> tuple[str, ...]:
    """Instance names ``instance`` needs active first; raises ``DependencyError`` if missing.

    Cost is proportional to the dependencies found, not to the number of instances (except
    when a dependency names a factory, which means all of its instances).
    """
    needed: dict[str, None] = {}
    target = instance.target
    for dep in instance.meta.depends:
        if dep in by_factory:
            members = list(by_factory[dep])
            if target is not None:
                own = [p for p in members if p in instances and instances[p].target == target]
                members = own or members
            needed.update(dict.fromkeys(members))
        elif dep in instances:
            needed[dep] = None
        else:
            raise DependencyError(
                f"{instance.name!r} depends on component {dep!r}, which was not discovered "
                f"or instantiated. {choices(dep, by_factory)}"
            )
    for attr, contract in instance.meta.requires.items():
        providers = [p for p in by_contract.get(contract, ()) if p != instance.name]
        if not providers:
            raise DependencyError(
                f"{instance.name!r} requires {contract!r} (for self.{attr}) but no component "
                f"provides it. {choices(contract, by_contract)}"
            )
        if target is not None:
            # A targeted consumer binds to its own tenant's provider when there is one.
            own = [p for p in providers if p in instances and instances[p].target == target]
            providers = own or providers
        needed.update(dict.fromkeys(providers))
    needed.pop(instance.name, None)
    return tuple(needed)


def activation_order(instances: dict[str, ComponentInstance]) -> list[str]:
    """Instance names so each comes after everything in its ``depends_on``.

    Raises ``DependencyCycleError`` naming one cycle.
    """
    indegree = dict.fromkeys(instances, 0)
    dependents: dict[str, list[str]] = {name: [] for name in instances}
    for name, inst in instances.items():
        for dep in inst.depends_on:
            if dep in instances:
                indegree[name] += 1
                dependents[dep].append(name)
    ready = deque(name for name, degree in indegree.items() if degree == 0)
    order: list[str] = []
    while ready:
        name = ready.popleft()
        order.append(name)
        for dependent in dependents[name]:
            indegree[dependent] -= 1
            if indegree[dependent] == 0:
                ready.append(dependent)
    if len(order) != len(instances):
        stuck = {name for name, degree in indegree.items() if degree > 0}
        raise DependencyCycleError(
            f"Dependency cycle: {' -> '.join(_find_cycle(instances, stuck))}; "
            "break it by removing one depends/requires."
        )
    return order


def _find_cycle(instances: dict[str, ComponentInstance], stuck: set[str]) -> list[str]:
    """Walk dependencies inside the stuck set until a name repeats (iteratively)."""
    start = min(stuck)
    path: list[str] = []
    position: dict[str, int] = {}
    current = start
    while current not in position:
        position[current] = len(path)
        path.append(current)
        current = next(d for d in instances[current].depends_on if d in stuck)
    return [*path[position[current]:], current]
