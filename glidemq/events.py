"""QueueEvents: the lifecycle events of a queue, as an async iterator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from ._client import Client
from ._codec import unpack
from ._context import QueueContext
from ._validate import DEFAULT_MAX_PAYLOAD
from ._waiter import RawEvent, last_stream_id, read_events
from .connection import Connection

ENCODED_FIELDS = ("return_value", "progress")
INT_FIELDS = ("attempts_made", "delay")


@dataclass(frozen=True)
class QueueEvent:
    """One event: ``event`` name, ``job_id`` ("" for queue-wide events) and ``data``."""

    event: str
    job_id: str
    data: dict[str, Any] = field(default_factory=dict)
    id: str = ""


def decode_event(raw: RawEvent) -> QueueEvent:
    """Turns a stream entry into a QueueEvent with decoded data."""
    data: dict[str, Any] = {}
    for key, value in raw.fields.items():
        if key in ENCODED_FIELDS:
            data[key] = unpack(value)
        elif key in INT_FIELDS:
            data[key] = int(value)
        else:
            data[key] = value.decode(errors="replace")
    return QueueEvent(raw.event, raw.job_id, data, raw.stream_id)


class QueueEvents:
    """Listens to a queue's events: ``async for e in QueueEvents("emails"): ...``.

    ``last_event_id="$"`` (default) yields only new events; ``"0"`` replays the retained
    history first. Uses a connection of its own.
    """

    def __init__(
        self,
        queue_name: str,
        *,
        connection: Connection | str | None = None,
        prefix: str = "glidemq",
        last_event_id: str = "$",
    ) -> None:
        self._ctx = QueueContext(
            queue_name, connection=connection, prefix=prefix, max_payload_size=DEFAULT_MAX_PAYLOAD
        )
        self.name = self._ctx.name
        self._client = Client(self._ctx.connection, name="glidemq-events")
        self._start = str(last_event_id)
        self._stream: AsyncIterator[RawEvent] | None = None
        self._next: asyncio.Future[RawEvent] | None = None

    def __repr__(self) -> str:
        return f"<QueueEvents {self.name!r} on {self._ctx.connection.url}>"

    async def __aenter__(self) -> QueueEvents:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _open(self) -> AsyncIterator[RawEvent]:
        if self._stream is None:
            key = self._ctx.key("events")
            start = await last_stream_id(self._client, key) if self._start == "$" else self._start
            self._stream = read_events(self._client, key, start)
        return self._stream

    def __aiter__(self) -> QueueEvents:
        return self

    async def __anext__(self) -> QueueEvent:
        stream = await self._open()
        if self._next is None:
            self._next = asyncio.ensure_future(stream.__anext__())
        # A caller that gives up waiting (timeout, cancel) must not kill the stream:
        # the pending read carries on and the next call picks up its event.
        next_event = self._next
        try:
            raw = await asyncio.shield(next_event)
        finally:
            if next_event.done():
                self._next = None
        return decode_event(raw)

    async def close(self) -> None:
        """Stops listening and releases the connection."""
        await self._client.close()
        pending, self._next = self._next, None
        if pending is not None:
            pending.cancel()  # the client is closed: nothing is left to wake
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pending
        await self._ctx.close()

