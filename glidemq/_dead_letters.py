"""Copying a worker's final failures into its dead-letter queue.

The function library writes each final failure into an outbox of the failing job's queue
in the same call that fails the job. This module copies outbox entries into the dead-letter
queue (with a job id derived from the origin, so a copy made twice is one job) and only then
drops them from the outbox: a worker dying in between leaves them for the next delivery.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ._codec import unpack
from ._context import QueueContext
from .queue import Queue

DELIVERY_BATCH = 100


def envelope(origin: str, entry: bytes) -> tuple[str, str, dict[str, Any]]:
    """(job id, name, data) of the dead-letter job for one outbox entry."""
    raw_id, raw_name, data, raw_reason, raw_attempts, raw_failed = msgpack.unpackb(entry, raw=True)
    job_id, name, failed_ms = raw_id.decode(), raw_name.decode(), raw_failed.decode()
    reason, attempts_made = raw_reason.decode(errors="replace"), raw_attempts.decode()
    body = {
        "name": name,
        "data": unpack(data) if data else None,
        "reason": reason,
        "queue": origin,
        "id": job_id,
        "attempts_made": int(attempts_made),
        "failed_on": int(failed_ms) / 1000.0,
    }
    # internal ids (a scheduler's "repeat:<id>:<slot>") may hold ':', which custom ids may not
    return f"{origin}.{job_id.replace(':', '.')}.{failed_ms}", name, body


async def deliver(ctx: QueueContext, target: Queue) -> int:
    """Copies the outbox of ``ctx``'s queue into ``target``; returns how many entries moved."""
    moved = 0
    while True:
        entries: list[bytes] = await ctx.call("dead_letters", [str(DELIVERY_BATCH)])
        if not entries:
            return moved
        jobs = []
        for entry in entries:
            job_id, name, body = envelope(ctx.name, entry)
            jobs.append((name, body, {"job_id": job_id}))
        await target.add_bulk(jobs)
        await ctx.call("ack_dead_letters", list(entries))
        moved += len(entries)
        if len(entries) < DELIVERY_BATCH:
            return moved
