"""The engine's one lock (``graph.context.lock``) behaves as ``threading.RLock`` on both builds.

Compiled, it is the engine's own (``_EngineLock``: C calls on the hot paths); as Python, an
``RLock``. Other modules take it with ``with context.lock:``; these tests hold both builds
to the ``RLock`` contract, contended and interrupted included.
"""
from __future__ import annotations

import signal
import threading
import time

import pytest

from signalpy_lab.kernel import ENGINE, Computed, Signal
from signalpy_lab.kernel.graph import context

lock = context.lock


def in_thread(fn) -> list:
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    return result


def test_the_build_has_the_lock_it_says() -> None:
    kind = type(lock).__name__
    assert kind == ("_EngineLock" if ENGINE == "compiled" else "RLock")


def test_it_is_reentrant_and_free_once_released_as_often_as_taken() -> None:
    with lock:
        assert lock.acquire()
        with lock:
            assert in_thread(lambda: lock.acquire(blocking=False)) == [False]
        lock.release()
        assert in_thread(lambda: lock.acquire(blocking=False)) == [False]
    assert in_thread(lambda: (lock.acquire(blocking=False), lock.release())[0]) == [True]


def test_a_thread_that_does_not_hold_it_cannot_release_it() -> None:
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        lock.release()
    def release_elsewhere() -> str:
        try:
            lock.release()
        except RuntimeError as error:
            return str(error)
        return "released"

    with lock:
        assert in_thread(release_elsewhere) == ["cannot release un-acquired lock"]


def test_a_timed_wait_gives_up_after_its_timeout() -> None:
    with lock:
        started = time.monotonic()
        assert in_thread(lambda: lock.acquire(timeout=0.2)) == [False]
        assert 0.15 < time.monotonic() - started < 5
    with pytest.raises(ValueError, match="non-blocking"):
        lock.acquire(blocking=False, timeout=1)


def test_a_waiting_thread_gets_the_lock_when_it_is_released() -> None:
    order: list[str] = []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter"),
                                              lock.release()))
    waiter.start()
    time.sleep(0.1)
    order.append("holder")
    lock.release()
    waiter.join(10)
    assert order == ["holder", "waiter"]


def test_writers_in_many_threads_lose_no_update() -> None:
    """The engine's own use: 4 threads x 2,000 read-modify-writes under the lock."""
    count = Signal(0)
    doubled = Computed(lambda: count.get() * 2)

    def work() -> None:
        for _ in range(2_000):
            count.update(lambda n: n + 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (count.get(), doubled.get()) == (8_000, 16_000)


def test_ctrl_c_interrupts_a_wait_for_a_lock_held_elsewhere() -> None:
    """A deadlocked notebook cell must still stop on Ctrl-C (here: SIGALRM's handler)."""

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    held, done = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: (lock.acquire(), held.set(), done.wait(10),
                                              lock.release()))
    holder.start()
    held.wait(10)
    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(Interrupted):
            lock.acquire()
        assert time.monotonic() - started < 5
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        done.set()
        holder.join(10)
    assert in_thread(lambda: (lock.acquire(blocking=False), lock.release())[0]) == [True]
