"""The event loop behind the synchronous API: one daemon thread per process.

Every async object that the sync API uses is created and driven on this loop (valkey-glide
delivers a client's replies on the loop that created it); sync calls submit coroutines to it
and wait for their result in the calling thread. A forked child gets a loop of its own on
first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from .._loop import new_loop
from ..errors import GlideMQError

T = TypeVar("T")


# How often a thread waiting for the loop wakes. Python runs signal handlers (Ctrl-C's
# KeyboardInterrupt too) on the main thread only, and a main thread blocked on a lock does not
# wake for a signal the kernel delivered to another of the process's threads (the loop
# thread, valkey-glide's): waking now and then lets such a signal's handler run within this long.
SIGNAL_POLL = 0.1


def result_of(future: concurrent.futures.Future[T]) -> T:
    """``future.result()``, waking every SIGNAL_POLL seconds so that signals are handled."""
    while True:
        try:
            return future.result(timeout=SIGNAL_POLL)
        except concurrent.futures.TimeoutError:
            if future.done():  # the call's own TimeoutError, or it ended just after the poll's
                return future.result()


class Portal:
    """An event loop running in a daemon thread, and the way to run coroutines on it."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = new_loop()
        self.thread = threading.Thread(target=self._serve, name="glidemq-sync-loop", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedules ``coro`` on the loop; its result arrives in the returned future."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise GlideMQError(
                "a synchronous glidemq call was made on glidemq's own event loop thread; "
                "use the async API there (await the async objects)"
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs ``coro`` on the loop and returns its result (or raises its error) here."""
        future = self.submit(coro)
        try:
            return result_of(future)
        except BaseException:
            future.cancel()  # interrupted (KeyboardInterrupt): do not leave the call running
            raise


_portal: Portal | None = None
_lock = threading.Lock()


def portal() -> Portal:
    """This process's portal, started on first use (again in a forked child)."""
    global _portal
    current = _portal
    if current is not None and current.pid == os.getpid():
        return current
    with _lock:
        if _portal is None or _portal.pid != os.getpid():
            _portal = Portal()
        return _portal


def _forget_after_fork() -> None:
    global _portal, _lock
    _portal = None  # the loop thread does not exist in the child
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
