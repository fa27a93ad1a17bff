"""Policies: what the host grants a component beyond what it declared.

Least privilege, the way OSGi service permissions and capability designs do it: through its
``rt.bus`` a component may call its own handlers and those of the components it declared
(``@component(depends=[...])`` and ``@requires(...)``, by factory, contract or instance name);
anything else needs a grant from the host:

    kernel.set_policy("reporting", invoke_allow=["billing.*"])   # also Kernel(policies={...})
    kernel.set_policy("tenant-db", publish_allow=["tenant.*"])    # default: publish anything

A policy is looked up by instance name, then by factory name (so one policy covers every
tenant instance of a factory); the first found applies whole. Globs use ``fnmatch`` rules
and are matched against both the name the caller asked for (``billing.charge``) and the
handler it resolved to (``billing-eu.charge``). The tenant rule stays on top: no policy lets
an instance call another tenant's instance. Policies are the host's: no component handle
leads to ``set_policy``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PolicyError

__all__ = ["Policy"]

_FIELDS = ("invoke_allow", "publish_allow", "audit")


def _globs(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise PolicyError(f"A policy's {field} is a list of glob patterns like ['billing.*'], "
                          f"got {value!r}.")
    globs = tuple(value)
    bad = [g for g in globs if not isinstance(g, str) or not g]
    if bad:
        raise PolicyError(f"A policy's {field} holds non-empty strings like 'billing.*', "
                          f"got {bad[0]!r}.")
    return globs


@dataclass(frozen=True)
class Policy:
    """What one component (or every instance of one factory) is granted."""

    #: Handler names (globs) it may call beyond its own and what it declared.
    invoke_allow: tuple[str, ...] = ()
    #: Topics (globs) it may publish; everything by default.
    publish_allow: tuple[str, ...] = ("*",)
    #: Log every call and publish it makes (logger ``signalpy_lab.audit``).
    audit: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "invoke_allow", _globs("invoke_allow", self.invoke_allow))
        object.__setattr__(self, "publish_allow", _globs("publish_allow", self.publish_allow))
        if not isinstance(self.audit, bool):
            raise PolicyError(f"A policy's audit is True or False, got {self.audit!r}.")

    @classmethod
    def coerce(cls, value: Policy | Mapping[str, Any]) -> Policy:
        """A ``Policy`` from itself or a mapping like ``{"publish_allow": ["tenant.*"]}``."""
        if isinstance(value, Policy):
            return value
        if not isinstance(value, Mapping):
            raise PolicyError(f"A policy is a mapping like {{'invoke_allow': ['billing.*']}} or "
                              f"a Policy, got {value!r}.")
        unknown = sorted(set(value) - set(_FIELDS))
        if unknown:
            raise PolicyError(f"Unknown policy field {unknown[0]!r}; valid fields: "
                              f"{', '.join(map(repr, _FIELDS))}.")
        return cls(**value)

    def allows_invoke(self, *names: str) -> bool:
        return any(fnmatch.fnmatchcase(n, g) for g in self.invoke_allow for n in names)

    def allows_publish(self, topic: str) -> bool:
        return any(fnmatch.fnmatchcase(topic, g) for g in self.publish_allow)

    def to_dict(self) -> dict[str, Any]:
        return {"invoke_allow": list(self.invoke_allow),
                "publish_allow": list(self.publish_allow), "audit": self.audit}


#: What a component without a policy gets: nothing beyond what it declared.
DEFAULT_POLICY = Policy()
