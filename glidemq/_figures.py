"""What the server knows about a queue at one moment: counts, finished totals, live workers.

Shared by the metrics exporter and ``glidemq watch``/``glidemq queues``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .queue import Queue
from .registry import list_workers, registry_base

# keys that exist while a queue holds anything (jobs, events, settings, workers, totals)
QUEUE_KEYS = ("events", "wait", "prio", "delayed", "active", "completed", "failed", "meta", "metrics", "id")


@dataclass(frozen=True)
class QueueFigures:
    """One queue's job counts by state, jobs completed and failed for good so far, live workers."""

    queue: str
    counts: dict[str, int]
    completed_total: int
    failed_total: int
    workers: int


async def read_figures(queue: Queue) -> QueueFigures:
    """The figures of one queue, read now."""
    counts = await queue.get_job_counts()
    completed, failed = await queue._ctx.call("metrics", [])
    workers = await list_workers(queue._ctx)
    return QueueFigures(queue.name, counts, int(completed), int(failed), len(workers))


async def queue_exists(queue: Queue) -> bool:
    """True when the queue has any key on the server, or a worker (that may not have seen a job yet)."""
    ctx = queue._ctx
    found = await ctx.client.command(["EXISTS", *(ctx.key(k) for k in QUEUE_KEYS)], key=ctx.base)
    if int(found) > 0:
        return True
    workers = registry_base(ctx.prefix, ctx.name) + "index"
    return int(await ctx.client.command(["EXISTS", workers], key=workers)) > 0
