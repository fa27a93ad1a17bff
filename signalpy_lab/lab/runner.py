"""The lab's kernel host: a private event loop in a daemon thread, and blocking calls into it.

Magics are synchronous, but run in two worlds: ipykernel (whose loop is already running in
the main thread) and terminal IPython (no running loop). Both are served by running the
kernel on its own loop in its own thread and having magics wait on
``run_coroutine_threadsafe(...).result()``: nothing blocks the loop the kernel needs, and a
Ctrl-C or timeout cancels the call on the kernel's loop instead of leaving it running. Code in
a cell may also ``await kernel.invoke(...)`` from the notebook's loop; the kernel's public
coroutines hop to the kernel's loop on their own (see ``signalpy_lab.kernel.loop``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..kernel import Kernel

__all__ = ["KernelRunner"]

T = TypeVar("T")

#: Default seconds a magic waits for a kernel call before cancelling it.
DEFAULT_TIMEOUT = 60.0


class KernelRunner:
    """Owns a private loop thread and the kernel that lives on it."""

    def __init__(self, name: str = "signalpy-lab") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The private loop, started on first use."""
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=f"{self._name}-loop", daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @property
    def started(self) -> bool:
        return self._loop is not None and not self._loop.is_closed()

    def in_loop_thread(self) -> bool:
        return self._thread is threading.current_thread()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = DEFAULT_TIMEOUT) -> T:
        """Run ``coroutine`` on the private loop and wait for its result.

        On ``KeyboardInterrupt`` or timeout the call is cancelled on the kernel's loop before
        the exception reaches the caller.
        """
        if self.in_loop_thread():
            coroutine.close()
            raise RuntimeError("KernelRunner.run called from the kernel's own loop thread; "
                               "await the coroutine instead")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"the kernel call did not finish within {timeout:g}s "
                               "and was cancelled") from None
        except KeyboardInterrupt:
            future.cancel()
            raise

    def new_kernel(self, name: str = "lab") -> Kernel:
        """A fresh Kernel (nothing loop-bound is created until it boots on our loop)."""
        self.loop  # noqa: B018  (start the loop thread now, so boot finds it)
        return Kernel(name)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and join its thread (pending tasks are cancelled)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_all(), loop).result(timeout)
        except Exception:
            pass
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if not loop.is_running():
            loop.close()
