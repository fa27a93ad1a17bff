"""The arena: a booted kernel with a victim tenant (globex), and a malicious component.

Every attack in this suite is the code of a component: ``attack(plan)`` hot-adds a fresh
``mallory`` instance (by default ``{"target": "acme"}``) whose runnable ``attack`` runs
``plan(self)`` when invoked (or whose ``activate`` does, with ``on="activate"``). The kernel
only ever hands that code the handles it gives any component: ``self.rt``, the injected
``self.config`` / ``self.creds`` / ``self.storage``, and whatever those lead to.

The victim is ``vault-globex``: its config section, its secrets, its ledger file and its
routed ``vault.read`` answer are checked, unchanged, by ``victim_intact()`` after each attack.

    kernel ── config      tenants.acme.*  tenants.globex.*  region
           ├─ credentials apps.vault-acme.*  apps.vault-globex.*  apps.mallory.*
           ├─ storage     <root>/vault-acme/  <root>/vault-globex/  <root>/mallory/
           ├─ vault-acme    {"target": "acme"}     provides IVault, routed vault.read
           ├─ vault-globex  {"target": "globex"}   the victim
           ├─ auditor       untargeted, provides IAudit, hears every tenant's events
           └─ mallory       the attacker (added per attack)
"""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from signalpy_lab.errors import TenantIsolationError
from signalpy_lab.kernel import (
    BusEvent,
    Kernel,
    Runtime,
    ScopedBus,
    component,
    lifecycle,
    provides,
    requires,
    runnable,
    subscribe,
)
from signalpy_lab.kernel.sealed import Sealed
from signalpy_lab.providers import (
    DEFAULT_PROVIDERS,
    CredentialHandle,
    StorageHandle,
    TenantConfig,
)

SHARED_REGION = "eu-west"
ACME_SECTION = {"db_url": "postgres://db1.prod/acme", "api_key": "acme-api-key"}
GLOBEX_SECTION = {"db_url": "postgres://db2.prod/globex", "api_key": "globex-api-key"}
VICTIM = "vault-globex"
VICTIM_SECRETS = {"password": "globex-pw", "token": "globex-token"}
MALLORY_SECRETS = {"password": "mallory-pw"}
VICTIM_LEDGER = {"balance": 100, "tenant": "globex"}
#: What the victim's own route answers, before and after every attack.
VICTIM_ANSWER = {
    "tenant": "globex",
    "db_url": GLOBEX_SECTION["db_url"],
    "password": VICTIM_SECRETS["password"],
    "ledger": VICTIM_LEDGER,
}

#: The handle classes whose class dicts an attack may monkeypatch (restored after each test).
HANDLE_CLASSES: tuple[type, ...] = (
    Sealed, Runtime, TenantConfig, CredentialHandle, StorageHandle, ScopedBus, BusEvent,
)

Plan = Callable[[Any], Any]


@component("vault", depends=["config", "credentials", "storage"])
@provides("IVault")
@requires(config="IConfig", creds="ICredentials", storage="IStorage")
class Vault:
    """The victim's component: each tenant's vault answers with its own data."""

    @lifecycle.activate
    def start(self) -> None:
        self.events: list[tuple[str, str | None, str | None, Any]] = []
        target = self.rt.target
        self.storage.write_json("ledger.json", {"balance": 100, "tenant": target})

    @runnable("read")
    def read(self, params: Any) -> dict[str, Any]:
        target = self.rt.target
        return {
            "tenant": target,
            "db_url": self.config.get(f"tenants.{target}.db_url"),
            "password": self.creds.get("password"),
            "ledger": self.storage.read_json("ledger.json"),
        }

    @subscribe("payments.*")
    def on_payment(self, event: BusEvent) -> None:
        self.events.append(delivered(event))


@component("auditor")
@provides("IAudit")
class Auditor:
    """An untargeted shared service: it hears every tenant's payment events."""

    @lifecycle.activate
    def start(self) -> None:
        self.events: list[tuple[str, str | None, str | None, Any]] = []

    @subscribe("payments.*")
    def on_payment(self, event: BusEvent) -> None:
        self.events.append(delivered(event))


@component("listener")
class Listener:
    """A subscriber added late (after the attacker), so it hears events after the attacker."""

    @lifecycle.activate
    def start(self) -> None:
        self.events: list[tuple[str, str | None, str | None, Any]] = []

    @subscribe("payments.*")
    def on_payment(self, event: BusEvent) -> None:
        self.events.append(delivered(event))


def delivered(event: BusEvent) -> tuple[str, str | None, str | None, Any]:
    """What a subscriber was handed, frozen at the moment it was handed over."""
    return (event.topic, event.source, event.target, copy.deepcopy(event.payload))


#: What ``mallory`` declares by default: the providers, and the vault it legitimately calls
#: (so the bus tests show the tenant rule holding *whatever* is declared).
MALLORY_DEPENDS = ("config", "credentials", "storage", "vault")


def malicious(plan: Plan, *, on: str = "call",
              on_event: Callable[[Any, BusEvent], Any] | None = None,
              depends: tuple[str, ...] = MALLORY_DEPENDS) -> type:
    """A fresh ``mallory`` component class whose own code is ``plan`` (and ``on_event``)."""

    @component("mallory", depends=list(depends))
    @requires(config="IConfig", creds="ICredentials", storage="IStorage")
    class Mallory:
        @lifecycle.activate
        def start(self) -> None:
            self.loot = plan(self) if on == "activate" else None

        @runnable("attack")
        async def attack(self, params: Any) -> Any:
            result = plan(self)
            return await result if inspect.isawaitable(result) else result

        @subscribe("payments.*")
        def on_payment(self, event: BusEvent) -> None:
            if on_event is not None:
                on_event(self, event)

    return Mallory


@pytest.fixture
def storage_root(tmp_path: Path) -> Path:
    """Where the storage provider keeps every instance's prefix directory."""
    return tmp_path / "storage"


@pytest.fixture
async def kernel(storage_root: Path) -> AsyncIterator[Kernel]:
    """Config, credentials and storage, two tenant vaults and an untargeted auditor."""
    kernel = Kernel("isolation")
    kernel.discover([*DEFAULT_PROVIDERS, Vault, Auditor])
    kernel.instantiate("config", properties={"defaults": {
        "region": SHARED_REGION,
        "tenants": {"acme": ACME_SECTION, "globex": GLOBEX_SECTION},
    }})
    kernel.instantiate("credentials", properties={"secrets": {
        "vault-acme": {"password": "acme-pw"},
        VICTIM: VICTIM_SECRETS,
        "mallory": MALLORY_SECRETS,
    }})
    kernel.instantiate("storage", properties={"root": str(storage_root)})
    kernel.instantiate("vault", "vault-acme", {"target": "acme"})
    kernel.instantiate("vault", VICTIM, {"target": "globex"})
    await kernel.boot()
    yield kernel
    await kernel.shutdown()


@pytest.fixture
def attack(kernel: Kernel) -> Callable[..., Awaitable[Any]]:
    """``await attack(plan)``: run ``plan`` as the code of a malicious tenant component.

    ``target`` is the attacker's tenant (``None`` for an untargeted admin component),
    ``on="activate"`` runs the plan in ``activate`` and returns what it returned,
    ``on_event`` is the attacker's ``payments.*`` subscriber, ``invoke=False`` only adds the
    instance (invoke ``<name>.attack`` later), ``depends`` replaces what it declares. A second
    call replaces the first attacker.
    """
    added: list[str] = []

    async def run(plan: Plan, *, target: str | None = "acme", name: str = "mallory",
                  on: str = "call", on_event: Callable[[Any, BusEvent], Any] | None = None,
                  properties: dict[str, Any] | None = None, invoke: bool = True,
                  depends: tuple[str, ...] = MALLORY_DEPENDS) -> Any:
        for old in added:
            await kernel.hot_remove(old)
        added.clear()
        props = dict(properties or {})
        if target is not None:
            props["target"] = target
        cls = malicious(plan, on=on, on_event=on_event, depends=depends)
        added.append(name)
        await kernel.hot_add(cls, name, props)
        if on == "activate":
            return kernel.component(name).loot
        if not invoke:
            return None
        return await kernel.bus.invoke(f"{name}.attack")

    return run


def victim_files(root: Path) -> dict[str, bytes]:
    """Every file under the victim's prefix, by relative path."""
    prefix = root / VICTIM
    return {p.relative_to(prefix).as_posix(): p.read_bytes()
            for p in sorted(prefix.rglob("*")) if p.is_file()}


@pytest.fixture
def victim_intact(kernel: Kernel, storage_root: Path) -> Callable[[], Awaitable[None]]:
    """``await victim_intact()`` asserts globex's config, secrets, files and route are as booted."""

    async def check() -> None:
        config = kernel.registry.require("IConfig")
        assert GLOBEX_SECTION == config.peek("tenants.globex")
        assert ACME_SECTION == config.peek("tenants.acme")
        assert SHARED_REGION == config.peek("region")
        creds = kernel.registry.require("ICredentials")
        assert VICTIM_SECRETS == {k: creds.get(VICTIM, k) for k in creds.keys(VICTIM)}
        files = victim_files(storage_root)
        assert ["ledger.json"] == list(files)
        assert VICTIM_LEDGER == json.loads(files["ledger.json"])
        assert VICTIM_ANSWER == await kernel.bus.invoke("vault.read", {"target": "globex"})
        assert VICTIM_ANSWER == await kernel.bus.invoke(f"{VICTIM}.read")

    return check


@pytest.fixture(autouse=True)
def restore_handle_classes() -> Iterator[None]:
    """Undo any monkeypatching of the handle classes an attack did (even a successful one)."""
    saved = {cls: dict(vars(cls)) for cls in HANDLE_CLASSES}
    yield
    for cls, attrs in saved.items():
        for name in set(vars(cls)) - set(attrs):
            type.__delattr__(cls, name)
        for name, value in attrs.items():
            if name not in vars(cls) or vars(cls)[name] is not value:
                type.__setattr__(cls, name, value)


@pytest.fixture
def still_acme(kernel: Kernel) -> Callable[[str], Awaitable[None]]:
    """``await still_acme(name)``: the attacker's routes and scoping still say ``acme``.

    The attacker must be named unlike its factory (e.g. ``mallory-acme``) to get routes.
    """

    async def check(name: str) -> None:
        assert "acme" == kernel.instance(name).target
        assert f"{name}.attack" == kernel.bus.route_owner("mallory.attack", "acme")
        assert None is kernel.bus.route_owner("mallory.attack", "globex")
        rt = kernel.component(name).rt
        assert "acme" == rt.target
        assert ACME_SECTION["db_url"] == rt.config.get("tenants.acme.db_url")
        with pytest.raises(TenantIsolationError, match=re.escape("may not read 'tenants.globex")):
            rt.config.get("tenants.globex.db_url")
        with pytest.raises(TenantIsolationError, match=re.escape("may not call 'vault-globex")):
            await rt.bus.invoke("vault.read", {"target": "globex"})

    return check
