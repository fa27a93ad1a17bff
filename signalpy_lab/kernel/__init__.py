"""The reactive component microkernel: reactivity, components, registry, bus, runtime.

Importing this package never imports IPython, ipywidgets or the providers. ``ENGINE`` says
which build of the reactive engine runs: ``"compiled"`` (``graph.py`` compiled with Cython at
install time) or ``"pure"`` (``graph.py`` as Python); see ``_engine.py``.
"""

# First: it decides which build is ``signalpy_lab.kernel.graph`` for every module after it.
from ._engine import ENGINE  # isort: skip

from ..errors import (
    CycleError,
    DependencyError,
    DisposedError,
    InvalidParamsError,
    RouteConflictError,
    RoutingError,
    SignalpyLabError,
    TenantIsolationError,
    UnknownHandlerError,
    UnknownTargetError,
)
from .bus import Bus, BusEvent, Handler, InProcessTransport, ScopedBus, Transport
from .events import (
    Cause,
    ComputedRecomputed,
    ComputedVerified,
    EdgeChanged,
    EffectRun,
    Event,
    EventHub,
    HandlerInvoked,
    InstanceAdded,
    InstanceRemoved,
    InstanceStateChanged,
    PolicyChanged,
    SignalSet,
    TransportStateChanged,
    UnreadWrite,
    caused_by,
)
from .graph import graph_stats
from .introspection import (
    FactoryInfo,
    GraphEdge,
    GraphNode,
    GraphSnapshot,
    InstanceInfo,
    RouteInfo,
    TransportInfo,
)
from .kernel import Kernel, KernelState
from .lifecycle import ComponentInstance, InstanceState
from .metadata import (
    component,
    computed,
    effect,
    lifecycle,
    provides,
    requires,
    runnable,
    subscribe,
)
from .policy import Policy
from .reactive import Computed, Effect, Scope, Signal, batch, untracked
from .registry import Consumer, Registry
from .runtime import Runtime

__all__ = [
    "ENGINE",
    "Bus",
    "BusEvent",
    "Cause",
    "ComponentInstance",
    "Computed",
    "ComputedRecomputed",
    "ComputedVerified",
    "Consumer",
    "CycleError",
    "DependencyError",
    "DisposedError",
    "EdgeChanged",
    "Effect",
    "EffectRun",
    "Event",
    "EventHub",
    "FactoryInfo",
    "GraphEdge",
    "GraphNode",
    "GraphSnapshot",
    "Handler",
    "HandlerInvoked",
    "InProcessTransport",
    "InstanceAdded",
    "InstanceInfo",
    "InstanceRemoved",
    "InstanceState",
    "InstanceStateChanged",
    "InvalidParamsError",
    "Kernel",
    "KernelState",
    "Policy",
    "PolicyChanged",
    "Registry",
    "RouteConflictError",
    "RouteInfo",
    "RoutingError",
    "Runtime",
    "Scope",
    "ScopedBus",
    "Signal",
    "SignalSet",
    "SignalpyLabError",
    "TenantIsolationError",
    "Transport",
    "TransportInfo",
    "TransportStateChanged",
    "UnknownHandlerError",
    "UnknownTargetError",
    "UnreadWrite",
    "batch",
    "caused_by",
    "component",
    "computed",
    "effect",
    "graph_stats",
    "lifecycle",
    "provides",
    "requires",
    "runnable",
    "subscribe",
    "untracked",
]
