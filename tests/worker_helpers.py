"""Small helpers shared by the worker and fault tests."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import glidemq


async def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> float:
    """Polls ``condition`` (plain or async) until it is truthy; returns the seconds it took.

    Fails the test with an AssertionError when ``timeout`` passes first.
    """
    start = time.monotonic()
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


async def replay_events(connection: Any, qname: str, idle: float = 0.3) -> list[glidemq.QueueEvent]:
    """Every event still retained for the queue, read through QueueEvents from the start."""
    out: list[glidemq.QueueEvent] = []
    async with glidemq.QueueEvents(qname, connection=connection, last_event_id="0") as events:
        iterator = events.__aiter__()
        while True:
            try:
                out.append(await asyncio.wait_for(iterator.__anext__(), idle))
            except asyncio.TimeoutError:
                return out


async def count_events(connection: Any, qname: str, event: str, job_id: str) -> int:
    """How many times the queue published ``event`` for ``job_id``."""
    return sum(1 for e in await replay_events(connection, qname) if e.event == event and e.job_id == job_id)
