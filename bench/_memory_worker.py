"""The memory benchmark's worker process: one glidemq Worker, kept running until told to stop.

Started by ``bench/memory.py``; talks over stdin/stdout, one JSON object per line. It starts
the worker on the (empty) queue and says ``{"ready": true}`` once the worker is idle. Then it
answers each line read on stdin:

- ``status``: ``{"status": {...}}`` with the outcome counts and the sizes of the worker's
  internal collections (all cheap to read);
- ``status full``: the same plus ``python_objects`` (``len(gc.get_objects())``, which walks
  every tracked object: only for the idle samples) and, with ``--tracemalloc``, the traced size;
- ``snapshot``: with ``--tracemalloc``, keeps a snapshot to compare the next one with and
  answers ``{"snapshot": [lines]}``: the 15 biggest growths since the previous snapshot;
- ``stop``: closes the worker gracefully and answers ``{"closed": seconds}``, then exits.

The processor is a no-op ``async def``; the worker runs with default options.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import tracemalloc
from typing import Any

import glidemq
from glidemq._loop import run as run_loop

READY_SETTLE = 1.0  # seconds between the worker idling and the "ready" line
TOP_GROWTHS = 15


def send(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


class Tally:
    """Counts outcomes and keeps the wall-clock time of the first start and the last end."""

    def __init__(self) -> None:
        self.completed = self.failed = self.stalled = 0
        self.errors: list[str] = []
        self.first_start: float | None = None
        self.last_end: float | None = None

    async def noop(self, job: glidemq.Job) -> None:
        if self.first_start is None:
            self.first_start = time.time()

    def on_completed(self, job: glidemq.Job, result: Any) -> None:
        self.completed += 1
        self.last_end = time.time()

    def on_failed(self, job: glidemq.Job, exc: BaseException) -> None:
        self.failed += 1
        self.last_end = time.time()
        if len(self.errors) < 20:
            self.errors.append(f"job {job.id} failed: {exc!r}")

    def on_stalled(self, job_id: str) -> None:
        self.stalled += 1

    def on_error(self, exc: BaseException) -> None:
        if len(self.errors) < 20:
            self.errors.append(f"worker error: {exc!r}")


def internals(worker: glidemq.Worker) -> dict[str, int]:
    """Sizes of the worker's per-job collections: all of them should fall back to 0 when idle."""
    names = ("_active", "_ready", "_tasks", "_leases", "_traces", "_finished", "_outcomes")
    sizes = {name.lstrip("_"): len(getattr(worker, name, ())) for name in names}
    sizes["pending_callbacks"] = len(getattr(worker._events, "_pending", ()))
    return sizes


def status(tally: Tally, worker: glidemq.Worker, full: bool) -> dict[str, Any]:
    report: dict[str, Any] = {
        "completed": tally.completed,
        "failed": tally.failed,
        "stalled": tally.stalled,
        "errors": tally.errors,
        "first_start": tally.first_start,
        "last_end": tally.last_end,
        "cpu_seconds": time.process_time(),
        "gc_collections": [generation["collections"] for generation in gc.get_stats()],
        "worker": internals(worker),
    }
    if full:
        report["python_objects"] = len(gc.get_objects())
        if tracemalloc.is_tracing():
            report["traced_bytes"] = tracemalloc.get_traced_memory()[0]
    return report


class Snapshots:
    """tracemalloc snapshots, each compared with the one before."""

    def __init__(self) -> None:
        self._previous: tracemalloc.Snapshot | None = None

    def take(self) -> list[str]:
        if not tracemalloc.is_tracing():
            return []
        snapshot = tracemalloc.take_snapshot().filter_traces([
            tracemalloc.Filter(False, tracemalloc.__file__),
        ])
        previous, self._previous = self._previous, snapshot
        if previous is None:
            return []
        grown = sorted((s for s in snapshot.compare_to(previous, "lineno") if s.size_diff > 0),
                       key=lambda s: s.size_diff, reverse=True)
        return [str(stat) for stat in grown[:TOP_GROWTHS]]


async def serve(tally: Tally, worker: glidemq.Worker) -> None:
    """Answers the parent's lines until ``stop`` (or the end of stdin)."""
    snapshots = Snapshots()
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if line in ("status", "status full"):
            send({"status": status(tally, worker, full=line == "status full")})
        elif line == "snapshot":
            send({"snapshot": snapshots.take()})
        elif line in ("stop", ""):
            return
        else:
            raise SystemExit(f"unknown command {line!r}")


async def main(args: argparse.Namespace) -> None:
    if args.tracemalloc:
        tracemalloc.start()
    tally = Tally()
    worker = glidemq.Worker(args.queue, tally.noop, connection=args.url, concurrency=args.concurrency)
    worker.on("completed", tally.on_completed)
    worker.on("failed", tally.on_failed)
    worker.on("stalled", tally.on_stalled)
    worker.on("error", tally.on_error)
    idle = asyncio.Event()
    worker.on("drained", idle.set)
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(idle.wait(), args.ready_timeout)
    await asyncio.sleep(READY_SETTLE)
    send({"ready": True})
    await serve(tally, worker)
    closing = time.perf_counter()
    await worker.close()
    await asyncio.gather(run, return_exceptions=True)
    send({"closed": time.perf_counter() - closing})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--ready-timeout", type=float, default=30.0, help="seconds allowed to reach idle")
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slow)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_loop(main(parse_args()))
