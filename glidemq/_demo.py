"""``glidemq demo``: producers and a worker on one queue, with a live progress bar and a summary.

The throughput run adds the jobs with ``add_bulk`` while a worker processes them; a paced run
then adds jobs one at a time to an idle worker and measures pickup latency: from the moment
``add()`` is called to the moment the processor starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ._cli_common import UsageError, shown
from ._codec import USE_EXTENSIONS
from ._loop import run as run_loop
from .errors import GlideMQError
from .job import Job
from .queue import Queue
from .testing import EmbeddedValkey
from .worker import Worker

CHUNK = 1000
PRODUCERS = 2
LATENCY_PACE = 0.002
REFRESH = 0.1
STALL_LIMIT = 30.0
CLOSE_TIMEOUT = 5.0
PING = "ping"


@dataclass
class DemoStats:
    """What one demo run measured."""

    added: int = 0
    completed: int = 0
    failed: int = 0
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    sent: dict[int, float] = field(default_factory=dict)
    started: dict[int, float] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Jobs that ended, either way."""
        return self.completed + self.failed


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class Demo:
    """One demo run against one server, on a fresh queue that is deleted at the end."""

    def __init__(self, url: str, *, jobs: int, concurrency: int, latency_jobs: int, console: Console) -> None:
        self.url, self.jobs, self.concurrency, self.latency_jobs = url, jobs, concurrency, latency_jobs
        self.console = console
        self.queue_name = "demo-" + uuid.uuid4().hex[:10]
        self.stats = DemoStats()
        self._target = 0
        self._completed_count = self._failed_count = 0
        self._finished = asyncio.Event()
        self._worker_task: asyncio.Task[None] | None = None
        self._added_in: float | None = None

    async def process(self, job: Job) -> int:
        """The demo's processor: no work, so the numbers show the queue's own cost."""
        if job.name == PING:
            self.stats.started[job.data] = time.perf_counter()
        return 1

    @property
    def _done(self) -> int:
        return self._completed_count + self._failed_count

    def _completed(self, job: Job, result: object) -> None:
        self._completed_count += 1
        if self._done >= self._target:
            self._finished.set()

    def _failed(self, job: Job, exc: BaseException) -> None:
        self._failed_count += 1
        if self._done >= self._target:
            self._finished.set()

    async def run(self) -> DemoStats:
        """Runs the throughput run, then the latency run; always deletes the queue."""
        queue = Queue(self.queue_name, connection=self.url)
        worker = Worker(self.queue_name, self.process, connection=self.url, concurrency=self.concurrency)
        worker.on("completed", self._completed)
        worker.on("failed", self._failed)
        self._worker_task = asyncio.create_task(worker.run())
        try:
            await self._throughput(queue)
            self.stats.completed, self.stats.failed = self._completed_count, self._failed_count
            await self._latency(queue)
        finally:
            await worker.close(timeout=CLOSE_TIMEOUT)
            await asyncio.gather(self._worker_task, return_exceptions=True)
            with contextlib.suppress(GlideMQError):
                await queue.obliterate(force=True)
            await queue.close()
        return self.stats

    async def _wait_finished(self) -> None:
        """Waits until the jobs of the current run ended; fails if the worker stops or nothing moves."""
        assert self._worker_task is not None
        last, since = self._done, time.monotonic()
        while not self._finished.is_set():
            waiter = asyncio.ensure_future(self._finished.wait())
            await asyncio.wait({waiter, self._worker_task}, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if self._finished.is_set():
                return
            if self._worker_task.done():
                error = None if self._worker_task.cancelled() else self._worker_task.exception()
                raise GlideMQError(f"the demo worker stopped unexpectedly: {error!r}") from error
            if self._done != last:
                last, since = self._done, time.monotonic()
            elif time.monotonic() - since > STALL_LIMIT:
                raise GlideMQError(
                    f"no job finished for {STALL_LIMIT:.0f} s ({self._done:,} of {self._target:,} done); "
                    "is the server reachable and not overloaded?"
                )

    async def _produce(self, queue: Queue, starts: range) -> None:
        for start in starts:
            count = min(CHUNK, self.jobs - start)
            await queue.add_bulk([("demo", {"n": start + i}) for i in range(count)])
            self.stats.added += count

    async def _throughput(self, queue: Queue) -> None:
        self._target = self.jobs
        self._finished.clear()
        columns = (
            TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>8} jobs/s"), TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, disable=not self.console.is_terminal) as progress:
            added = progress.add_task("added", total=self.jobs, rate="")
            processed = progress.add_task("processed", total=self.jobs, rate="")
            start = time.perf_counter()
            chunks = range(0, self.jobs, CHUNK)
            producers = [
                asyncio.create_task(self._produce(queue, chunks[i::PRODUCERS])) for i in range(PRODUCERS)
            ]
            ticker = asyncio.create_task(self._tick(progress, added, processed, start))
            try:
                await asyncio.gather(*producers)
                self._added_in = time.perf_counter() - start
                await self._wait_finished()
            finally:
                for task in (*producers, ticker):
                    task.cancel()
                await asyncio.gather(*producers, ticker, return_exceptions=True)
            self.stats.elapsed = time.perf_counter() - start
            self._show(progress, added, processed, self.stats.elapsed)

    async def _tick(self, progress: Progress, added: TaskID, processed: TaskID, start: float) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            self._show(progress, added, processed, time.perf_counter() - start)

    def _show(self, progress: Progress, added: TaskID, processed: TaskID, elapsed: float) -> None:
        adding = max(self._added_in if self._added_in is not None else elapsed, 1e-9)
        elapsed = max(elapsed, 1e-9)
        progress.update(added, completed=self.stats.added, rate=f"{self.stats.added / adding:,.0f}")
        progress.update(processed, completed=self._done, rate=f"{self._done / elapsed:,.0f}")

    async def _latency(self, queue: Queue) -> None:
        if self.latency_jobs <= 0:
            return
        self._target = self._done + self.latency_jobs
        self._finished.clear()
        for seq in range(self.latency_jobs):
            self.stats.sent[seq] = time.perf_counter()
            await queue.add(PING, seq)
            await asyncio.sleep(LATENCY_PACE)
        await self._wait_finished()
        self.stats.latencies = [
            self.stats.started[seq] - sent for seq, sent in self.stats.sent.items() if seq in self.stats.started
        ]


def summary(stats: DemoStats, *, jobs: int, concurrency: int) -> list[str]:
    """The lines printed after a run; the last one holds the throughput in jobs/s."""
    codec = "compiled" if USE_EXTENSIONS else "pure Python"
    lines = [
        f"jobs added       {stats.added:,}",
        f"jobs completed   {stats.completed:,}" + (f" ({stats.failed:,} failed)" if stats.failed else ""),
        f"elapsed          {stats.elapsed:.2f} s (concurrency {concurrency}, {codec} codec)",
    ]
    if stats.latencies:
        p50, p99 = (percentile(stats.latencies, p) * 1000 for p in (50, 99))
        lines.append(
            f"pickup latency   p50 {p50:.2f} ms, p99 {p99:.2f} ms "
            f"(add() to processor start, {len(stats.latencies)} paced jobs)"
        )
    rate = stats.done / stats.elapsed if stats.elapsed > 0 else 0.0
    lines.append(f"throughput       {rate:,.0f} jobs/s ({jobs:,} jobs)")
    return lines


@contextlib.contextmanager
def _server(url: str | None, console: Console) -> Iterator[tuple[str, str]]:
    """The server to use and how to describe it; starts (and stops) an embedded one without a URL."""
    if url is not None:
        yield url, shown(url)
        return
    try:
        server = EmbeddedValkey().start()
    except (GlideMQError, OSError) as exc:
        raise GlideMQError(
            f"cannot start an embedded Valkey ({exc}); pass --url or set GLIDEMQ_URL to use a running server"
        ) from exc
    try:
        yield server.url, f"an embedded Valkey on {server.host}:{server.port}"
    finally:
        server.close()


async def _run_cancellable(demo: Demo) -> DemoStats:
    """Runs the demo; SIGTERM cancels it like Ctrl+C does, so the cleanup still runs."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except NotImplementedError:  # Windows event loops: SIGTERM keeps its default action
        return await demo.run()
    try:
        return await demo.run()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_demo_command(args: argparse.Namespace) -> int:
    """``glidemq demo``: prints what it runs on, a progress bar on a terminal, and the summary."""
    if args.latency_jobs < 0:
        raise UsageError("--latency-jobs must be 0 or more")
    console = Console(highlight=False)
    url = args.url or os.environ.get("GLIDEMQ_URL") or None
    with _server(url, console) as (server_url, where):
        console.print(
            f"glidemq demo: {args.jobs:,} jobs, concurrency {args.concurrency}, on {where}",
            soft_wrap=True, markup=False,
        )
        demo = Demo(
            server_url, jobs=args.jobs, concurrency=args.concurrency, latency_jobs=args.latency_jobs,
            console=console,
        )
        try:
            stats = run_loop(_run_cancellable(demo))
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
    for line in summary(stats, jobs=args.jobs, concurrency=args.concurrency):
        console.print(line, soft_wrap=True, markup=False)
    return 0
