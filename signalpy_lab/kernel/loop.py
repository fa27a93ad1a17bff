"""Loop affinity: the kernel's public coroutines always run on the loop the kernel booted on.

The lab runs the kernel on a private loop in a daemon thread while notebook code runs on
ipykernel's loop. A coroutine awaited from another loop is handed to the kernel's loop with
``run_coroutine_threadsafe`` and awaited through ``wrap_future``, so it neither hangs nor hits
"attached to a different loop" errors. Nothing here creates a loop at import or construction.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar

__all__ = ["LoopAffine", "on_home_loop"]

P = ParamSpec("P")
R = TypeVar("R")


class LoopAffine(Protocol):
    def home_loop(self) -> asyncio.AbstractEventLoop | None: ...


def on_home_loop(
    method: Callable[..., Coroutine[Any, Any, R]],
) -> Callable[..., Awaitable[R]]:
    """Decorate an ``async`` method of an object with ``home_loop()`` to run on that loop.

    If the home loop is unset, closed or not running (a script's ``asyncio.run`` ended),
    the method runs on the caller's loop.
    """

    @functools.wraps(method)
    async def wrapper(self: LoopAffine, *args: Any, **kwargs: Any) -> R:
        home = self.home_loop()
        if home is None or not home.is_running():
            return await method(self, *args, **kwargs)
        running = asyncio.get_running_loop()
        if running is home:
            return await method(self, *args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), home)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    return wrapper
