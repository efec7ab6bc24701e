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
    """Sends the ``add`` calls a program makes concurrently as one server call.

    An add made while nothing is on its way is written at once, by the caller itself (the
    common case of one add at a time: no task, no hand-over). Adds made while a call is in
    flight wait for the next call, which takes everything submitted meanwhile.
    """

    def __init__(self, ctx: QueueContext) -> None:
        self._ctx = ctx
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Written], str]] = []
        self._sender: asyncio.Task[None] | None = None
        self._writing = False  # an add is writing itself

    async def add(self, encoded: tuple[Any, ...]) -> Written:
        """Writes one encoded job; returns (id, created, server ms)."""
        if not (self._writing or self._pending or (self._sender is not None and not self._sender.done())):
            self._writing = True
            try:
                (written,) = await write(self._ctx, [encoded])
            finally:
                self._writing = False
            return written
        future: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
        self._pending.append((encoded, future, current_carrier()))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send())
        return await future

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
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
