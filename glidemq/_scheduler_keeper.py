"""Keeping job schedulers going from the workers.

The server cannot evaluate cron expressions: when a cron scheduler needs its next slot it
waits in the queue's "sched-todo" set until a client claims it (with a lease), computes the
slot and hands it back with ``sched_next``. A client that dies in between leaves the claim to
expire; any worker picks it up on its next periodic check, which also lets schedulers whose
pending job was deleted by hand go on with their next slot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from ._context import QueueContext
from ._cron import next_slot

ITERATION_PREFIX = "repeat:"
LEASE_MS = 5000  # how long a claimed scheduler is left to its claimer
BATCH = 100
RECHECK = 5.0  # seconds between a worker's periodic checks


async def settle(
    ctx: QueueContext, sid: str | bytes, generation: str | bytes, cron: str, tz: str | None, after_ms: int
) -> None:
    """Computes a claimed cron scheduler's next slot and hands it to the server."""
    slot = next_slot(cron, tz, after_ms)
    await ctx.call("sched_next", [sid, generation, "" if slot is None else slot])


async def repair(ctx: QueueContext, cursor: int = 0) -> int:
    """Looks at up to BATCH schedulers from rank ``cursor``; those whose pending job is gone go
    on with their next slot. Returns the cursor of the next batch (0: start again)."""
    return int(await ctx.call("sched_repair", [cursor, BATCH]))


async def settle_claimed(ctx: QueueContext) -> int:
    """Claims the cron schedulers waiting for a slot and settles them; returns how many."""
    reply = await ctx.call("sched_claim", [LEASE_MS, BATCH])
    now_ms = int(reply[0])
    for sid, generation, cron, tz, after in reply[1:]:
        await settle(ctx, sid, generation, cron.decode(), tz.decode() or None, max(now_ms, int(after)))
    return len(reply) - 1


class SchedulerKeeper:
    """A worker's part in running job schedulers.

    After a ``take`` that started an iteration job it settles the cron schedulers waiting for
    their next slot; every RECHECK seconds it also settles whatever a dead client left behind
    and repairs the next BATCH schedulers (a walk over all of them spreads over several
    checks). The work runs in a task of its own, never in the ``take`` loop.
    """

    def __init__(self, ctx: QueueContext, on_error: Callable[[BaseException], None]) -> None:
        self._ctx = ctx
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._again = self._repair = False
        self._next_check = 0.0
        self._cursor = 0

    def seen(self, job_ids: Sequence[str]) -> None:
        """Called with the ids of the jobs a ``take`` activated."""
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + RECHECK
            self._repair = True
        elif not any(i.startswith(ITERATION_PREFIX) for i in job_ids):
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                if self._repair:
                    self._repair = False
                    self._cursor = await repair(self._ctx, self._cursor)
                while await settle_claimed(self._ctx) == BATCH:
                    pass
            except Exception as exc:  # noqa: BLE001 - reported; the next check tries again
                self._on_error(exc)
                return

    async def close(self) -> None:
        """Waits for a check in progress to end."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
