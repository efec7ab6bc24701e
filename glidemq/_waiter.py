"""Reading a queue's events stream, and telling waiters when their jobs finish."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
from glide import StreamReadOptions

from ._client import Client
from .connection import Connection
from .errors import ConnectionFailedError

BLOCK_MS = 1000
BATCH = 500
RECONNECT_PAUSE = 0.5


@dataclass(frozen=True)
class RawEvent:
    """One event of the events stream, fields still encoded."""

    stream_id: str
    event: str
    job_id: str
    fields: dict[str, bytes] = field(default_factory=dict)


def split_entry(stream_id: str, pairs: list[list[bytes]]) -> list[RawEvent]:
    """Splits one stream entry into its events.

    An entry holds every event of one library call: a field ``c`` with msgpack
    ``[name, keys, [<job id>, value, ..., <job id>, value, ...], name, keys, [...], ...]``, where
    ``keys`` names the values that follow each job id (``b"k1,k2"``, empty for none). Entries
    of earlier library versions hold a field ``b`` (``[name, [id, <job id>, key, value, ...],
    ...]``) or one event each (``e <name> id <id> ...``).
    """
    if not pairs:
        return []
    key, value = pairs[0]
    if key == b"c":
        batch = msgpack.unpackb(value, raw=True)
        events: list[RawEvent] = []
        for i in range(0, len(batch) - 2, 3):
            events += _keyed_events(stream_id, batch[i].decode(), batch[i + 1], batch[i + 2])
        return events
    if key == b"b":
        batch = msgpack.unpackb(value, raw=True)
        events = []
        for i in range(0, len(batch) - 1, 2):
            events += _events_of(stream_id, batch[i].decode(), batch[i + 1])
        return events
    if key == b"e":
        return _events_of(stream_id, value.decode(), [item for pair in pairs[1:] for item in pair])
    return []


def _text(value: Any) -> bytes:
    """A value as the bytes of its text (numbers travel as msgpack numbers)."""
    return value if isinstance(value, bytes) else str(value).encode()


def _keyed_events(stream_id: str, name: str, keys: bytes, flat: list[Any]) -> list[RawEvent]:
    """Events of one name from ``[<job id>, value, ..., <job id>, value, ...]``."""
    names = [key.decode() for key in keys.split(b",")] if keys else []
    stride = len(names) + 1
    events = []
    for i in range(0, len(flat) - stride + 1, stride):
        fields = dict(zip(names, map(_text, flat[i + 1 : i + stride]), strict=True))
        events.append(RawEvent(stream_id, name, _text(flat[i]).decode(), fields))
    return events


def _events_of(stream_id: str, name: str, flat: list[Any]) -> list[RawEvent]:
    """Events of one name from ``[id, <job id>, key, value, ..., id, <job id>, ...]``."""
    events: list[RawEvent] = []
    job_id: str | None = None
    fields: dict[str, bytes] = {}
    for i in range(0, len(flat) - 1, 2):
        key, value = flat[i], _text(flat[i + 1])
        if key == b"id":
            if job_id is not None:
                events.append(RawEvent(stream_id, name, job_id, fields))
            job_id, fields = value.decode(), {}
        else:
            fields[key.decode()] = value
    if job_id is not None:
        events.append(RawEvent(stream_id, name, job_id, fields))
    return events


async def last_stream_id(client: Client, key: str) -> str:
    """The id of the newest entry of a stream ("0-0" when it is empty)."""
    reply = await client.command(["XREVRANGE", key, "+", "-", "COUNT", "1"], key=key)
    if not reply:
        return "0-0"
    return str(next(iter(reply)).decode())


async def recent_outcome(client: Client, key: str, job_id: str, entries: int = 2000) -> tuple[str, bytes] | None:
    """The job's completed/failed event among the newest ``entries`` stream entries, if any.

    For jobs that finished and were removed (remove_on_complete/fail) before anyone watched.
    """
    reply = await client.command(["XREVRANGE", key, "+", "-", "COUNT", str(entries)], key=key)
    for stream_id, pairs in (reply or {}).items():
        for event in split_entry(stream_id.decode(), pairs):
            if event.job_id == job_id and event.event in ("completed", "failed"):
                field = "return_value" if event.event == "completed" else "failed_reason"
                return event.event, event.fields.get(field, b"")
    return None


async def read_events(client: Client, key: str, start: str) -> AsyncIterator[RawEvent]:
    """Yields events after ``start`` ("$" = only new ones), blocking on the given client.

    Survives connection loss: it pauses and carries on from the last id it saw.
    """
    last = await last_stream_id(client, key) if start == "$" else start
    while True:
        try:
            glide = await client.raw()
            reply = await glide.xread({key: last}, StreamReadOptions(block_ms=BLOCK_MS, count=BATCH))
        except Exception as exc:  # noqa: BLE001 - any client failure: pause, then carry on
            if isinstance(exc, ConnectionFailedError) and "closed" in str(exc):
                return
            await asyncio.sleep(RECONNECT_PAUSE)
            continue
        if not reply:
            continue
        for entries in reply.values():
            for entry_id, pairs in entries.items():
                last = entry_id.decode()
                for event in split_entry(last, pairs):
                    yield event


class FinishWaiter:
    """One listener per queue client that resolves futures when jobs complete or fail."""

    def __init__(self, connection: Connection, events_key: str) -> None:
        self._client = Client(connection, name="glidemq-waiter")
        self._key = events_key
        self._watchers: dict[str, list[asyncio.Future[tuple[str, bytes]]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._started: asyncio.Future[None] | None = None

    async def watch(self, job_id: str) -> asyncio.Future[tuple[str, bytes]]:
        """A future resolved with ("completed", return value) or ("failed", reason).

        Events from the moment this returns are seen, so a state check made afterwards
        cannot miss the job's end.
        """
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._started = loop.create_future()
            self._task = asyncio.create_task(self._listen())
        assert self._started is not None
        await asyncio.shield(self._started)
        future: asyncio.Future[tuple[str, bytes]] = loop.create_future()
        self._watchers.setdefault(job_id, []).append(future)
        return future

    def unwatch(self, job_id: str, future: asyncio.Future[tuple[str, bytes]]) -> None:
        """Stops watching (after the wait ended or timed out)."""
        futures = self._watchers.get(job_id)
        if futures and future in futures:
            futures.remove(future)
            if not futures:
                del self._watchers[job_id]

    async def _listen(self) -> None:
        assert self._started is not None
        try:
            start = await last_stream_id(self._client, self._key)
        except Exception as exc:  # noqa: BLE001 - handed to every caller of watch()
            self._started.set_exception(exc)
            self._task = None
            return
        self._started.set_result(None)
        async for event in read_events(self._client, self._key, start):
            if event.event not in ("completed", "failed"):
                continue
            payload = event.fields.get("return_value" if event.event == "completed" else "failed_reason", b"")
            for future in self._watchers.pop(event.job_id, []):
                if not future.done():
                    future.set_result((event.event, payload))

    async def close(self) -> None:
        """Stops the listener; pending waits fall back to their timeouts."""
        await self._client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    def __repr__(self) -> str:
        return f"<FinishWaiter {self._key} {len(self._watchers)} watched>"

