"""Job schedulers (repeatable jobs): a job every N seconds or on a cron schedule.

A scheduler lives on the server next to the queue's jobs. Its pending iteration is an ordinary
delayed job with the id ``repeat:<scheduler id>:<slot ms>``; when a worker starts it, the next
iteration is created, so each slot gets one job however many workers run, and slots missed
while no worker ran give one catch-up job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import msgpack

from . import _validate as check
from ._codec import encode_add_batch, unpack
from ._context import QueueContext
from ._cron import check_cron, zone
from ._scheduler_keeper import LEASE_MS, settle
from .errors import InvalidArgumentError
from .options import encode_job

# set by the scheduler itself, or meaningless for a repeated job
NOT_FOR_SCHEDULERS = {
    "job_id": "is set by the scheduler",
    "delay": "is set by the schedule (use start)",
    "deduplication": "does not apply: the scheduler makes one job per slot",
}


@dataclass(frozen=True)
class SchedulerInfo:
    """One job scheduler of a queue, as ``Queue.get_job_schedulers`` reports it.

    Times are epoch seconds (``float``); ``every`` is in seconds. ``next_run`` is the slot of
    the pending iteration (None when the scheduler has ended: limit reached or past its end).
    ``count`` is how many iterations it has created.
    """

    id: str
    every: float | None
    cron: str | None
    tz: str | None
    next_run: float | None
    count: int
    name: str
    data: Any
    start: float | None
    end: float | None
    limit: int | None


def _epoch_ms(value: Any, what: str) -> int:
    """A datetime as epoch ms; naive datetimes are UTC."""
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{what} must be a datetime, got {type(value).__name__}")
    moment: datetime = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)


def _text(value: int | str | None) -> str:
    return "" if value is None else str(value)


def scheduler_args(
    scheduler_id: Any,
    *,
    every: float | timedelta | None,
    cron: str | None,
    tz: str | None,
    start: datetime | None,
    end: datetime | None,
    limit: int | None,
    name: str,
    data: Any,
    job_options: Mapping[str, Any],
    max_payload: int,
) -> list[str | bytes]:
    """Validates an upsert and gives the arguments of ``sched_upsert`` (without the lease)."""
    check.key_part(scheduler_id, "scheduler_id")
    if (every is None) == (cron is None):
        raise InvalidArgumentError("give exactly one of every and cron")
    zone(tz)
    every_ms = None
    if every is not None:
        every_ms = round(check.seconds(every, "every", positive=True) * 1000)
        if every_ms < 1:
            raise InvalidArgumentError("every must be at least 1 ms")
    else:
        check_cron(cron, tz)
    start_ms = None if start is None else _epoch_ms(start, "start")
    end_ms = None if end is None else _epoch_ms(end, "end")
    if end_ms is not None and end_ms <= (round(time.time() * 1000) if start_ms is None else start_ms):
        raise InvalidArgumentError("end must be after start (default: now)")
    if limit is not None:
        check.integer(limit, "limit", minimum=1)
    for option, why in NOT_FOR_SCHEDULERS.items():
        if option in job_options:
            raise InvalidArgumentError(f"job option {option} {why}")
    template = encode_add_batch([encode_job(name, data, job_options, max_payload)])
    return [
        scheduler_id, _text(every_ms), cron or "", tz or "", _text(start_ms), _text(end_ms), _text(limit), template,
    ]


async def upsert_scheduler(ctx: QueueContext, args: list[str | bytes]) -> None:
    """Creates or replaces a scheduler from validated ``scheduler_args``."""
    now_ms, generation, after = await ctx.call("sched_upsert", [*args, LEASE_MS])
    if after >= 0:  # a cron scheduler: this caller computes the first slot
        cron, tz = str(args[2]), str(args[3]) or None
        await settle(ctx, args[0], str(generation), cron, tz, max(int(now_ms), int(after)))


def _seconds(ms: bytes) -> float | None:
    return int(ms) / 1000.0 if ms else None


def _info(row: list[bytes]) -> SchedulerInfo:
    sid, every, cron, tz, start, end, limit, template, count, next_run = row
    job = msgpack.unpackb(template, raw=True)[0]
    return SchedulerInfo(
        id=sid.decode(), every=_seconds(every), cron=cron.decode() or None, tz=tz.decode() or None,
        next_run=_seconds(next_run), count=int(count or 0), name=job[1].decode(), data=unpack(job[2]),
        start=_seconds(start), end=_seconds(end), limit=int(limit) if limit else None,
    )


async def list_schedulers(ctx: QueueContext) -> list[SchedulerInfo]:
    """Every scheduler of the queue, oldest first."""
    return [_info(row) for row in await ctx.call("sched_list", [])]


async def remove_scheduler(ctx: QueueContext, scheduler_id: Any) -> bool:
    """Deletes a scheduler and its pending iteration; False if there was none."""
    check.key_part(scheduler_id, "scheduler_id")
    return bool(await ctx.call("sched_remove", [scheduler_id]) == 1)
