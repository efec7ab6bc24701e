"""What every Python driver shares: arguments, the tally of completions, the scenario runner.

A driver is started by ``bench/peers/run.py`` as
``python drivers/<system>.py --url URL --queue NAME --scenario S --jobs N [--concurrency C] [--rate R]``
and prints one JSON line: ``{"jobs", "seconds", "completed", "versions"}`` or
``{"unsupported": reason}``. Scenarios: ``fill`` (untimed, the fastest way to add N jobs),
``add_sequential``, ``add_concurrent`` (200 adds in flight), ``add_bulk``, ``work``
(a worker of concurrency C on the pre-filled queue, timed from its start to the N-th completion;
its report adds the CPU time and RSS of the driver's process tree), ``paced`` (N single adds
started at R per second, each carrying its add time) and ``latency_work`` (a worker of
concurrency C on an empty queue: it prints ``{"ready": ...}`` once idle, then, after N
completions, the pickup latency of each job: processor start minus the add time it carries).

A job's argument is the one value a driver's add passes on (``add_one(value)``): an int for
the throughput scenarios, the add's ``time.time()`` (a float) for ``paced``. Every driver's
processor hands its argument to :func:`stamp`, which records the pickup latency of a float.
This module uses the standard library only: it runs in every peer's own venv.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

IN_FLIGHT = 200
WARM_UP_SECONDS = 2.0  # an idle latency worker settles this long before it says it is ready
LATENCIES: list[float] = []  # seconds from add to processor start, of jobs stamped in this process
_latency_lock = threading.Lock()


def stamp(value: Any) -> None:
    """Called by every driver's processor with its job's argument: a float is the add's
    ``time.time()``, whose distance to now is the job's pickup latency."""
    if isinstance(value, float):
        latency = time.time() - value
        with _latency_lock:
            LATENCIES.append(latency)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``samples`` (seconds), in ms."""
    ordered = sorted(samples)
    if not ordered:
        return {}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000, 3)

    return {"p50_ms": at(50), "p90_ms": at(90), "p99_ms": at(99), "max_ms": round(ordered[-1] * 1000, 3)}


def _process_stats() -> dict[int, list[str]]:
    """The fields of ``/proc/<pid>/stat`` after the command name, of every process."""
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                stats[int(entry)] = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
    return stats


def _descendants(root: int, stats: dict[int, list[str]]) -> list[int]:
    """``root`` and every process below it (RQ's worker pool runs jobs in child processes)."""
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds() -> float:
    """CPU time (user + system, every thread) of this process and the processes below it."""
    stats = _process_stats()
    tick = os.sysconf("SC_CLK_TCK")
    below = _descendants(os.getpid(), stats)[1:]
    # this process by its precise clock; the others by their utime and stime, in ticks
    return time.process_time() + sum(int(stats[pid][11]) + int(stats[pid][12]) for pid in below) / tick


def tree_rss_mb() -> float:
    """Resident memory of this process and the processes below it, in MB."""
    total_kb = 0
    for pid in _descendants(os.getpid(), _process_stats()):
        try:
            with open(f"/proc/{pid}/status") as status:
                total_kb += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return round(total_kb / 1024, 1)


class Tally:
    """Counts completions from any thread; ``done`` is set at the ``expected``-th one."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.completed = 0
        self.end = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def hit(self, *_: Any, **__: Any) -> None:
        self.add(1)

    def add(self, count: int) -> None:
        with self._lock:
            self.completed += count
            if self.completed >= self.expected and not self.done.is_set():
                self.end = time.perf_counter()
                self.done.set()


class Driver:
    """One system's side of the scenarios; a method left as None is a scenario it lacks."""

    packages: tuple[str, ...] = ()
    add_one: Callable[[Any], Awaitable[Any]] | None = None  # async single add of one argument
    add_one_sync: Callable[[Any], Any] | None = None  # blocking single add (sync clients)
    add_bulk: Callable[[int], Awaitable[Any]] | None = None

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url.replace("valkey://", "redis://", 1)
        self.queue: str = args.queue

    async def connect(self) -> None:
        """Opens the producer side (untimed)."""

    async def fill(self, jobs: int) -> None:
        if self.add_bulk is not None:
            await self.add_bulk(jobs)
        elif self.add_one is not None:
            await add_concurrently(self.add_one, jobs)
        else:
            assert self.add_one_sync is not None
            await asyncio.to_thread(lambda: [self.add_one_sync(i) for i in range(jobs)])  # type: ignore[misc]

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        """Runs a worker that calls ``tally.hit()`` once per completed job: a coroutine to run, or blocks."""
        raise NotImplementedError

    def latencies(self) -> list[float]:
        """The pickup latencies recorded (overridden where jobs run in other processes)."""
        with _latency_lock:
            return list(LATENCIES)


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def loop_name() -> str:
    """The event loop every asyncio-based system runs on: uvloop where it is installed in the
    system's environment (bench/peers/setup.py installs it for each), unless BENCH_LOOP=asyncio."""
    if os.environ.get("BENCH_LOOP", "uvloop") == "asyncio":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run_async(coro: Any) -> Any:
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def versions(packages: Iterable[str]) -> dict[str, str]:
    found = {"python": sys.version.split()[0], "loop": loop_name()}
    for name in packages:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "?"
    return found


async def add_concurrently(add_one: Callable[[int], Awaitable[Any]], jobs: int) -> None:
    counter = iter(range(jobs))

    async def lane() -> None:
        for i in counter:
            await add_one(i)

    await asyncio.gather(*(lane() for _ in range(min(IN_FLIGHT, jobs))))


async def produce(driver: Driver, scenario: str, jobs: int) -> float:
    """Runs an add scenario; returns the seconds it took."""
    start = time.perf_counter()
    if scenario == "fill":
        await driver.fill(jobs)
    elif scenario == "add_bulk":
        assert driver.add_bulk is not None
        await driver.add_bulk(jobs)
    elif scenario == "add_concurrent":
        assert driver.add_one is not None
        await add_concurrently(driver.add_one, jobs)
    elif driver.add_one is not None:
        for i in range(jobs):
            await driver.add_one(i)
    else:
        assert driver.add_one_sync is not None
        add = driver.add_one_sync
        for i in range(jobs):
            add(i)
    return time.perf_counter() - start


def missing(driver: Driver, scenario: str) -> str | None:
    if scenario == "paced" and driver.add_one is None and driver.add_one_sync is None:
        return "no single add"
    if scenario == "add_bulk" and driver.add_bulk is None:
        return "no bulk add API"
    if scenario == "add_concurrent" and driver.add_one is None:
        return "no async client"
    return None


async def paced(driver: Driver, jobs: int, rate: float) -> float:
    """Starts ``jobs`` single adds at ``rate`` per second, each carrying its ``time.time()``;
    async adds run as tasks, so a slow one does not hold back the next. Returns the worst lag
    behind the schedule, in seconds."""
    start = time.perf_counter()
    worst = 0.0
    tasks: list[asyncio.Future[Any]] = []
    for i in range(jobs):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            worst = max(worst, -wait)
        if driver.add_one is not None:
            tasks.append(asyncio.ensure_future(driver.add_one(time.time())))
        else:
            assert driver.add_one_sync is not None
            driver.add_one_sync(time.time())
    await asyncio.gather(*tasks)
    return worst


async def produce_report(driver: Driver, args: argparse.Namespace) -> None:
    reason = missing(driver, args.scenario)
    if reason is not None:
        emit({"unsupported": reason})
        return
    await driver.connect()
    report: dict[str, Any] = {"jobs": args.jobs, "versions": versions(driver.packages), "completed": args.jobs}
    if args.scenario == "paced":
        start = time.perf_counter()
        report["max_lag_ms"] = round(await paced(driver, args.jobs, args.rate) * 1000, 3)
        report["seconds"] = time.perf_counter() - start
    else:
        report["seconds"] = await produce(driver, args.scenario, args.jobs)
    emit(report)


def work(driver: Driver, args: argparse.Namespace) -> None:
    """Starts the worker on this thread; a watcher thread reports and ends the process.

    ``work``: timed from just before the worker is created to the N-th completion, with the CPU
    the process tree used meanwhile. ``latency_work``: says it is ready once the worker had
    WARM_UP_SECONDS to settle on the empty queue (with its RSS then, idle), then reports the
    pickup latencies of the N jobs a ``paced`` driver adds.
    """
    tally = Tally(args.jobs)
    errors: list[str] = []
    latency = args.scenario == "latency_work"

    def watch() -> None:
        report: dict[str, Any] = {"jobs": args.jobs, "versions": versions(driver.packages)}
        if latency and not tally.done.wait(WARM_UP_SECONDS):
            emit({"ready": True, "rss_mb_idle": tree_rss_mb()})
        finished = tally.done.wait(args.timeout)
        end = tally.end if finished else time.perf_counter()
        cpu = tree_cpu_seconds() - cpu_start
        report.update({"seconds": end - start, "completed": tally.completed, "cpu_seconds": round(cpu, 4),
                       "rss_mb": tree_rss_mb()})
        if latency:
            samples = driver.latencies()
            report.update({"stamped": len(samples), **percentiles(samples)})
        if errors:
            report["error"] = errors[0]
        emit(report)
        os._exit(0)  # the server is flushed after each scenario: no graceful worker shutdown needed

    start = time.perf_counter()
    cpu_start = tree_cpu_seconds()
    threading.Thread(target=watch, daemon=True).start()
    try:
        handle = driver.start_worker(args.concurrency, tally)
        if asyncio.iscoroutine(handle):
            run_async(handle)
    except Exception as exc:  # noqa: BLE001 - reported in the JSON line
        errors.append(repr(exc))
        tally.end = time.perf_counter()
        tally.done.set()
    threading.Event().wait()  # the watcher ends the process


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=500.0, help="adds per second of the paced scenario")
    return parser.parse_args(argv)


def main(driver_class: type[Driver]) -> None:
    args = parse_args()
    driver = driver_class(args)
    if args.scenario in ("work", "latency_work"):
        work(driver, args)
    run_async(produce_report(driver, args))
    sys.stdout.flush()
    os._exit(0)
