"""Loop affinity: the kernel's public coroutines always run on the loop the kernel booted on.

The lab runs the kernel on a private loop in a daemon thread while notebook code runs on
ipykernel's loop. A coroutine awaited from another loop is handed to the kernel's loop with
``run_coroutine_threadsafe`` and awaited through ``wrap_future``, so it neither hangs nor hits
"attached to a different loop" errors. Nothing here creates a loop at import or construction.

A hop keeps the command label: the ``caused_by`` context travels with the coroutine, and where
none is set, the origin resolver (``events.set_origin_resolver``) is asked in the calling
thread, whose stack still holds the caller (a notebook cell's ``await kernel.hot_add(...)``),
so what the coroutine does on the kernel's loop is labelled with that line.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from . import events

__all__ = ["LoopAffine", "hop_if_needed", "on_home_loop"]

R = TypeVar("R")


class LoopAffine(Protocol):
    def home_loop(self) -> asyncio.AbstractEventLoop | None: ...


def on_home_loop(
    method: Callable[..., Coroutine[Any, Any, R]],
) -> Callable[..., Coroutine[Any, Any, R]]:
    """Decorate an ``async`` method of an object with ``home_loop()`` to run on that loop.

    If the home loop is unset, closed or not running (a script's ``asyncio.run`` ended),
    the method runs on the caller's loop.
    """

    @functools.wraps(method)
    def wrapper(self: LoopAffine, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, R]:
        return hop_if_needed(self.home_loop(), method(self, *args, **kwargs))

    return wrapper


def hop_if_needed(home: asyncio.AbstractEventLoop | None,
                  coroutine: Coroutine[Any, Any, R]) -> Coroutine[Any, Any, R]:
    """``coroutine`` itself when it may run where it is awaited, else one that hops to ``home``.

    No extra coroutine layer when the caller is already on the home loop (or the kernel has
    none running), so it is cheap enough for the hot path (``invoke``).
    """
    if home is None or not home.is_running():
        return coroutine
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:  # the coroutine is being created outside any loop
        running = None
    if running is home:
        return coroutine
    return _run_on(home, coroutine)


async def _run_on(home: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, R]) -> R:
    if asyncio.get_running_loop() is home:  # created elsewhere, awaited on the home loop
        return await coroutine
    origin = events.resolved_origin()  # here, in the caller's thread
    if origin is not None:
        coroutine = _labelled(origin, coroutine)
    future = asyncio.run_coroutine_threadsafe(coroutine, home)
    try:
        return await asyncio.wrap_future(future)
    except asyncio.CancelledError:
        future.cancel()
        raise


async def _labelled(command: str, coroutine: Coroutine[Any, Any, R]) -> R:
    """``coroutine`` run under ``caused_by(command)`` (its origin, named before the hop)."""
    with events.caused_by(command):
        return await coroutine
