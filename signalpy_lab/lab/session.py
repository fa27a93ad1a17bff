"""The lab session: one kernel on a private loop thread, its model, and the cell epochs.

``%load_ext signalpy_lab`` creates a session with a ready (booted) kernel carrying the
embedded providers (config, logging, credentials, storage in ``./.signalpy_lab/storage``).
``%reset`` replaces it with a fresh one (``--no-boot`` to teach boot order: instances are
then queued until ``%boot``). Config written before boot becomes the config instance's
defaults at boot.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from ..kernel import Kernel, KernelState
from ..providers import DEFAULT_PROVIDERS
from .model import LabModel
from .runner import DEFAULT_TIMEOUT, KernelRunner

__all__ = ["LabSession", "current_session"]

T = TypeVar("T")

_current: LabSession | None = None


def current_session() -> LabSession:
    """The session of the loaded extension (``%load_ext signalpy_lab`` first)."""
    if _current is None:
        raise LookupError("No lab session: run `%load_ext signalpy_lab` first.")
    return _current


class LabSession:
    """A kernel, its model and its loop thread, managed together."""

    def __init__(self, *, boot: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        global _current
        self.runner = KernelRunner()
        self.timeout = timeout
        self.kernel: Kernel = self.runner.new_kernel()
        self.model = LabModel(self.kernel)
        self.pending_config: dict[str, Any] = {}
        self._setup(boot)
        _current = self

    def _setup(self, boot: bool) -> None:
        self.kernel.discover(list(DEFAULT_PROVIDERS))
        if boot:
            self.boot()

    # -- running things on the kernel's loop ---------------------------------------------

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run a kernel coroutine on the kernel's loop and wait (Ctrl-C cancels it)."""
        return self.runner.run(coroutine, self.timeout if timeout is None else timeout)

    @property
    def booted(self) -> bool:
        return self.kernel.state is KernelState.RUNNING

    def boot(self) -> None:
        """Boot the kernel; config written before boot becomes the config's defaults."""
        names = {i.name for i in self.kernel.instances()}
        if "config" not in names:
            self.kernel.instantiate("config", properties={"defaults": self.pending_config})
            self.pending_config = {}
        self.run(self.kernel.boot())
        if self.pending_config:
            self.config.merge(self.pending_config)
            self.pending_config = {}

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
        self.kernel = self.runner.new_kernel()
        self.model = LabModel(self.kernel)
        self.pending_config = {}
        self._setup(boot)

    def _shutdown_kernel(self) -> None:
        if self.kernel.state in (KernelState.RUNNING, KernelState.BOOTING):
            self.run(self.kernel.shutdown())

    def close(self) -> None:
        """Shut down the kernel, stop listening and stop the loop thread."""
        global _current
        try:
            self._shutdown_kernel()
        finally:
            self.model.close()
            self.runner.stop()
            if _current is self:
                _current = None
