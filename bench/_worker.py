"""The benchmark's worker process: runs one glidemq Worker and reports what it measured.

Started by ``bench/run.py``; talks over stdin/stdout, one JSON object per line:
``{"ready": true}`` once set up, then (after a ``go`` line on stdin) ``{"result": {...}}``
after the expected number of jobs completed, then ``{"closed": seconds}``.

Modes: ``throughput`` runs no-op jobs of a pre-filled queue and times them from the start
of ``Worker.run()`` to the last completion; ``latency`` starts on an empty queue, says
ready once it idles, and records each job's pickup latency (jobs carry their add time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import glidemq
from glidemq._loop import run as run_loop

READY_SETTLE = 0.2


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def wait_for_go() -> None:
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "go":
        raise SystemExit(f"expected 'go', got {line!r}")


class Tally:
    """Counts outcomes; ``done`` is set when ``expected`` jobs ended."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.completed = self.failed = self.stalled = 0
        self.errors: list[str] = []
        self.first_start: float | None = None
        self.last_end = 0.0
        self.done = asyncio.Event()
        self.latencies: list[float] = []
        self.server_latencies: list[float] = []

    def on_completed(self, job: glidemq.Job, result: Any) -> None:
        self.completed += 1
        self._ended()

    def on_failed(self, job: glidemq.Job, exc: BaseException) -> None:
        self.failed += 1
        self.errors.append(f"job {job.id} failed: {exc!r}")
        self._ended()

    def on_stalled(self, job_id: str) -> None:
        self.stalled += 1

    def on_error(self, exc: BaseException) -> None:
        self.errors.append(f"worker error: {exc!r}")

    def _ended(self) -> None:
        if self.completed + self.failed >= self.expected:
            self.last_end = time.perf_counter()
            self.done.set()

    async def noop(self, job: glidemq.Job) -> None:
        if self.first_start is None:
            self.first_start = time.perf_counter()

    async def stamp(self, job: glidemq.Job) -> None:
        self.latencies.append(time.time() - job.data["t"])
        if job.processed_on is not None:
            self.server_latencies.append(job.processed_on - job.timestamp)


async def main(args: argparse.Namespace) -> None:
    tally = Tally(args.jobs)
    processor = tally.stamp if args.mode == "latency" else tally.noop
    options: dict[str, Any] = json.loads(args.worker_options)
    if "limiter" in options:
        options["limiter"] = glidemq.RateLimit(*options["limiter"])
    if os.environ.get("GLIDEMQ_BENCH_METRICS") == "1":  # bench/metrics_overhead.py
        options["metrics"] = True
    worker = glidemq.Worker(args.queue, processor, connection=args.url, concurrency=args.concurrency, **options)
    worker.on("completed", tally.on_completed)
    worker.on("failed", tally.on_failed)
    worker.on("stalled", tally.on_stalled)
    worker.on("error", tally.on_error)

    if args.mode == "latency":
        idle = asyncio.Event()
        worker.on("drained", idle.set)
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(idle.wait(), args.timeout)
        await asyncio.sleep(READY_SETTLE)  # lets the blocking connection settle in
        send({"ready": True})
        await wait_for_go()
        cpu0, start = time.process_time(), time.perf_counter()
    else:
        send({"ready": True})
        await wait_for_go()
        cpu0, start = time.process_time(), time.perf_counter()
        run = asyncio.create_task(worker.run())

    done = asyncio.create_task(tally.done.wait())
    await asyncio.wait({done, run}, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
    finished = done.done()
    if not finished:
        done.cancel()
        tally.last_end = time.perf_counter()
        if run.done() and run.exception() is not None:
            tally.errors.append(f"Worker.run() raised {run.exception()!r}")
        elif run.done():
            tally.errors.append("Worker.run() returned before the jobs were done")
    cpu = time.process_time() - cpu0
    send({"result": {
        "seconds": tally.last_end - start,
        "cpu_seconds": cpu,
        "completed": tally.completed,
        "failed": tally.failed,
        "stalled": tally.stalled,
        "finished": finished,
        "errors": tally.errors[:20],
        "first_job_after": None if tally.first_start is None else tally.first_start - start,
        "latencies": tally.latencies,
        "server_latencies": tally.server_latencies,
    }})
    closing = time.perf_counter()
    await worker.close()
    await asyncio.gather(run, return_exceptions=True)
    send({"closed": time.perf_counter() - closing})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--jobs", type=int, required=True, help="jobs to wait for")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--mode", choices=("throughput", "latency"), default="throughput")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--worker-options", default="{}", help='JSON: {"limiter": [max, seconds], '
                        '"dead_letter_queue": name, "prefetch": n}')
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_loop(main(parse_args()))
