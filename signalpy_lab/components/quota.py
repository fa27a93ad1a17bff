"""``TenantQuota``: a rate limiter in front of a tenant's database, as a component.

The design note: "Add a rate-limiter component that checks self.rt.properties['target'] and
enforces limits before delegating. It is a component, so it participates in the reactive
graph like everything else." One quota instance per tenant (``{"target": "acme"}``) serves
``quota.query`` + target; it checks that tenant's limit and then calls ``tenant-db.query``
for its own tenant (declared in ``depends``, and the tenant rule keeps it there).

* the limit is reactive config: ``tenants.<t>.quota.rate`` (a `limits` rate string such as
  ``"60/minute"`` or ``"5 per 10 seconds"``), else the shared default ``quota.rate``. It is a
  ``@computed``, so raising one tenant's limit takes effect on its next call, for that tenant
  only, and the graph shows which quota read which key;
* counting is the ``limits`` library's moving-window limiter over its thread-safe memory
  storage (no hand-written token bucket): concurrent callers, from any thread or task, never
  get more calls through than the limit;
* over the limit, the call fails with ``QuotaExceededError`` naming the tenant, the limit and
  when to retry; the bus table and event log show it as that route's error, and ``stats``
  counts throttled calls;
* the limit is the host's: ``tenants.<t>.quota`` is host-owned by default (the config
  provider's ``HOST_OWNED``), so a tenant reads its limit but cannot raise it;
* the window is keyed by the limit's meaning, not its spelling: ``4/minute`` and ``4 per 60
  seconds`` count in the same window (rewriting the rate never starts a fresh one);
* ``quota.query`` is the metered way in, and ``check`` (``{"handler", "target"}``, what a
  host guard sends) lets the host put the quota in front of the tenant's database itself:
  ``kernel.guard("tenant-db-acme", "quota-acme.check")`` meters every call that reaches
  acme's database, the host's ``tenant-db.query`` and acme's own code included
  (``examples.sqlite_tenants.onboard`` does this). Its own delegation passes the guard, so
  a ``quota.query`` counts once.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import limits
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict

from ..errors import ConfigValidationError, QuotaExceededError
from ..kernel import component, computed, lifecycle, requires, runnable

__all__ = ["DEFAULT_RATE", "TenantQuota"]

#: The limit when neither the tenant nor the shared default says one.
DEFAULT_RATE = "60/minute"

# One storage and limiter for every quota instance of the process. limits' MemoryStorage
# expires windows in a background thread that stops after 10 ms idle and is restarted by
# the next hit: with one storage per tenant, a tenant's calls were further apart than that
# at 1,000 tenants and every call started a thread (+589 µs, benchmarks/quota.py). Windows
# stay per instance: each activation counts under its own key.
_LIMITER = MovingWindowRateLimiter(MemoryStorage())


class Passthrough(BaseModel):
    """Whatever the delegated call takes; validated where the handler lives."""

    model_config = ConfigDict(extra="allow")


class Empty(BaseModel):
    target: str | None = None


class Guarded(BaseModel):
    """What a host guard sends: the handler about to run and its target."""

    handler: str | None = None
    target: str | None = None


def same_window(item: limits.RateLimitItem) -> limits.RateLimitItem:
    """``item`` as its meaning, so one window counts it whatever its spelling: ``4/minute``
    and ``4 per 60 seconds`` are both 4 per 60 seconds."""
    return limits.RateLimitItemPerSecond(item.amount, item.get_expiry())


@component("quota", version="1.0", depends=["config", "tenant-db"])
@requires(config="IConfig")
class TenantQuota:
    """Checks its tenant's limit, then delegates to that tenant's database."""

    @lifecycle.activate
    def activate(self) -> None:
        self._limiter = _LIMITER
        self._key = uuid.uuid4().hex  # a new window per activation, never another instance's
        self.allowed = 0
        self.throttled = 0

    @computed
    def rate(self) -> str:
        target = self.rt.target
        return self.config.get(f"tenants.{target}.quota.rate") or \
            self.config.get("quota.rate") or DEFAULT_RATE

    @computed
    def limit(self) -> limits.RateLimitItem:
        rate = self.rate()
        try:
            return limits.parse(rate)
        except ValueError:
            raise ConfigValidationError(
                f"tenants.{self.rt.target}.quota.rate: {rate!r} is not a rate like "
                f"'60/minute' or '5 per 10 seconds'.") from None

    def check(self) -> None:
        """Take one call from the tenant's window, or raise ``QuotaExceededError``."""
        item, target = self.limit(), self.rt.target or "?"
        window = same_window(item)
        if self._limiter.hit(window, self._key, target):
            self.allowed += 1
            return
        self.throttled += 1
        reset = self._limiter.get_window_stats(window, self._key, target).reset_time
        retry = max(0.0, reset - time.time())
        own = f"tenants.{target}.quota.rate"
        source = own if self.config.peek(own) else "quota.rate (the shared default)"
        raise QuotaExceededError(
            f"Tenant {target!r} is over its quota of {item} (from {source}); retry in "
            f"{retry:.1f} s, or raise it with config.set({own!r}, ...).",
            tenant=target, limit=str(item), retry_after=retry)

    @runnable("query", params=Passthrough, description="Rate-limited tenant-db.query")
    async def query(self, params: Passthrough) -> Any:
        self.check()
        call = dict(params.model_extra or {})
        call["target"] = self.rt.target  # its own tenant, whatever the caller wrote
        return await self.rt.bus.invoke("tenant-db.query", call)

    @runnable("check", params=Guarded, description="Take one call from the window (a guard)")
    def guard_check(self, params: Guarded) -> None:
        self.check()

    @runnable("stats", params=Empty, description="Its limit and what it let through")
    def stats(self, params: Empty) -> dict[str, Any]:
        return {"tenant": self.rt.target, "limit": str(self.limit()), "rate": self.rate(),
                "allowed": self.allowed, "throttled": self.throttled}
