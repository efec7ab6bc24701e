"""A worker process for the fault tests, to be killed, frozen and thawed.

    python -m tests.fault_worker URL QUEUE [--concurrency N] [--lock-duration S]
                                           [--stalled-interval S] [--max-stalled-count N]

Its processor leaves a trail in plain keys beside the queue (see ``trail_key``):
``runs:<id>`` counts the runs that started, ``pid:<id>`` holds the pid of the latest run,
``ends:<id>`` counts the runs whose processor returned or raised. ``ready:<pid>`` is set
once the worker runs. ``job.data`` may hold ``sleep`` (seconds, awaited), ``result`` (the
return value) and ``fail`` (raise instead of returning).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from glide import GlideClient, GlideClientConfiguration, NodeAddress

import glidemq


def trail_key(queue: str, what: str) -> str:
    """The key of one trail entry, e.g. ``trail_key(q, f"runs:{job_id}")``."""
    return f"fault:{{{queue}}}:{what}"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--lock-duration", type=float, default=1.0)
    parser.add_argument("--stalled-interval", type=float, default=0.5)
    parser.add_argument("--max-stalled-count", type=int, default=1)
    args = parser.parse_args(argv)
    connection = glidemq.Connection(args.url)
    trail = await GlideClient.create(GlideClientConfiguration([NodeAddress(connection.host, connection.port)]))
    pid = str(os.getpid())

    async def processor(job: glidemq.Job) -> Any:
        data = job.data or {}
        # pid first: whoever sees the run counted also sees which process runs it
        await trail.set(trail_key(args.queue, f"pid:{job.id}"), pid)
        await trail.incr(trail_key(args.queue, f"runs:{job.id}"))
        try:
            await asyncio.sleep(float(data.get("sleep", 0)))
            if data.get("fail"):
                raise RuntimeError(f"failed in process {pid}")
            return data.get("result", pid)
        finally:
            await trail.incr(trail_key(args.queue, f"ends:{job.id}"))

    worker = glidemq.Worker(
        args.queue, processor, connection=connection, concurrency=args.concurrency,
        lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
        max_stalled_count=args.max_stalled_count,
    )
    async with worker:
        await trail.set(trail_key(args.queue, f"ready:{pid}"), "1")
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main())
