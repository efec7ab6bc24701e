"""What every Python driver shares: arguments, the tally of completions, the scenario runner.

A driver is started by ``bench/peers/run.py`` as
``python drivers/<system>.py --url URL --queue NAME --scenario S --jobs N [--concurrency C]``
and prints one JSON line: ``{"jobs", "seconds", "completed", "versions"}`` or
``{"unsupported": reason}``. Scenarios: ``fill`` (untimed, the fastest way to add N jobs),
``add_sequential``, ``add_concurrent`` (200 adds in flight), ``add_bulk`` and ``work``
(a worker of concurrency C on the pre-filled queue, timed from its start to the N-th completion).
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
    add_one: Callable[[int], Awaitable[Any]] | None = None  # async single add
    add_one_sync: Callable[[int], Any] | None = None  # blocking single add (sync clients)
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
    if scenario == "add_bulk" and driver.add_bulk is None:
        return "no bulk add API"
    if scenario == "add_concurrent" and driver.add_one is None:
        return "no async client"
    return None


async def produce_report(driver: Driver, args: argparse.Namespace) -> None:
    reason = missing(driver, args.scenario)
    if reason is not None:
        emit({"unsupported": reason})
        return
    await driver.connect()
    seconds = await produce(driver, args.scenario, args.jobs)
    emit({"jobs": args.jobs, "versions": versions(driver.packages), "seconds": seconds, "completed": args.jobs})


def work(driver: Driver, args: argparse.Namespace) -> None:
    """Starts the worker on this thread; a watcher thread reports and ends the process."""
    tally = Tally(args.jobs)
    errors: list[str] = []

    def watch() -> None:
        finished = tally.done.wait(args.timeout)
        end = tally.end if finished else time.perf_counter()
        report = {"jobs": args.jobs, "versions": versions(driver.packages), "seconds": end - start,
                  "completed": tally.completed}
        if errors:
            report["error"] = errors[0]
        emit(report)
        os._exit(0)  # the server is flushed after each scenario: no graceful worker shutdown needed

    start = time.perf_counter()
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
    return parser.parse_args(argv)


def main(driver_class: type[Driver]) -> None:
    args = parse_args()
    driver = driver_class(args)
    if args.scenario == "work":
        work(driver, args)
    run_async(produce_report(driver, args))
    sys.stdout.flush()
    os._exit(0)
