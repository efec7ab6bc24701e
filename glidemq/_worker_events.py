"""Worker event callbacks: registration and dispatch."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any

from ._logging import get_logger
from .errors import InvalidArgumentError

log = get_logger("worker")

EVENTS = ("active", "completed", "failed", "progress", "stalled", "error", "drained", "closed")


class EventEmitter:
    """Calls the callbacks registered for an event; coroutine callbacks run as tasks."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[..., Any]]] = {}
        self._pending: set[asyncio.Task[Any]] = set()

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        """Registers a callback; without one, returns a decorator."""
        if event not in EVENTS:
            raise InvalidArgumentError(f"unknown event {event!r}: expected one of {', '.join(EVENTS)}")
        if callback is None:
            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.on(event, fn)
                return fn
            return decorator
        if not callable(callback):
            raise InvalidArgumentError("callback must be callable")
        self._callbacks.setdefault(event, []).append(callback)
        return callback

    def has(self, event: str) -> bool:
        """True if someone listens to ``event``."""
        return bool(self._callbacks.get(event))

    async def emit(self, event: str, *args: Any) -> None:
        """Calls every callback of ``event``; errors in callbacks are logged, never raised."""
        self.emit_soon(event, *args)

    def emit_soon(self, event: str, *args: Any) -> None:
        """Same as emit, callable from plain (non-async) code in the loop thread."""
        callbacks = self._callbacks.get(event)
        if not callbacks:
            if event == "error" and args:
                log.warning("glidemq worker error: %s", args[0])
            return
        for callback in callbacks:
            try:
                result = callback(*args)
            except Exception:
                log.exception("glidemq %s listener failed", event)
                continue
            if result is not None and inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._pending.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("glidemq listener failed", exc_info=task.exception())

    async def wait_pending(self) -> None:
        """Waits for coroutine callbacks still running."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
