"""Cron slots of job schedulers, and their computation on behalf of the server.

The server cannot evaluate cron expressions: when a cron scheduler needs its next slot it
waits in the queue's "sched-todo" set until a client claims it (with a lease), computes the
slot here and hands it back with ``sched_next``. A client that dies in between leaves the
claim to expire; any worker picks it up on its next periodic check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from ._context import QueueContext
from .errors import InvalidArgumentError

ITERATION_PREFIX = "repeat:"
LEASE_MS = 5000  # how long a claimed scheduler is left to its claimer
CLAIM_BATCH = 100
RECHECK = 5.0  # seconds between a worker's checks for schedulers whose claimer died


def zone(tz: str | None) -> ZoneInfo | timezone:
    """The time zone named ``tz`` (IANA name), UTC for None."""
    if tz is None:
        return timezone.utc
    if not isinstance(tz, str) or not tz:
        raise InvalidArgumentError("tz must be a non-empty IANA time zone name")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidArgumentError(f"unknown time zone {tz!r}") from exc


def check_cron(expr: Any, tz: str | None) -> str:
    """A cron expression of 5 fields that fires at least once more."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise InvalidArgumentError(f"cron must be a str of 5 fields (minute hour day month weekday), got {expr!r}")
    if next_slot(expr, tz, int(time.time() * 1000)) is None:
        raise InvalidArgumentError(f"cron {expr!r} never fires")
    return expr


def next_slot(expr: str, tz: str | None, after_ms: int) -> int | None:
    """The first time (epoch ms) strictly after ``after_ms`` that ``expr`` matches in ``tz``."""
    after = datetime.fromtimestamp(after_ms / 1000, tz=zone(tz))
    try:
        fire = next(CronSim(expr, after))
    except CronSimError as exc:
        raise InvalidArgumentError(f"bad cron expression {expr!r}: {exc}") from exc
    except StopIteration:
        return None
    return round(fire.timestamp() * 1000)


async def settle(
    ctx: QueueContext, sid: str | bytes, generation: str | bytes, cron: str, tz: str | None, after_ms: int
) -> None:
    """Computes a claimed cron scheduler's next slot and hands it to the server."""
    slot = next_slot(cron, tz, after_ms)
    await ctx.call("sched_next", [sid, generation, "" if slot is None else slot])


async def settle_claimed(ctx: QueueContext) -> int:
    """Claims the cron schedulers waiting for a slot and settles them; returns how many."""
    reply = await ctx.call("sched_claim", [LEASE_MS, CLAIM_BATCH])
    now_ms = int(reply[0])
    for sid, generation, cron, tz, after in reply[1:]:
        await settle(ctx, sid, generation, cron.decode(), tz.decode() or None, max(now_ms, int(after)))
    return len(reply) - 1


class CronKeeper:
    """A worker's part in running cron schedulers.

    After a ``take`` that started an iteration job, and every RECHECK seconds, it settles the
    cron schedulers waiting for their next slot, in a task of its own.
    """

    def __init__(self, ctx: QueueContext, on_error: Callable[[BaseException], None]) -> None:
        self._ctx = ctx
        self._on_error = on_error
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._next_check = 0.0

    def seen(self, job_ids: Sequence[str]) -> None:
        """Called with the ids of the jobs a ``take`` activated."""
        now = time.monotonic()
        if now < self._next_check and not any(i.startswith(ITERATION_PREFIX) for i in job_ids):
            return
        self._next_check = now + RECHECK
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            try:
                while await settle_claimed(self._ctx) == CLAIM_BATCH:
                    pass
            except Exception as exc:  # noqa: BLE001 - reported; the next check tries again
                self._on_error(exc)
                return

    async def close(self) -> None:
        """Waits for a check in progress to end."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
