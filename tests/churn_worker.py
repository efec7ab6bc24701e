"""A worker process for the kill-at-random fault tests.

    python -m tests.churn_worker URL QUEUE [--concurrency N] [--lock-duration S]
        [--stalled-interval S] [--max-stalled-count N] [--sleep S] [--fail-rate P]

Each job sleeps ``--sleep`` seconds, then raises with probability ``--fail-rate`` or returns
its id. Runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import random

import glidemq


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("queue")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lock-duration", type=float, default=1.0)
    parser.add_argument("--stalled-interval", type=float, default=0.5)
    parser.add_argument("--max-stalled-count", type=int, default=1)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args(argv)

    async def processor(job: glidemq.Job) -> str:
        if args.sleep:
            await asyncio.sleep(args.sleep)
        if random.random() < args.fail_rate:
            raise RuntimeError("random failure")
        return job.id

    worker = glidemq.Worker(
        args.queue, processor, connection=args.url, concurrency=args.concurrency,
        lock_duration=args.lock_duration, stalled_interval=args.stalled_interval,
        max_stalled_count=args.max_stalled_count,
    )
    async with worker:
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main())
