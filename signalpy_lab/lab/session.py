"""The lab session: one kernel on a private loop thread, its model, and the cell epochs.

``%load_ext signalpy_lab`` creates a session with a ready (booted) kernel carrying the
embedded providers (config, logging, credentials, storage). ``%reset`` replaces it with a
fresh one (``--no-boot`` to teach boot order: instances are then queued until ``%boot``).
Config written before boot becomes the config instance's defaults at boot.

**Where lab data goes.** A notebook must run again and again (Restart & Run All, the tests
run each twice), so a session's data starts empty: the storage provider's root is
``<data>/storage``, where ``<data>`` is a fresh temporary directory (``signalpy-lab-<pid>-*``
in the system's temp folder) made for this session, emptied by ``%reset`` (a fresh kernel)
and removed when the session closes (``%unload_ext``, the notebook's kernel shutting down or
the process exiting; a process killed before its exit code ran leaves it, and the next lab
session removes it). Nothing is written into the notebook's folder. To keep data across
sessions, set ``SIGNALPY_LAB_DATA=/path``: that folder is used as ``<data>``, created if
missing, and never emptied or removed (a notebook that inserts fixed rows then fails on its
second run, by design). ``%load_ext`` says which of the two it is. Outside the lab,
``StorageProvider`` keeps its own default (``root``, ``$SIGNALPY_LAB_STORAGE``,
``./.signalpy_lab/storage``).

One story for the lifecycle magics: ``boot()`` on a running kernel changes nothing and says
so (a notebook written instantiate-then-boot survives Run All); ``shutdown()`` then
``boot()`` *restarts*: a new kernel (a stopped one cannot boot again) with the same
discovered factories, the same instances and properties, and the same config, runtime
values included, so ``%config get`` still tells runtime from defaults. The model follows
the new kernel, so widgets on the page keep updating. A restart keeps the storage.
"""

from __future__ import annotations

import copy
import importlib
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..kernel import Kernel, KernelState
from ..kernel.lifecycle import activation_order
from ..kernel.metadata import meta_of
from ..providers import DEFAULT_PROVIDERS
from .model import LabModel
from .runner import DEFAULT_TIMEOUT, KernelRunner

__all__ = ["ENV_DATA", "BootReport", "LabData", "LabSession", "current_session"]

#: Names a folder that keeps the lab's data across sessions (see the module docstring).
ENV_DATA = "SIGNALPY_LAB_DATA"

#: ``settle_relays``: how long without events counts as "the workers have relayed", and the
#: longest it waits (a worker relays every 50 ms, ``remote.worker.RELAY_SECONDS``).
RELAY_QUIET = 0.15
RELAY_LIMIT = 1.0

T = TypeVar("T")

_current: LabSession | None = None


def current_session() -> LabSession:
    """The session of the loaded extension (``%load_ext signalpy_lab`` first)."""
    if _current is None:
        raise LookupError("No lab session: run `%load_ext signalpy_lab` first.")
    return _current


@dataclass(frozen=True)
class BootReport:
    """What ``LabSession.boot()`` did, for the ``%boot`` magic to say."""

    action: str  # "booted" | "restarted" | "running" (nothing to do)
    instances: int
    failed: tuple[str, ...] = ()  # "name: error" of instances that did not activate
    lost: tuple[str, ...] = ()  # factories a restart could not find a class for


class LabData:
    """Where a lab session's data lives: a fresh temporary folder, or ``$SIGNALPY_LAB_DATA``.

    A temporary folder (``signalpy-lab-<pid>-*``) is removed by ``remove()`` or, at the
    latest, when the process exits (``weakref.finalize`` runs at exit). A process killed
    before that (a notebook kernel that does not stop within the front end's grace period
    gets SIGTERM or SIGKILL, and no exit code runs) leaves its folder behind: the next
    temporary ``LabData`` removes every such folder of ours whose process is gone. A folder
    named by the environment is never touched.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        named = (os.environ if environ is None else environ).get(ENV_DATA, "").strip()
        #: True when the folder came from ``$SIGNALPY_LAB_DATA`` (kept, never emptied).
        self.kept = bool(named)
        if self.kept:
            self.path = Path(named).expanduser().resolve()
            self.path.mkdir(parents=True, exist_ok=True)
            self._remove: weakref.finalize | None = None
        else:
            _remove_orphans()
            self.path = Path(tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-"))
            self._remove = weakref.finalize(self, shutil.rmtree, self.path, ignore_errors=True)

    @property
    def storage(self) -> Path:
        """The storage provider's root: every instance's prefix lives under it."""
        return self.path / "storage"

    def clear(self) -> None:
        """Empty a temporary folder (for a fresh kernel); a kept one stays as it is."""
        if not self.kept:
            shutil.rmtree(self.storage, ignore_errors=True)

    def remove(self) -> None:
        """Delete a temporary folder now; a kept one stays."""
        if self._remove is not None:
            self._remove()

    def describe(self) -> str:
        """One line for ``%load_ext``: where data goes and how long it stays."""
        if self.kept:
            return (f"lab data in {self.path} (from ${ENV_DATA}; kept across sessions, "
                    "never emptied)")
        return (f"lab data in {self.path}, a fresh folder removed when this session ends; "
                f"set {ENV_DATA}=/path to keep it")

    def __repr__(self) -> str:
        return f"<LabData {str(self.path)!r} {'kept' if self.kept else 'temporary'}>"


_TEMP_PREFIX = "signalpy-lab-"


def _remove_orphans() -> None:
    """Delete our temporary lab folders whose process no longer runs.

    Only ``signalpy-lab-<pid>-*`` folders in the temp dir that belong to this user, and only
    when ``<pid>`` is gone (a reused pid keeps its folder: the safe mistake).
    """
    root = Path(tempfile.gettempdir())
    uid = os.getuid() if hasattr(os, "getuid") else None
    for folder in root.glob(f"{_TEMP_PREFIX}*-*"):
        pid = folder.name[len(_TEMP_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if folder.is_symlink() or (uid is not None and folder.lstat().st_uid != uid):
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # alive (another user's), or the folder went meanwhile
            continue


@dataclass
class _SavedConfig:
    """The config a restart brings back: the instance's defaults plus its runtime writes."""

    defaults: dict[str, Any]
    runtime: list[tuple[str, Any]] = field(default_factory=list)


class LabSession:
    """A kernel, its model and its loop thread, managed together."""

    def __init__(self, *, boot: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        global _current
        self.runner = KernelRunner()
        self.timeout = timeout
        #: Where this session's storage lives (see the module docstring).
        self.data = LabData()
        self.kernel: Kernel = self.runner.new_kernel()
        self.model = LabModel(self.kernel)
        #: ``%lab --inline``: "auto" (a small epoch picture under each state-changing magic in
        #: Jupyter, none in a terminal), "on" or "off".
        self.inline = "auto"
        #: ``%lab --sidecar``: the JupyterLab sidecar and the panel in it (see ``sidecar.py``).
        self.sidecar: Any = None
        self.sidecar_panel: Any = None
        self.pending_config: dict[str, Any] = {}
        self._classes: dict[str, type] = {}  # factory -> class, for a restart
        self._saved_config: _SavedConfig | None = None
        self._setup(boot)
        _current = self

    def _setup(self, boot: bool) -> None:
        self.discover(list(DEFAULT_PROVIDERS))
        if boot:
            self.boot()

    # -- running things on the kernel's loop ---------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a kernel coroutine on the kernel's loop and wait (Ctrl-C cancels it)."""
        return self.runner.run(coroutine, self.timeout if timeout is None else timeout)

    @property
    def booted(self) -> bool:
        return self.kernel.state is KernelState.RUNNING

    @property
    def stopped(self) -> bool:
        """Shut down: ``boot()`` restarts it."""
        return self.kernel.state is KernelState.STOPPED

    def discover(self, classes: list[Any]) -> list[str]:
        """``kernel.discover`` that also remembers the classes, so a restart finds them."""
        names = self.kernel.discover(classes)
        for item in classes:
            meta = meta_of(item) if isinstance(item, type) else None
            if meta is not None:
                self._classes[meta.factory_name] = item
        return names

    def boot(self) -> BootReport:
        """Boot, restart (after a shutdown) or, when running, leave the kernel as it is.

        Config written before the first boot becomes the config's defaults.
        """
        if self.kernel.state is KernelState.RUNNING:
            return BootReport("running", len(self.kernel.instances()), self._failed())
        if self.stopped:
            return self._restart()
        names = {i.name for i in self.kernel.instances()}
        if "config" not in names:
            self.kernel.instantiate("config", properties={"defaults": self.pending_config})
            self.pending_config = {}
        self._instantiate_providers()
        self.run(self.kernel.boot())
        if self.pending_config:
            self.config.merge(self.pending_config)
            self.pending_config = {}
        return BootReport("booted", len(self.kernel.instances()), self._failed())

    def _instantiate_providers(self) -> None:
        """The embedded providers nobody instantiated, in their order, the storage in ``data``.

        The same instances boot would make by default, except that the storage's root is
        this session's data folder rather than the provider's default in the current folder.
        """
        have = {i.factory for i in self.kernel.instances()}
        known = {f.name for f in self.kernel.factories()}
        for cls in DEFAULT_PROVIDERS:
            meta = meta_of(cls)
            factory = meta.factory_name if meta is not None else None
            if factory in known and factory not in have:
                properties = {"root": str(self.data.storage)} if factory == "storage" else {}
                self.kernel.instantiate(factory, properties=properties)

    def shutdown(self) -> int:
        """Deactivate every instance (reverse order); returns how many were active.

        The config is remembered first, so ``boot()`` can restart with it.
        """
        if self.kernel.state is not KernelState.RUNNING:
            return 0
        active = sum(1 for i in self.kernel.instances() if i.state == "active")
        self._saved_config = _read_config(self.kernel)
        self.run(self.kernel.shutdown())
        return active

    def stopped_config(self) -> Any:
        """The stopped kernel's config provider (still readable): what ``boot()`` restores."""
        if not self.stopped:
            return None
        try:
            return self.kernel.instance("config").obj
        except LookupError:
            return None

    def _failed(self) -> tuple[str, ...]:
        return tuple(f"{i.name}: {i.error}" for i in self.kernel.instances()
                     if i.state == "failed")

    def _restart(self) -> BootReport:
        """A new kernel with the stopped one's factories, instances and config.

        The config instance boots first and gets its runtime values back before any other
        instance activates (then each is added in the old activation order), so no
        component ever sees the config without them.
        """
        old = self.kernel
        saved = self._saved_config or _read_config(old)
        records = {i.name: old.instance(i.name) for i in old.instances()}
        order = activation_order(records)
        classes: dict[str, type] = {}
        lost: list[str] = []
        for info in old.factories():
            cls = (next((records[n].meta.cls for n in info.instances if n in records), None)
                   or self._classes.get(info.name) or _import_class(info.cls))
            if cls is None:
                lost.append(info.name)
            else:
                classes[info.name] = cls
        kernel = self.runner.new_kernel()
        config = records.get("config")
        if config is not None and config.factory in classes:
            kernel.discover([classes[config.factory]])
            kernel.instantiate(config.factory, "config", copy.deepcopy(config.properties))
        self.kernel = kernel
        self.model.attach(kernel)
        self._saved_config = None
        self.run(kernel.boot())
        if config is not None and saved is not None and saved.runtime:
            service = self.config
            for key, value in saved.runtime:
                service.set(key, value)
        if self.pending_config:  # written while stopped: runtime values now
            self.config.merge(self.pending_config)
            self.pending_config = {}
        kernel.discover(list(classes.values()))
        failed: list[str] = []
        for name in order:
            record = records[name]
            if name == "config" or record.factory not in classes:
                continue
            try:
                self.run(kernel.hot_add(record.factory, name, copy.deepcopy(record.properties),
                                        isolation=record.isolation))
            except Exception as exc:  # kept as failed, like boot; reported by %boot
                failed.append(f"{name}: {type(exc).__name__}: {exc}")
        return BootReport("restarted", len(kernel.instances()),
                          tuple(failed) or self._failed(), tuple(sorted(lost)))

    def settle_relays(self, quiet: float = RELAY_QUIET, limit: float = RELAY_LIMIT) -> None:
        """Wait until process-isolated workers have relayed what the last command did.

        A worker sends its events every few tens of milliseconds, so the cell after an
        ``%invoke`` or ``%config set`` could look (``%why``, ``%graph``) before they arrive.
        With a worker running, wait until the model has heard nothing for ``quiet`` seconds
        (at most ``limit``); without one, return at once.
        """
        if not any(i.isolation != "inline" and i.state == "active"
                   for i in self.kernel.instances()):
            return
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            idle = time.time() - self.model.last_event
            if idle >= quiet:
                return
            time.sleep(min(quiet - idle, max(0.0, deadline - time.monotonic())))

    @property
    def config(self) -> Any:
        """The kernel's unscoped config service (the lab is an admin tool)."""
        return self.kernel.registry.require("IConfig")

    def set_config(self, key: str, value: Any) -> None:
        if self.booted:
            self.config.set(key, value)
        else:
            from ..providers.keyspace import parse_key

            node = self.pending_config
            *parents, leaf = parse_key(key)
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
            node[leaf] = value

    def merge_config(self, values: Mapping[str, Any], prefix: str = "") -> int:
        if self.booted:
            return self.config.merge(values, prefix)
        count = 0
        stack: list[tuple[str, Any]] = [(prefix, values)]
        while stack:
            path, value = stack.pop()
            if isinstance(value, Mapping) and value:
                stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
            else:
                self.set_config(path, value)
                count += 1
        return count

    # -- lifecycle -------------------------------------------------------------------------

    def reset(self, *, boot: bool = True) -> None:
        """Shut the kernel down and start a fresh one on the same loop thread."""
        self._shutdown_kernel()
        self.model.close()
        self.data.clear()
        self.kernel = self.runner.new_kernel()
        self.model = LabModel(self.kernel)
        self.pending_config = {}
        self._saved_config = None
        self._setup(boot)

    def _shutdown_kernel(self) -> None:  # closing or resetting: nothing to restart
        if self.kernel.state in (KernelState.RUNNING, KernelState.BOOTING):
            self.run(self.kernel.shutdown())

    def close(self) -> None:
        """Shut down the kernel, stop listening, stop the loop thread, remove temporary data."""
        global _current
        try:
            self._shutdown_kernel()
        finally:
            for widget in (self.sidecar_panel, self.sidecar):
                if widget is not None:
                    widget.close()
            self.sidecar = self.sidecar_panel = None
            self.model.close()
            self.runner.stop()
            self.data.remove()
            if _current is self:
                _current = None


def _read_config(kernel: Kernel) -> _SavedConfig | None:
    """The ``config`` instance's defaults and runtime writes (None without one).

    Reads the provider object, which keeps its values after deactivation, so this works
    before a shutdown and after one made outside the lab (``await kernel.shutdown()``).
    """
    try:
        record = kernel.instance("config")
    except LookupError:
        return None
    provider = record.obj
    defaults = copy.deepcopy(record.properties.get("defaults", {}))
    if provider is None:
        return _SavedConfig(defaults)
    return _SavedConfig(defaults, _runtime_writes(provider, "", provider.as_dict(), defaults))


def _runtime_writes(config: Any, path: str, value: Any,
                    defaults: Any) -> list[tuple[str, Any]]:
    """``set(key, value)`` calls that rebuild the runtime layer over ``defaults``.

    A key that has defaults but takes its value from the runtime layer was replaced by a
    write at or above it: one write (its subtree included). A runtime subtree with no
    defaults under it is rebuilt leaf by leaf (the same tree, and the same writes a user
    makes); a mixed subtree is walked; a key from the defaults needs nothing.
    """
    source = config.source(path) if path else "runtime+defaults"
    mapping = isinstance(value, Mapping) and bool(value)
    if source == "runtime" and (defaults is not _ABSENT or not mapping):
        return [(path, value)]
    if source not in ("runtime", "runtime+defaults") or not mapping:
        return []
    out: list[tuple[str, Any]] = []
    for key, sub in value.items():
        below = defaults.get(key, _ABSENT) if isinstance(defaults, Mapping) else _ABSENT
        out.extend(_runtime_writes(config, f"{path}.{key}" if path else str(key), sub, below))
    return out


_ABSENT: Any = object()


def _import_class(dotted: str) -> type | None:
    """``pkg.module.Class`` imported, or None (a class from ``__main__`` has gone)."""
    module, _, name = dotted.rpartition(".")
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return found if isinstance(found, type) else None
