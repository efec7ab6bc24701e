"""Writing jobs: size-bounded chunks, and merging concurrent ``add`` calls into one FCALL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from ._client import Client
from ._codec import encode_add_batch, pack
from ._context import QueueContext
from ._tracing import current_carrier

BULK_CHUNK = 500
BULK_BYTES = 4 * 1024 * 1024  # encoded data per add call: big payloads must not make one long call

# (job id, created, server time in ms) for each job written
Written = tuple[str, int, int]


def chunks(encoded: list[tuple[Any, ...]]) -> Iterable[tuple[int, int]]:
    """(start, end) slices of at most BULK_CHUNK jobs and about BULK_BYTES of data each."""
    start = 0
    while start < len(encoded):
        end, size = start + 1, len(encoded[start][2])
        while end < len(encoded) and end - start < BULK_CHUNK and size + len(encoded[end][2]) <= BULK_BYTES:
            size += len(encoded[end][2])
            end += 1
        yield start, end
        start = end


async def write(
    ctx: QueueContext, encoded: list[tuple[Any, ...]], client: Client | None = None, traces: list[str] | None = None
) -> list[Written]:
    """One ``add`` call for jobs encoded by ``options.encode_job`` (at most one chunk).

    ``client`` sends it on another client than the queue's own (durable adds use their own).
    ``traces``: each job's trace context ("" for none; default: that of the traced add running now).
    """
    if traces is None:
        carrier = current_carrier()
        traces = [carrier] * len(encoded) if carrier else []
    args = [encode_add_batch(encoded)]
    if any(traces):
        args.append(pack(traces))
    if client is None:
        reply = await ctx.call("add", args)
    else:
        reply = await client.fcall("add", ctx.base, args)
    now = reply[0]
    return [(reply[1 + 2 * i].decode(), reply[2 + 2 * i], now) for i in range(len(encoded))]


class AddBatcher:
    """Sends the ``add`` calls a program makes concurrently as few server calls.

    An add made while nothing is on its way is written at once, by the caller itself (the
    common case of one add at a time: no task, no hand-over). Adds made meanwhile are sent
    together, with up to two calls on their way: while the server writes one batch, this
    process prepares the next. Calls on one connection run in order, so batches are written
    in the order they were sent.
    """

    MAX_IN_FLIGHT = 2

    def __init__(self, ctx: QueueContext) -> None:
        self._ctx = ctx
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Written], str]] = []
        self._in_flight = 0  # calls on their way
        self._on_way = 0  # jobs they carry
        self._flush_soon = False
        self._senders: set[asyncio.Task[None]] = set()

    async def add(self, encoded: tuple[Any, ...]) -> Written:
        """Writes one encoded job; returns (id, created, server ms)."""
        if not self._pending and not self._in_flight:
            self._in_flight += 1
            self._on_way += 1
            try:
                (written,) = await write(self._ctx, [encoded])
            finally:
                self._in_flight -= 1
                self._on_way -= 1
                self._schedule()
            return written
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        self._pending.append((encoded, future, current_carrier()))
        self._schedule()
        return await future

    def _schedule(self) -> None:
        """Sends what is pending once the adds that are ready to run have joined it."""
        if self._pending and not self._flush_soon and self._in_flight < self.MAX_IN_FLIGHT:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        while self._pending and self._in_flight < self.MAX_IN_FLIGHT:
            # The two calls on their way carry about as many jobs each, so that neither side
            # waits long for the other: with nothing on its way, send two halves.
            cut = min(len(self._pending), (len(self._pending) + self._on_way + 1) // 2)
            batch, self._pending = self._pending[:cut], self._pending[cut:]
            self._in_flight += 1
            self._on_way += cut
            sender = asyncio.ensure_future(self._send(batch))
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Written], str]]) -> None:
        try:
            for start, end in chunks([encoded for encoded, _, _ in batch]):
                part = batch[start:end]
                try:
                    written = await write(self._ctx, [e for e, _, _ in part], traces=[t for _, _, t in part])
                except Exception as exc:  # noqa: BLE001 - handed to every add of the batch
                    for _, future, _ in part:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future, _), result in zip(part, written, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._in_flight -= 1
            self._on_way -= len(batch)
            self._schedule()
