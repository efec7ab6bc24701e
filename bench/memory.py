"""glidemq memory benchmark: a worker's RSS over a long run, idle before, under load, idle after.

    python bench/memory.py [--jobs 1000000] [--url URL] [--concurrency 50] [--quick]

Without ``--url`` it starts an embedded Valkey (glidemq.testing.EmbeddedValkey). One worker runs
in a subprocess of its own (bench/_memory_worker.py, a no-op async processor, default options);
this process feeds it with ``add_bulk`` while keeping at most BACKLOG jobs waiting, and samples
the worker's RSS (VmRSS of /proc/<pid>/status) and the server's ``used_memory``: once idle before
the first job, every SAMPLE_SECONDS or SAMPLE_JOBS completed jobs during the run, at the last
job, and once idle again after it. The jobs remove themselves on completion unless
``--keep-completed`` is given. Prints a table and writes JSON (bench/results/memory.json by
default). Exits 1 if jobs were lost or the worker reported errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _cpus import add_pin_option
from _probe import ServerProbe, parse_field
from run import load, on_server, run_meta

import glidemq

WORKER_SCRIPT = Path(__file__).with_name("_memory_worker.py")
DEFAULT_OUTPUT = Path(__file__).parent / "results" / "memory.json"
DEFAULT_JOBS, QUICK_JOBS = 1_000_000, 5_000
BACKLOG = 50_000  # at most this many jobs waiting at any time
BATCH = 10_000  # jobs per add_bulk call
SAMPLE_SECONDS = 2.0
SAMPLE_JOBS = 50_000
POLL = 0.25  # seconds between looks at the worker's progress
WARM_FRACTION = 0.1  # the "warm" sample is the first one after this share of the jobs
IDLE_SETTLE = 2.0  # seconds between the last job and the idle sample
STALL_TIMEOUT = 60.0  # give up when no job completed for this long
REPLY_TIMEOUT = 30.0
MB = 1024 * 1024


@dataclass
class Sample:
    """One moment of the run. ``seconds`` counts from the first add."""

    phase: str  # idle_before, run, end, idle_after
    seconds: float
    added: int
    completed: int
    rss_mb: float
    rss_peak_mb: float
    server_used_mb: float
    load_1min: float
    worker: dict[str, int] = field(default_factory=dict)
    gc_collections: list[int] = field(default_factory=list)
    python_objects: int | None = None


class MemoryWorker:
    """The ``_memory_worker.py`` subprocess and its line protocol."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.pid = process.pid
        self.closed_after: float | None = None

    @classmethod
    async def start(cls, url: str, queue: str, concurrency: int, trace: bool) -> MemoryWorker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), "--url", url, "--queue", queue,
            "--concurrency", str(concurrency), *(["--tracemalloc"] if trace else []),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(process)
        await worker._expect("ready")
        return worker

    async def _expect(self, key: str) -> Any:
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), REPLY_TIMEOUT)
        except asyncio.TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise RuntimeError(f"worker process sent no {key!r} within {REPLY_TIMEOUT:g}s") from None
        if not line:
            code = await self._process.wait()
            raise RuntimeError(f"worker process exited with code {code} before sending {key!r}")
        return json.loads(line)[key]

    async def ask(self, command: str, key: str) -> Any:
        """Sends one command line and returns the ``key`` of its answer."""
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(command.encode() + b"\n")
            await self._process.stdin.drain()
        except ConnectionError:
            code = await self._process.wait()
            raise RuntimeError(f"worker process exited with code {code} before {command!r}") from None
        return await self._expect(key)

    async def status(self, full: bool = False) -> dict[str, Any]:
        report: dict[str, Any] = await self.ask("status full" if full else "status", "status")
        return report

    async def stop(self) -> list[str]:
        """Closes the worker gracefully; returns what went wrong."""
        try:
            self.closed_after = await self.ask("stop", "closed")
        except RuntimeError as exc:
            return [f"worker close: {exc}"]
        code = await self._process.wait()
        return [] if code == 0 else [f"worker process exited with code {code}"]

    async def kill(self) -> None:
        if self._process.returncode is None:
            self._process.kill()
            await self._process.wait()


def rss_mb(pid: int) -> tuple[float, float]:
    """VmRSS and VmHWM (the peak) of a process, in MiB, from /proc/<pid>/status."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


class Sampler:
    """Takes samples of the worker process and the server; knows the producer's progress."""

    def __init__(self, worker: MemoryWorker, probe: ServerProbe, trace: bool = False) -> None:
        self.worker = worker
        self.probe = probe
        self.trace = trace  # take a tracemalloc snapshot at the warm sample
        self.samples: list[Sample] = []
        self.last_status: dict[str, Any] = {}  # the worker's answer behind the last sample
        self.added = 0
        self.started: float | None = None  # wall clock of the first add

    async def server_used_mb(self) -> float:
        return int(parse_field(await self.probe.info("memory"), "used_memory") or 0) / MB

    async def take(self, phase: str, status: dict[str, Any] | None = None, full: bool = False) -> Sample:
        """Records a sample; ``status`` is the worker's answer if the caller already has it.

        The RSS is read before asking for a status, so the status's own work is not in it.
        """
        rss, peak = rss_mb(self.worker.pid)
        if status is None:
            status = await self.worker.status(full)
        self.last_status = status
        sample = Sample(
            phase, time.time() - self.started if self.started else 0.0, self.added, status["completed"],
            round(rss, 2), round(peak, 2), round(await self.server_used_mb(), 2), round(os.getloadavg()[0], 2),
            status["worker"], status["gc_collections"], status.get("python_objects"),
        )
        self.samples.append(sample)
        return sample


async def produce(queue: glidemq.Queue, jobs: int, options: dict[str, Any], sampler: Sampler) -> None:
    """Adds ``jobs`` jobs in batches of BATCH, never letting more than BACKLOG wait."""
    sampler.started = time.time()
    while sampler.added < jobs:
        waiting = (await queue.get_job_counts())["waiting"]
        room = min(BACKLOG - waiting, jobs - sampler.added)
        if room < min(BATCH, jobs - sampler.added):
            await asyncio.sleep(0.05)
            continue
        count = min(room, BATCH)
        start = sampler.added
        await queue.add_bulk([("noop", {"i": i}, options) for i in range(start, start + count)])
        sampler.added += count


async def watch(sampler: Sampler, jobs: int, producer: asyncio.Task[None]) -> dict[str, Any]:
    """Samples during the run until every job ended; returns the worker's last status."""
    step = min(SAMPLE_JOBS, max(1, jobs // 20))
    next_jobs, next_time = step, time.monotonic() + SAMPLE_SECONDS
    progress, progress_at = 0, time.monotonic()
    warm = False
    while True:
        await asyncio.sleep(POLL)
        status = await sampler.worker.status()
        ended = status["completed"] + status["failed"]
        now = time.monotonic()
        if ended >= jobs:
            await sampler.take("end", status)
            return status
        if producer.done() and producer.exception() is not None:
            raise RuntimeError(f"producer failed: {producer.exception()!r}")
        if ended > progress:
            progress, progress_at = ended, now
        elif now - progress_at > STALL_TIMEOUT:
            raise RuntimeError(f"no job ended for {STALL_TIMEOUT:g}s, {ended} of {jobs} done")
        if ended >= next_jobs or now >= next_time:
            await sampler.take("run", status)
            next_jobs, next_time = (ended // step + 1) * step, now + SAMPLE_SECONDS
            if sampler.trace and not warm and ended >= WARM_FRACTION * jobs:
                warm = True
                await sampler.worker.ask("snapshot", "snapshot")  # the baseline of the growth


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x; None with fewer than two distinct x."""
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance


def per_100k(points: list[tuple[float, float]]) -> float | None:
    fitted = slope(points)
    return None if fitted is None else round(fitted * 100_000, 3)


def summarize(samples: list[Sample], jobs: int, seconds: float | None) -> dict[str, Any]:
    """The headline figures: RSS at the four moments, growth after warm-up, its fitted slope."""
    by_phase = {s.phase: s for s in samples}  # the last of each phase
    loaded = [s for s in samples if s.phase in ("run", "end")]
    warm = next((s for s in loaded if s.completed >= WARM_FRACTION * jobs), by_phase["end"])
    after_warm = [s for s in loaded if s.completed >= warm.completed]
    end = by_phase["end"]
    return {
        "idle_rss_mb": by_phase["idle_before"].rss_mb,
        "warm_rss_mb": warm.rss_mb,
        "warm_at_jobs": warm.completed,
        "end_rss_mb": end.rss_mb,
        "idle_after_rss_mb": by_phase["idle_after"].rss_mb,
        "peak_rss_mb": by_phase["idle_after"].rss_peak_mb,
        "growth_warm_to_end_mb": round(end.rss_mb - warm.rss_mb, 2),
        "rss_slope_mb_per_100k_jobs": per_100k([(s.completed, s.rss_mb) for s in after_warm]),
        "server_used_mb_idle_before": by_phase["idle_before"].server_used_mb,
        "server_used_mb_end": end.server_used_mb,
        "server_used_slope_mb_per_100k_jobs": per_100k([(s.completed, s.server_used_mb) for s in after_warm]),
        "python_objects_idle_before": by_phase["idle_before"].python_objects,
        "python_objects_idle_after": by_phase["idle_after"].python_objects,
        "samples_after_warm": len(after_warm),
        "seconds": None if seconds is None else round(seconds, 3),
        "jobs_per_sec": round(jobs / seconds, 1) if seconds else None,
    }


def table(samples: list[Sample], summary: dict[str, Any]) -> str:
    """The samples as a plain-text table, then the headline figures."""
    lines = [f"{'moment':<12}{'seconds':>9}{'jobs done':>12}{'worker RSS MB':>15}{'server MB':>11}{'load':>7}"]
    for s in samples:
        lines.append(f"{s.phase:<12}{s.seconds:>9.1f}{s.completed:>12,}{s.rss_mb:>15.1f}"
                     f"{s.server_used_mb:>11.1f}{s.load_1min:>7.2f}")
    rate = summary["jobs_per_sec"]
    lines += [
        "",
        f"worker RSS: idle {summary['idle_rss_mb']:.1f} MB, warm {summary['warm_rss_mb']:.1f} MB "
        f"(after {summary['warm_at_jobs']:,} jobs), end {summary['end_rss_mb']:.1f} MB, "
        f"idle after {summary['idle_after_rss_mb']:.1f} MB, peak {summary['peak_rss_mb']:.1f} MB",
        f"growth warm -> end: {summary['growth_warm_to_end_mb']:+.2f} MB; fitted slope over "
        f"{summary['samples_after_warm']} samples: {summary['rss_slope_mb_per_100k_jobs']} MB per 100k jobs",
        f"server used_memory slope: {summary['server_used_slope_mb_per_100k_jobs']} MB per 100k jobs",
        f"jobs/s over the run: {'n/a' if rate is None else f'{rate:,.0f}'}",
    ]
    return "\n".join(lines)


def check(status: dict[str, Any], counts: dict[str, int], jobs: int, keep_completed: bool) -> list[str]:
    """What went wrong: lost, failed or stalled jobs, worker errors, jobs left on the server."""
    problems = list(status["errors"])
    if status["completed"] != jobs:
        problems.append(f"the worker completed {status['completed']} of {jobs} jobs")
    for key in ("failed", "stalled"):
        if status[key]:
            problems.append(f"{status[key]} {key} jobs")
    expected = {"waiting": 0, "active": 0, "delayed": 0, "failed": 0, "completed": jobs if keep_completed else 0}
    if any(counts[key] != value for key, value in expected.items()):
        problems.append(f"job counts on the server after the run: {counts}")
    held = {key: value for key, value in status["worker"].items() if value}
    if held:
        problems.append(f"the idle worker still holds {held}")
    return problems


async def measure(
    args: argparse.Namespace, queue: glidemq.Queue, worker: MemoryWorker, sampler: Sampler
) -> tuple[dict[str, Any], list[str]]:
    """The run itself: idle sample, feeding and sampling, idle sample; the worker's last status."""
    await sampler.take("idle_before", full=True)
    options = {} if args.keep_completed else {"remove_on_complete": True}
    producer = asyncio.create_task(produce(queue, args.jobs, options, sampler))
    try:
        await watch(sampler, args.jobs, producer)
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
    growth = await worker.ask("snapshot", "snapshot") if args.tracemalloc else []
    await asyncio.sleep(IDLE_SETTLE)
    await sampler.take("idle_after", full=True)
    return sampler.last_status, growth


async def run(args: argparse.Namespace, url: str, server_name: str) -> int:
    probe = await ServerProbe.connect(glidemq.Connection(url))
    meta = await describe(args, probe, server_name)
    problems: list[str] = []
    async with glidemq.Queue(f"bench-memory-{uuid.uuid4().hex[:10]}", connection=url) as queue:
        await queue.count()  # connects and loads the library before the worker starts
        worker = await MemoryWorker.start(url, queue.name, args.concurrency, args.tracemalloc)
        sampler = Sampler(worker, probe, args.tracemalloc)
        status: dict[str, Any] | None = None
        growth: list[str] = []
        try:
            status, growth = await measure(args, queue, worker, sampler)
            problems += check(status, await queue.get_job_counts(), args.jobs, args.keep_completed)
            problems += await worker.stop()
        except RuntimeError as exc:
            problems.append(str(exc))
        finally:
            await worker.kill()
            await queue.obliterate(force=True)
    await probe.close()
    meta["load_average_after"] = load()
    summary = summarize(sampler.samples, args.jobs, elapsed(status, sampler)) if status else None
    return report(args, meta, sampler.samples, summary, problems, growth)


def elapsed(status: dict[str, Any], sampler: Sampler) -> float | None:
    """Seconds from the first add to the worker's last completion (both wall clock, one host)."""
    if status["last_end"] is None or sampler.started is None:
        return None
    return float(status["last_end"]) - sampler.started


def report(
    args: argparse.Namespace, meta: dict[str, Any], samples: list[Sample], summary: dict[str, Any] | None,
    problems: list[str], growth: list[str],
) -> int:
    """Prints the table and the problems, writes the JSON; returns the exit code."""
    if summary is not None:
        print(table(samples, summary))
    if growth:
        print("\ntracemalloc, biggest growths from the warm sample to the end of the run:", *growth, sep="\n  ")
    for problem in problems:
        print(f"problem: {problem}")
    document = {
        "meta": meta, "summary": summary, "samples": [asdict(s) for s in samples],
        "tracemalloc_growth": growth, "problems": problems, "ok": not problems and summary is not None,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {args.output}")
    return 0 if document["ok"] else 1


async def describe(args: argparse.Namespace, probe: ServerProbe, server_name: str) -> dict[str, Any]:
    return {
        **await run_meta(probe, server_name, args.cpus),
        "jobs": args.jobs,
        "quick": args.quick,
        "concurrency": args.concurrency,
        "backlog": BACKLOG,
        "batch": BATCH,
        "remove_on_complete": not args.keep_completed,
        "tracemalloc": args.tracemalloc,
        "worker": "separate process (bench/_memory_worker.py), no-op async processor, default options",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="glidemq memory benchmark")
    parser.add_argument("--jobs", type=int, default=None, help=f"jobs to run (default {DEFAULT_JOBS:,})")
    parser.add_argument("--url", default=None, help="a Valkey server to use instead of an embedded one")
    parser.add_argument("--concurrency", type=int, default=50, help="the worker's concurrency (default 50)")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_JOBS:,} jobs")
    parser.add_argument("--keep-completed", action="store_true",
                        help="keep completed jobs on the server (default: remove_on_complete=True)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="trace the worker's Python allocations and print the biggest growths (slow)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    add_pin_option(parser)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else DEFAULT_JOBS
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return on_server(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
