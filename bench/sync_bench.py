"""glidemq.sync benchmark: producer and worker rates of the synchronous API (run by hand).

    python bench/sync_bench.py [--jobs 5000] [--cpu-jobs 40] [--cpu-n 1000000] [--url URL]

Without ``--url`` it starts an embedded Valkey. Scenarios: sequential ``add`` from one
thread (and the async API's sequential awaits for reference), ``add`` from 8 threads sharing
one Queue, a thread-pool worker (concurrency 8) over no-op jobs, and a CPU-bound job (sum of
squares) with 4 threads (GIL-bound) against process pools of 1 and 2 processes. Every
scenario uses a fresh queue.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import glidemq
from glidemq.sync import Queue, Worker
from glidemq.testing import EmbeddedValkey


def noop(job: Any) -> None:
    """A job that does nothing."""


def cpu(job: Any) -> int:
    """A CPU-bound job: the sum of squares below ``job.data``."""
    return sum(i * i for i in range(job.data))


def rate(jobs: int, seconds: float) -> str:
    return f"{jobs / seconds:10.0f} jobs/s  ({jobs} jobs in {seconds:.2f}s)"


def add_sequential(url: str, jobs: int) -> tuple[float, float]:
    """Seconds and this process's CPU seconds (every thread) for ``jobs`` sequential adds."""
    with Queue(f"sb{uuid.uuid4().hex[:8]}", connection=url) as q:
        started, cpu_started = time.perf_counter(), time.process_time()
        for i in range(jobs):
            q.add("n", i)
        elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
        q.obliterate(force=True)
    return elapsed, cpu_used


def add_async_reference(url: str, jobs: int) -> tuple[float, float]:
    """The same sequential adds with the async API, for comparison."""
    async def run() -> tuple[float, float]:
        async with glidemq.Queue(f"sb{uuid.uuid4().hex[:8]}", connection=url) as q:
            started, cpu_started = time.perf_counter(), time.process_time()
            for i in range(jobs):
                await q.add("n", i)
            elapsed, cpu_used = time.perf_counter() - started, time.process_time() - cpu_started
            await q.obliterate(force=True)
        return elapsed, cpu_used

    return asyncio.run(run())


def add_threaded(url: str, jobs: int, threads: int = 8) -> float:
    with Queue(f"sb{uuid.uuid4().hex[:8]}", connection=url) as q, ThreadPoolExecutor(threads) as pool:
        per_thread = jobs // threads
        started = time.perf_counter()
        list(pool.map(lambda _: [q.add("n", i) for i in range(per_thread)], range(threads)))
        elapsed = time.perf_counter() - started
        q.obliterate(force=True)
    return elapsed


def process(url: str, jobs: int, processor: Callable[[Any], Any], data: Any, warm_data: Any,
            **worker_options: Any) -> float:
    """Seconds for a running worker to finish ``jobs`` jobs; its threads or child processes have
    run a job each before, so start-up is not counted."""
    name = f"sb{uuid.uuid4().hex[:8]}"
    with Queue(name, connection=url) as q, Worker(name, processor, connection=url, **worker_options) as worker:
        warm = q.add_bulk([("warm", warm_data) for _ in range(worker.concurrency)])
        for job in warm:
            job.wait_until_finished(timeout=120)
        done = threading.Event()
        finished = 0

        def count(*_: Any) -> None:
            nonlocal finished
            finished += 1
            if finished == jobs:
                done.set()

        worker.pause()
        worker.async_worker.on("completed", count)  # counted on the loop: no thread per event
        for start in range(0, jobs, 500):
            q.add_bulk([("j", data) for _ in range(min(500, jobs - start))])
        started = time.perf_counter()
        worker.resume()
        done.wait()
        elapsed = time.perf_counter() - started
        worker.close()
        q.obliterate(force=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--cpu-jobs", type=int, default=40)
    parser.add_argument("--cpu-n", type=int, default=1_000_000)
    args = parser.parse_args()
    server = None if args.url else EmbeddedValkey().start()
    url = args.url or server.url  # type: ignore[union-attr]
    try:
        jobs = args.jobs
        elapsed, cpu_used = add_sequential(url, jobs)
        print(f"add, 1 thread            {rate(jobs, elapsed)}  client CPU {cpu_used / jobs * 1e6:.0f} us/job")
        elapsed, cpu_used = add_async_reference(url, jobs)
        print(f"async add, sequential    {rate(jobs, elapsed)}  client CPU {cpu_used / jobs * 1e6:.0f} us/job"
              "  (reference)")
        print(f"add, 8 threads           {rate(jobs, add_threaded(url, jobs))}")
        print(f"worker, 8 threads, no-op {rate(jobs, process(url, jobs, noop, None, None, concurrency=8))}")
        cpu_jobs, n = args.cpu_jobs, args.cpu_n
        print(f"cpu job, 4 threads       {rate(cpu_jobs, process(url, cpu_jobs, cpu, n, 1, concurrency=4))}")
        for processes in (1, 2):
            elapsed = process(url, cpu_jobs, cpu, n, 1, processes=processes)
            print(f"cpu job, {processes} process{'es' if processes > 1 else '  '}      {rate(cpu_jobs, elapsed)}")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
