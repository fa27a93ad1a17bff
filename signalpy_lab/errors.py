"""Every error signalpy_lab raises on purpose.

One base class, and each error also inherits the builtin that fits, so callers can catch
``LookupError`` or ``ValueError`` without knowing about us. Messages are one line: what was
expected, what was given, and the valid choices (closest first).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AccessDeniedError",
    "AmbiguousServiceError",
    "ComponentDefinitionError",
    "ConfigBackendError",
    "ConfigConflictError",
    "ConfigKeyError",
    "ConfigValidationError",
    "DbUrlError",
    "CycleError",
    "DependencyCycleError",
    "DependencyError",
    "DisposedError",
    "DuplicateInstanceError",
    "EffectLoopError",
    "ExportFormatError",
    "GraphvizNotFoundError",
    "HostOwnedKeyError",
    "InvalidNameError",
    "InvalidPropertiesError",
    "InvalidParamsError",
    "InvokeTimeoutError",
    "KernelStateError",
    "LayoutError",
    "MissingExtraError",
    "PolicyError",
    "PublishDeniedError",
    "QuotaExceededError",
    "RemoteError",
    "ReservedContractError",
    "RouteConflictError",
    "RoutingError",
    "SandboxError",
    "ServiceNotFoundError",
    "SignalpyLabError",
    "StaleConfigError",
    "StorageKeyError",
    "TenantIsolationError",
    "TransportError",
    "UndeclaredCallError",
    "UnknownFactoryError",
    "UnknownHandlerError",
    "UnknownInstanceError",
    "UnknownTargetError",
    "WireFormatError",
    "WorkerError",
    "choices",
]


def choices(given: str, options: Iterable[str], *, limit: int = 8, noun: str = "names",
            quoted: bool = True) -> str:
    """Describe valid ``options`` for an error message, closest matches to ``given`` first.

    >>> choices("tenant-db.qeury", ["tenant-db.query", "tenant-db.status"])
    "Did you mean 'tenant-db.query'? Valid names: 'tenant-db.query', 'tenant-db.status'."
    >>> choices("--txt", ["--text", "--tenant"], noun="flags", quoted=False)
    'Did you mean --text or --tenant? Valid flags: --tenant, --text.'
    """
    names = sorted(set(options))
    if not names:
        return "There are none."
    show = repr if quoted else str
    close = difflib.get_close_matches(given, names, n=3, cutoff=0.6)
    shown = ", ".join(show(n) for n in names[:limit])
    if len(names) > limit:
        shown += f", ... ({len(names) - limit} more)"
    hint = f"Did you mean {' or '.join(show(c) for c in close)}? " if close else ""
    return f"{hint}Valid {noun}: {shown}."


class SignalpyLabError(Exception):
    """Base class of every error raised by signalpy_lab on purpose."""


class MissingExtraError(SignalpyLabError, ImportError):
    """A module needs an optional extra that is not installed (the message names the extra)."""


# --- reactive engine ------------------------------------------------------------------


class CycleError(SignalpyLabError, RuntimeError):
    """A computed read itself, directly or through a chain of other computeds."""


class DisposedError(SignalpyLabError, RuntimeError):
    """A computed or effect was used after its owner (usually an instance) was disposed."""


class EffectLoopError(SignalpyLabError, RuntimeError):
    """Effects kept re-triggering each other past the flush limit."""


# --- components and kernel ----------------------------------------------------------


class ComponentDefinitionError(SignalpyLabError, TypeError):
    """A decorator was applied to something it cannot describe (checked at class definition)."""


class KernelStateError(SignalpyLabError, RuntimeError):
    """The kernel is not in a state where this operation makes sense (e.g. boot twice)."""


class InvalidNameError(SignalpyLabError, ValueError):
    """An instance, target or handler name is not a plain name like ``'tenant-db-acme'``."""


class InvalidPropertiesError(SignalpyLabError, TypeError):
    """Instance properties are not a string-keyed mapping (or carry a malformed target)."""


class UnknownFactoryError(SignalpyLabError, LookupError):
    """No discovered component factory has this name."""


class UnknownInstanceError(SignalpyLabError, LookupError):
    """No instance has this name."""


class DuplicateInstanceError(SignalpyLabError, ValueError):
    """An instance with this name already exists."""


class DependencyError(SignalpyLabError, LookupError):
    """An instance depends on a component or contract nobody provides."""


class DependencyCycleError(DependencyError):
    """Instances depend on each other in a cycle, so no activation order exists."""


class ServiceNotFoundError(SignalpyLabError, LookupError):
    """No active instance provides the requested contract."""


class AmbiguousServiceError(SignalpyLabError, LookupError):
    """Several instances provide the contract and the request did not say which one."""


# --- bus ------------------------------------------------------------------------------


class RoutingError(SignalpyLabError, LookupError):
    """The bus could not find where to deliver a call."""


class UnknownHandlerError(RoutingError):
    """No exact handler, target route or transport knows this handler name."""


class UnknownTargetError(RoutingError):
    """A routed call named a target that no instance serves (or named none)."""


class RouteConflictError(SignalpyLabError, ValueError):
    """A second instance tried to take a (route, target) pair another instance already serves."""


class InvalidParamsError(SignalpyLabError, ValueError):
    """Call parameters failed the handler's pydantic model."""


class InvokeTimeoutError(SignalpyLabError, TimeoutError):
    """A handler did not finish within the ``timeout`` given to ``invoke``."""


# --- beyond one process ---------------------------------------------------------------


class TransportError(SignalpyLabError, ConnectionError):
    """A remote call could not be delivered: not connected, or nobody answers its subject."""


class ConfigBackendError(SignalpyLabError, ConnectionError):
    """The shared config's bucket cannot take a write now (its server is unreachable), or
    a kernel could not catch up with it in time; reads keep the last known values."""


class ConfigConflictError(SignalpyLabError, ValueError):
    """A compare-and-set config write found another revision of the key than expected."""


class RemoteError(SignalpyLabError, RuntimeError):
    """A remote handler raised an error type this side does not know (its name is kept)."""


class WireFormatError(SignalpyLabError, ValueError):
    """A message on the wire is not v1 JSON, or a value cannot be sent as JSON."""


class WorkerError(SignalpyLabError, RuntimeError):
    """A process-isolated instance's worker failed to start, died, or cannot be restarted."""


class StaleConfigError(WorkerError):
    """A worker could not bring its config view to the revision a call was made at, so it did
    not run the handler rather than answer with config older than the caller's writes."""


class SandboxError(SignalpyLabError, RuntimeError):
    """A worker's confinement was described wrongly or could not be applied as described."""


# --- providers and isolation -----------------------------------------------------------


class ConfigKeyError(SignalpyLabError, ValueError):
    """A config key was not a non-empty dotted string like ``'tenants.acme.db_url'``."""


class DbUrlError(SignalpyLabError, ValueError):
    """A tenant's ``db_url`` is not a ``sqlite:///`` file inside its own storage prefix."""


class QuotaExceededError(SignalpyLabError, RuntimeError):
    """A tenant called more often than its quota allows; ``retry_after`` says when to retry."""

    def __init__(self, message: str, *, tenant: str | None = None, limit: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.tenant, self.limit, self.retry_after = tenant, limit, retry_after


class StorageKeyError(SignalpyLabError, ValueError):
    """A storage key was not a relative path inside the instance's own prefix."""


class ConfigValidationError(SignalpyLabError, ValueError):
    """A config section failed the pydantic model given to ``get_typed`` (names the key)."""


class AccessDeniedError(SignalpyLabError, PermissionError):
    """A component reached for something that is not its own and was not granted to it."""


class TenantIsolationError(AccessDeniedError):
    """An instance reached for another tenant's data or another component's ``apps`` section."""


class ReservedContractError(AccessDeniedError):
    """A tenant instance would provide a contract only untargeted instances may: the kernel's
    own (``IConfig``, ``IStorage``, ...) or one an untargeted component provides."""


class HostOwnedKeyError(TenantIsolationError):
    """A tenant instance wrote a key in its own section that the host owns (its quota)."""


class UndeclaredCallError(AccessDeniedError):
    """A component called a handler it neither declared (depends, @requires) nor was granted."""


class PublishDeniedError(AccessDeniedError):
    """A component published a topic its policy's ``publish_allow`` does not match."""


class PolicyError(SignalpyLabError, ValueError):
    """A policy given to ``set_policy`` or ``Kernel(policies=...)`` is malformed."""


# --- the lab ----------------------------------------------------------------------------


class GraphvizNotFoundError(SignalpyLabError, RuntimeError):
    """Neither ``dot`` nor ``graphviz-pure`` could be found to lay out a graph."""


class LayoutError(SignalpyLabError, RuntimeError):
    """The layout binary rejected the DOT text or failed."""


class ExportFormatError(SignalpyLabError, ValueError):
    """``export()`` was asked for a format it does not produce."""
