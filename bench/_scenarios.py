"""The benchmark scenarios. Each uses a queue of its own on the same server."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from _probe import ServerProbe, ServerUsage
from _worker_process import WorkerProcess

import glidemq

IN_FLIGHT = 200
LATENCY_CONCURRENCY = 10


@dataclass
class Result:
    """One scenario's figures. ``cpu_seconds`` is the CPU of the measured client process."""

    name: str
    label: str
    jobs: int
    seconds: float
    server: ServerUsage
    cpu_seconds: float
    cpu_owner: str  # "producer" or "worker"
    extra: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def jobs_per_sec(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    def per_job(self, value: float) -> float:
        return value / self.jobs if self.jobs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 4),
            "jobs_per_sec": round(self.jobs_per_sec, 1),
            "server_commands_per_job": round(self.per_job(self.server.commands), 2),
            "server_fcalls_per_job": round(self.per_job(self.server.fcalls), 3),
            "server_cpu_us_per_job": round(self.per_job(self.server.cpu_seconds) * 1e6, 2),
            f"{self.cpu_owner}_cpu_us_per_job": round(self.per_job(self.cpu_seconds) * 1e6, 2),
            "server_calls": self.server.calls,
            **self.extra,
            "problems": self.problems,
        }


@dataclass
class Variant:
    """A feature switched on for a processing run: job options, worker options, queue settings."""

    name: str
    label: str
    job_options: Callable[[int], dict[str, Any]] = lambda i: {}
    worker_options: dict[str, Any] = field(default_factory=dict)
    prepare: Callable[[glidemq.Queue], Awaitable[Any]] | None = None
    keeps_completed: bool = True  # False when the jobs remove themselves on completion
    fill: Callable[[glidemq.Queue, int], Awaitable[Any]] | None = None  # adds the jobs instead of add_bulk


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def fresh_queue_name(scenario: str) -> str:
    return f"bench-{scenario}-{uuid.uuid4().hex[:10]}"


class Bench:
    """Runs the scenarios against one server."""

    def __init__(self, url: str, probe: ServerProbe, worker_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.probe = probe
        self.worker_options = worker_options or {}  # every worker it starts (a variant's own win)

    async def _produce(
        self, name: str, label: str, jobs: int, work: Callable[[glidemq.Queue], Awaitable[Any]]
    ) -> Result:
        async with glidemq.Queue(fresh_queue_name(name), connection=self.url) as queue:
            await queue.count()  # connects (and loads the library) outside the timing
            before = await self.probe.sample()
            cpu0, start = time.process_time(), time.perf_counter()
            await work(queue)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
            after = await self.probe.sample()
            result = Result(name, label, jobs, seconds, ServerUsage.between(before, after), cpu, "producer")
            counts = await queue.get_job_counts()
            if counts["waiting"] != jobs:
                result.problems.append(f"{counts['waiting']} jobs waiting after adding {jobs}")
            await queue.obliterate(force=True)
        return result

    async def add_sequential(self, jobs: int) -> Result:
        async def work(queue: glidemq.Queue) -> None:
            for i in range(jobs):
                await queue.add("noop", {"i": i})

        return await self._produce("add_sequential", "add, sequential awaits", jobs, work)

    async def add_concurrent(self, jobs: int, in_flight: int = IN_FLIGHT) -> Result:
        async def work(queue: glidemq.Queue) -> None:
            counter = iter(range(jobs))

            async def lane() -> None:
                for i in counter:
                    await queue.add("noop", {"i": i})

            await asyncio.gather(*(lane() for _ in range(in_flight)))

        result = await self._produce("add_concurrent", f"add, {in_flight} in flight", jobs, work)
        result.extra["in_flight"] = in_flight
        return result

    async def add_bulk(self, jobs: int) -> Result:
        items: list[tuple[str, Any]] = [("noop", {"i": i}) for i in range(jobs)]

        async def work(queue: glidemq.Queue) -> None:
            await queue.add_bulk(items)

        return await self._produce("add_bulk", f"add_bulk of {jobs}", jobs, work)

    async def process(
        self,
        jobs: int,
        concurrency: int,
        *,
        variant: Variant | None = None,
    ) -> Result:
        name = f"process_c{concurrency}" + (f"_{variant.name}" if variant else "")
        async with glidemq.Queue(fresh_queue_name(name), connection=self.url) as queue:
            job_options = variant.job_options if variant else (lambda i: {})
            if variant is not None and variant.fill is not None:
                await variant.fill(queue, jobs)
            else:
                await queue.add_bulk([("noop", {"i": i}, job_options(i)) for i in range(jobs)])
            if variant is not None and variant.prepare is not None:
                await variant.prepare(queue)
            timeout = 60.0 + jobs / 200
            worker = await WorkerProcess.start(
                self.url, queue.name, jobs, concurrency, "throughput", timeout,
                {**self.worker_options, **(variant.worker_options if variant else {})},
            )
            before = await self.probe.sample()
            report = await worker.go(timeout)
            after = await self.probe.sample()
            problems = worker.problems(report)
            problems += await worker.finish()
            counts = await queue.get_job_counts()
            if counts["completed"] != (jobs if variant is None or variant.keeps_completed else 0):
                problems.append(f"{counts['completed']} of {jobs} jobs completed; counts {counts}")
            await queue.obliterate(force=True)
        label = f"process, concurrency {concurrency}" + (f", {variant.label}" if variant else "")
        return Result(
            name, label, jobs, report["seconds"],
            ServerUsage.between(before, after), report["cpu_seconds"], "worker",
            {"concurrency": concurrency, "first_job_after_ms": _ms(report["first_job_after"]),
             "steady_jobs_per_sec": _steady_rate(jobs, report), "worker_close_ms": _ms(worker.closed_after)},
            problems,
        )

    async def latency(self, rate: float, duration: float, concurrency: int = LATENCY_CONCURRENCY) -> Result:
        jobs = max(1, round(rate * duration))
        async with glidemq.Queue(fresh_queue_name("latency"), connection=self.url) as queue:
            await queue.count()
            timeout = duration + 60.0
            worker = await WorkerProcess.start(
                self.url, queue.name, jobs, concurrency, "latency", timeout, self.worker_options
            )
            before = await self.probe.sample()
            await worker.send_go()
            start = time.perf_counter()
            lag = await _paced_adds(queue, jobs, rate)
            seconds = time.perf_counter() - start
            report = await worker.result(timeout)
            after = await self.probe.sample()
            problems = worker.problems(report)
            problems += await worker.finish()
            await queue.obliterate(force=True)
        extra: dict[str, Any] = {
            "target_rate": rate, "concurrency": concurrency, "max_pacing_lag_ms": _ms(lag),
            "worker_close_ms": _ms(worker.closed_after),
        }
        client: list[float] = report["latencies"]
        server: list[float] = report["server_latencies"]
        if client:
            extra.update({
                "p50_ms": _ms(percentile(client, 50)), "p90_ms": _ms(percentile(client, 90)),
                "p99_ms": _ms(percentile(client, 99)), "max_ms": _ms(max(client)),
                "mean_ms": _ms(sum(client) / len(client)),
            })
        if server:
            extra.update({
                "server_clock_p50_ms": _ms(percentile(server, 50)),
                "server_clock_p99_ms": _ms(percentile(server, 99)),
            })
        return Result(
            "latency", f"pickup latency at {rate:g} jobs/s", jobs, seconds, ServerUsage.between(before, after),
            report["cpu_seconds"], "worker", extra, problems,
        )


async def _paced_adds(queue: glidemq.Queue, jobs: int, rate: float) -> float:
    """Adds ``jobs`` jobs at ``rate`` per second, each stamped with its add time; returns the worst lag."""

    async def add(i: int) -> None:
        await queue.add("tick", {"t": time.time(), "i": i})

    start = time.perf_counter()
    worst = 0.0
    pending: list[asyncio.Task[None]] = []
    for i in range(jobs):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            worst = max(worst, -wait)
        pending.append(asyncio.create_task(add(i)))
    await asyncio.gather(*pending)
    return worst


def _steady_rate(jobs: int, report: dict[str, Any]) -> float | None:
    """Jobs per second counted from the first job's start: without the worker's connection setup."""
    first: float | None = report["first_job_after"]
    seconds = float(report["seconds"])
    if first is None or seconds <= first:
        return None
    return round((jobs - 1) / (seconds - first), 1)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
