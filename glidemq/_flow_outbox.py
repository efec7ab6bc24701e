"""Delivering children's outcomes to their parents.

A child's terminal transition writes a notification to the outbox of the child's own queue
(in the same server call). A worker of that queue delivers it: it claims the due entries,
records them at each parent with one idempotent call on the parent's queue, then
acknowledges them. An entry whose claim runs out (its worker died) is claimed again, so a
notification is delivered at least once, and counted once by the parent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import msgpack

from ._client import Client
from ._context import QueueContext
from .errors import GlideMQError

log = logging.getLogger("glidemq")

CLAIM_LIMIT = 500
CLAIM_MS = 30_000  # how long a delivery outside a worker holds its entries


async def deliver_outbox(client: Client, base: str, claim_ms: int) -> int:
    """Delivers the due notifications of the queue at ``base``; returns how many.

    A parent that fails because of a child notifies its own parent: that queue's outbox is
    delivered next, so a failure travels up the tree without waiting for other workers.
    """
    delivered = 0
    todo = [base]
    while todo:
        current = todo.pop()
        while True:
            reply = await client.fcall("flow_claim", current, [str(claim_ms), str(CLAIM_LIMIT)])
            if not reply:
                break
            entry_ids, entries = reply[0::2], reply[1::2]
            by_parent: dict[str, list[bytes]] = {}
            for entry in entries:
                parent_base = msgpack.unpackb(entry, raw=True)[0].decode()
                by_parent.setdefault(parent_base, []).append(entry)
            for parent_base, batch in by_parent.items():
                if await client.fcall("flow_deliver", parent_base, batch) and parent_base not in todo:
                    todo.append(parent_base)
            await client.fcall("flow_ack", current, entry_ids)
            delivered += len(entry_ids)
            if len(entry_ids) < CLAIM_LIMIT:
                break
    return delivered


async def remove_job(ctx: QueueContext, job_id: str) -> bool:
    """Removes a job that is not active; a parent waiting for it learns of it at once."""
    result = await ctx.call("remove", [job_id])
    if result == 2:
        try:
            await deliver_outbox(ctx.client, ctx.base, CLAIM_MS)
        except GlideMQError:
            log.warning("could not tell the parent of removed job %s yet; a worker will", job_id, exc_info=True)
    return bool(result >= 1)


class OutboxPump:
    """A worker's delivery task: runs at start, when kicked, and every ``interval`` seconds
    (which redelivers entries that a dead worker claimed and never acknowledged)."""

    def __init__(
        self,
        ctx: QueueContext,
        *,
        interval: float,
        claim_ms: int,
        on_error: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        self._ctx = ctx
        self._interval = interval
        self._claim_ms = claim_ms
        self._on_error = on_error
        self._kick = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Starts the task on the running event loop."""
        self._task = asyncio.ensure_future(self._run())

    def kick(self) -> None:
        """Asks for a delivery pass now (new notifications were written)."""
        self._kick.set()

    async def stop(self) -> None:
        """Delivers what is due one last time, then ends the task."""
        self._stopping = True
        self._kick.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._kick.clear()
            try:
                await deliver_outbox(self._ctx.client, self._ctx.base, self._claim_ms)
            except Exception as exc:  # noqa: BLE001 - reported; the next pass retries
                await self._on_error(exc)
            if self._stopping:
                return
            try:
                await asyncio.wait_for(self._kick.wait(), self._interval)
            except asyncio.TimeoutError:
                pass
