"""More fault injection with real processes: a SIGKILLed server with and without AOF, a network
cut through a proxy, worker processes killed at random (and a long soak run of that), and a
worker from before an empty restart that must not finish a new job reusing its job's id.

Every test prints a ``FAULT`` line with its figures (jobs lost, duplicate terminal states,
seconds to recover); run with ``-s`` to see them. The soak test runs only with ``-m soak``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import glidemq
from glidemq.testing import EmbeddedValkey

from .tcp_proxy import TcpProxy
from .worker_helpers import replay_events, wait_until

ROOT = Path(__file__).resolve().parent.parent


class EventLog:
    """Reads a queue's events from the start of the stream, continuously, in the background
    (the stream is capped, so long runs must be read while they happen)."""

    def __init__(self, connection: Any, qname: str) -> None:
        self.events: list[glidemq.QueueEvent] = []
        self._source = glidemq.QueueEvents(qname, connection=connection, last_event_id="0")
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventLog:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.settle()
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._source.close()

    async def _read(self) -> None:
        async for event in self._source:
            self.events.append(event)

    async def settle(self, idle: float = 0.5) -> None:
        """Waits until no new event arrived for ``idle`` seconds."""
        seen = -1
        while seen != len(self.events):
            seen = len(self.events)
            await asyncio.sleep(idle)

    def count(self, event: str) -> Counter[str]:
        return Counter(e.job_id for e in self.events if e.event == event)


def terminal_figures(events: list[glidemq.QueueEvent], ids: list[str]) -> dict[str, int]:
    """Terminal transitions per job, from the events stream: every job must have exactly one
    (``completed``, or ``failed`` which the server publishes only for a final failure)."""
    terminal = Counter(e.job_id for e in events if e.event in ("completed", "failed"))
    return {
        "jobs": len(ids),
        "without_terminal": sum(1 for i in ids if terminal[i] == 0),
        "duplicate_terminal": sum(terminal[i] - 1 for i in ids if terminal[i] > 1),
        "stalled_events": sum(1 for e in events if e.event == "stalled"),
    }


async def settled_counts(queue: glidemq.Queue, total: int, timeout: float) -> dict[str, int]:
    """Waits until ``total`` jobs finished and nothing waits or runs; returns the counts."""
    counts: dict[str, int] = {}

    async def done() -> bool:
        counts.update(await queue.get_job_counts())
        return (counts["completed"] + counts["failed"] == total and counts["waiting"] == 0
                and counts["active"] == 0 and counts["delayed"] == 0)

    try:
        await wait_until(done, timeout=timeout, interval=0.2)
    except AssertionError:
        raise AssertionError(f"not settled within {timeout}s: {counts}") from None
    return counts


# (1) server SIGKILL with AOF appendfsync always --------------------------------------------------


async def test_server_sigkill_with_aof_keeps_every_acknowledged_add(qname: str) -> None:
    total = 400
    with EmbeddedValkey(appendonly=True) as valkey:
        assert valkey.command("CONFIG", "GET", "appendfsync")[1] == b"always"
        connection = glidemq.Connection(valkey.url, request_timeout=1.0)
        acked: dict[str, float] = {}  # id → when its add returned
        unsure: set[str] = set()
        runs: Counter[str] = Counter()
        errors: list[BaseException] = []

        async def processor(job: glidemq.Job) -> str:
            runs[job.id] += 1
            await asyncio.sleep(0.02)
            return job.id

        async def produce(ids: list[str]) -> None:
            for job_id in ids:
                try:
                    await queue.add("aof", job_id, job_id=job_id)
                    acked[job_id] = time.monotonic()
                except glidemq.ConnectionFailedError:
                    unsure.add(job_id)
                    await asyncio.sleep(0.05)

        ids = [f"a{n}" for n in range(total)]
        worker = glidemq.Worker(qname, processor, connection=connection, concurrency=4,
                                lock_duration=2.0, stalled_interval=0.5, max_stalled_count=5)
        worker.on("error", errors.append)
        async with glidemq.Queue(qname, connection=connection) as queue, worker:
            producers = [asyncio.create_task(produce(ids[k::2])) for k in range(2)]
            await wait_until(lambda: len(acked) >= total // 3, timeout=20)
            valkey.kill()
            killed_at = time.monotonic()
            acked_before = {i for i, t in acked.items() if t < killed_at}
            await asyncio.sleep(0.3)
            valkey.start()
            back_at = time.monotonic()
            await asyncio.gather(*producers)
            existing = [i for i in ids if await queue.get_job(i) is not None]
            lost = sorted(acked_before - set(existing))
            counts = await settled_counts(queue, len(existing), timeout=30)
            recovered = time.monotonic() - back_at
            assert worker.running  # run() never raised
        events = await replay_events(valkey.url, qname)
    figures = terminal_figures(events, existing)
    reruns = sum(n - 1 for n in runs.values() if n > 1)
    print(f"\nFAULT server SIGKILL, AOF always: {len(acked_before)} adds acknowledged before the kill, "
          f"{len(lost)} lost; {len(unsure)} adds failed during the outage; {len(existing)} jobs, all done "
          f"{recovered:.2f}s after restart; {figures['duplicate_terminal']} duplicate terminal states, "
          f"{reruns} re-runs, {len(errors)} worker error events")
    assert lost == [], f"{len(lost)} acknowledged adds lost: {lost[:10]}"
    assert set(acked) <= set(existing)
    assert counts["completed"] == len(existing) and counts["failed"] == 0, counts
    assert figures["without_terminal"] == 0 and figures["duplicate_terminal"] == 0, figures
    assert set(runs) == set(existing)


# (2) server SIGKILL without persistence -------------------------------------------------------------


async def test_server_sigkill_without_persistence_forgets_jobs_and_carries_on(qname: str) -> None:
    with EmbeddedValkey() as valkey:
        connection = glidemq.Connection(valkey.url, request_timeout=1.0)
        done: list[Any] = []
        errors: list[BaseException] = []

        async def processor(job: glidemq.Job) -> Any:
            await asyncio.sleep(0.05)
            done.append(job.data)
            return job.data

        worker = glidemq.Worker(qname, processor, connection=connection, concurrency=2,
                                lock_duration=1.0, stalled_interval=0.5)
        worker.on("error", errors.append)
        async with glidemq.Queue(qname, connection=connection) as queue, worker:
            old = await queue.add_bulk([("old", n) for n in range(100)])
            await wait_until(lambda: len(done) >= 10, timeout=20)
            valkey.kill()
            finished_before = len(done)
            valkey.start()
            back_at = time.monotonic()
            counts = await queue.get_job_counts()  # reloads the library by itself
            assert all(n == 0 for n in counts.values()), f"the restarted server is not empty: {counts}"
            new = await queue.add_bulk([("new", 1000 + n) for n in range(20)])
            for job in new:
                assert await job.wait_until_finished(timeout=20) == job.data
            recovered = time.monotonic() - back_at
            await asyncio.sleep(0.3)  # jobs that were running at the kill have ended and reported
            # Auto ids start again from 1 on the empty server: new jobs reuse old ids.
            gone = [j.id for j in old if (stored := await queue.get_job(j.id)) is None or stored.name == "new"]
            counts = await queue.get_job_counts()
            assert worker.running  # run() never raised
    lost = len(old) - finished_before
    print(f"\nFAULT server SIGKILL, no persistence: {finished_before} of {len(old)} jobs had finished, "
          f"{lost} unfinished jobs lost with the server's memory (expected); 20 new jobs done "
          f"{recovered:.2f}s after restart; {len(errors)} worker error events")
    assert len(gone) == len(old)  # every old job is gone, finished or not
    assert counts["completed"] == 20 and counts["waiting"] == 0 and counts["active"] == 0, counts
    assert sorted(d for d in done if d >= 1000) == list(range(1000, 1020))


# (3) a network cut through a proxy ----------------------------------------------------------------


async def test_network_cut_through_proxy_loses_nothing(qname: str) -> None:
    total, cut = 300, 3.0
    lock = 2.0
    with EmbeddedValkey() as valkey, TcpProxy(valkey.host, valkey.port) as proxy:
        connection = glidemq.Connection(proxy.url, request_timeout=1.0)
        starts: dict[str, list[float]] = {}
        completed_at: dict[str, float] = {}
        errors: list[BaseException] = []
        add_failures = 0

        async def processor(job: glidemq.Job) -> str:
            starts.setdefault(job.id, []).append(time.monotonic())
            await asyncio.sleep(0.05)
            return job.id

        async def produce(ids: list[str]) -> None:
            nonlocal add_failures
            for job_id in ids:
                while True:  # job_id makes the add idempotent: retrying is safe
                    try:
                        await queue.add("net", None, job_id=job_id)
                        break
                    except glidemq.ConnectionFailedError:
                        add_failures += 1
                        await asyncio.sleep(0.1)
                await asyncio.sleep(0.005)

        ids = [f"n{n}" for n in range(total)]
        worker = glidemq.Worker(qname, processor, connection=connection, concurrency=4,
                                lock_duration=lock, stalled_interval=0.5, max_stalled_count=5)
        worker.on("error", errors.append)
        worker.on("completed", lambda job, _: completed_at.setdefault(job.id, time.monotonic()))
        async with glidemq.Queue(qname, connection=connection) as queue, worker:
            producer = asyncio.create_task(produce(ids))
            await wait_until(lambda: len(completed_at) >= 40, timeout=20)
            cut_start = time.monotonic()
            proxy.cut(cut)
            cut_end = cut_start + cut
            await producer
            counts = await settled_counts(queue, total, timeout=40)
            first_after = min((t for t in completed_at.values() if t > cut_end), default=float("nan"))
            assert worker.running  # run() never raised
        events = await replay_events(valkey.url, qname)
    figures = terminal_figures(events, ids)
    stalled = Counter(e.job_id for e in events if e.event == "stalled")
    reruns = {i: len(s) - 1 for i, s in starts.items() if len(s) > 1}
    held = {i for i, s in starts.items() if s[0] < cut_end and completed_at.get(i, cut_end) >= cut_start}
    print(f"\nFAULT network cut {cut:g}s (lock_duration {lock:g}s): {total - counts['completed']} lost, "
          f"{figures['duplicate_terminal']} duplicate terminal states, {sum(reruns.values())} re-runs "
          f"(of {len(held)} jobs held across the cut, all after a lease expiry), processing resumed "
          f"{first_after - cut_end:.2f}s after the link came back; {len(errors)} worker error events, "
          f"{add_failures} failed adds retried, {proxy.refused} connections refused")
    assert counts["completed"] == total and counts["failed"] == 0, counts
    assert figures["without_terminal"] == 0 and figures["duplicate_terminal"] == 0, figures
    assert set(starts) == set(ids)
    assert set(reruns) <= held, sorted(set(reruns) - held)
    assert all(stalled[i] >= n for i, n in reruns.items()), "a job ran again without its lease expiring"
    assert errors and all(isinstance(e, glidemq.GlideMQError) for e in errors)


# (4) worker processes killed at random ------------------------------------------------------------


class WorkerPool:
    """Worker processes (tests.churn_worker) to kill at random and replace."""

    def __init__(self, url: str, qname: str, log_dir: Path, **options: Any) -> None:
        self.args = [sys.executable, "-m", "tests.churn_worker", url, qname]
        for key, value in options.items():
            self.args += [f"--{key.replace('_', '-')}", str(value)]
        self.log_dir = log_dir
        self.alive: list[subprocess.Popen[bytes]] = []
        self.started = self.killed = 0

    def spawn(self) -> None:
        with open(self.log_dir / f"churn{self.started}.log", "wb") as log:
            self.alive.append(subprocess.Popen(self.args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        self.started += 1

    def kill_one(self, rng: random.Random) -> None:
        victim = self.alive.pop(rng.randrange(len(self.alive)))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(5)
        self.killed += 1

    def close(self) -> None:
        for process in self.alive:
            process.kill()
            process.wait(10)
        self.alive.clear()


@pytest.fixture
def pool_factory(tmp_path: Path) -> Iterator[Any]:
    pools: list[WorkerPool] = []

    def make(url: str, qname: str, **options: Any) -> WorkerPool:
        pools.append(WorkerPool(url, qname, tmp_path, **options))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


async def run_with_random_kills(
    queue: glidemq.Queue, pool: WorkerPool, total: int, *, workers: int, every: float, timeout: float,
    seed: int, max_kills: int | None = None,
) -> tuple[dict[str, int], float]:
    """Keeps ``workers`` processes running, SIGKILLs a random one every ``every`` seconds and
    starts a replacement, until every job finished (or ``max_kills`` were made); then lets
    the survivors drain."""
    rng = random.Random(seed)
    for _ in range(workers):
        pool.spawn()
    started = time.monotonic()
    while True:
        counts = await queue.get_job_counts()
        if counts["completed"] + counts["failed"] >= total or pool.killed == max_kills:
            break
        assert time.monotonic() - started < timeout, f"not done within {timeout}s: {counts}"
        await asyncio.sleep(every)
        pool.kill_one(rng)
        pool.spawn()
    counts = await settled_counts(queue, total, timeout=60)
    return counts, time.monotonic() - started


async def test_workers_killed_at_random_every_job_completes_once(
    url: str, qname: str, queue: glidemq.Queue, pool_factory: Any
) -> None:
    total = 2000
    pool = pool_factory(url, qname, concurrency=8, lock_duration=1.0, stalled_interval=0.5,
                        max_stalled_count=20, sleep=0.01)
    async with EventLog(url, qname) as log:
        jobs = await queue.add_bulk([("churn", n) for n in range(total)])
        counts, elapsed = await run_with_random_kills(queue, pool, total, workers=4, every=0.5, timeout=90,
                                                      seed=4, max_kills=12)
        await log.settle()
    ids = [j.id for j in jobs]
    figures = terminal_figures(log.events, ids)
    print(f"\nFAULT random worker SIGKILLs: {total} jobs, {pool.killed} kills in {elapsed:.1f}s, "
          f"{total - counts['completed']} not completed, {figures['without_terminal']} without a terminal "
          f"event, {figures['duplicate_terminal']} duplicate terminal states, {figures['stalled_events']} "
          f"stall recoveries")
    assert counts["completed"] == total and counts["failed"] == 0, counts
    assert figures["without_terminal"] == 0 and figures["duplicate_terminal"] == 0, figures
    assert sum(log.count("completed").values()) == total


# (5) the soak run -------------------------------------------------------------------------------


@pytest.mark.soak
@pytest.mark.timeout(900)
async def test_soak_random_failures_and_kills(qname: str, pool_factory: Any) -> None:
    total, attempts = int(os.environ.get("GLIDEMQ_SOAK_JOBS", "50000")), 3
    with EmbeddedValkey() as valkey:
        pool = pool_factory(valkey.url, qname, concurrency=16, lock_duration=1.0, stalled_interval=0.5,
                            max_stalled_count=20, sleep=0.005, fail_rate=0.2)
        async with glidemq.Queue(qname, connection=valkey.url) as queue, EventLog(valkey.url, qname) as log:
            jobs = await queue.add_bulk([("soak", n, {"attempts": attempts}) for n in range(total)])
            counts, elapsed = await run_with_random_kills(queue, pool, total, workers=4, every=1.0,
                                                          timeout=600, seed=5)
            await log.settle()
    ids = [j.id for j in jobs]
    figures = terminal_figures(log.events, ids)
    failed = [e for e in log.events if e.event == "failed"]
    bad_failures = [e for e in failed
                    if e.data.get("attempts_made") != attempts and "stalled" not in e.data.get("failed_reason", "")]
    print(f"\nFAULT soak: {total} jobs (attempts={attempts}, 20% of runs fail), {pool.killed} worker kills in "
          f"{elapsed:.1f}s ({total / elapsed:.0f} jobs/s): {counts['completed']} completed, {counts['failed']} "
          f"failed, {figures['without_terminal']} without a terminal event, {figures['duplicate_terminal']} "
          f"duplicate terminal states, {figures['stalled_events']} stall recoveries, {len(bad_failures)} "
          f"failed before their last attempt")
    assert counts["completed"] + counts["failed"] == total, counts
    assert figures["without_terminal"] == 0 and figures["duplicate_terminal"] == 0, figures
    assert sum(log.count("completed").values()) == counts["completed"]
    assert len(failed) == counts["failed"]
    assert bad_failures == []


# (6) fencing across an empty restart -------------------------------------------------------------


async def test_worker_from_before_an_empty_restart_cannot_finish_the_new_job_with_its_id(qname: str) -> None:
    """A worker still running a job when the server restarted empty must not complete the
    job that later gets the same id on the new server (tokens must not repeat)."""
    with EmbeddedValkey() as valkey:
        release = asyncio.Event()
        old_started, new_started = asyncio.Event(), asyncio.Event()

        async def old_processor(job: glidemq.Job) -> str:
            old_started.set()
            await release.wait()
            return "old run"

        async def new_processor(job: glidemq.Job) -> str:
            new_started.set()
            await asyncio.sleep(1.0)
            return "new run"

        options: dict[str, Any] = {"connection": valkey.url, "lock_duration": 30, "stalled_interval": 30}
        async with glidemq.Queue(qname, connection=valkey.url) as queue:
            await queue.add("x", 1, job_id="same")
            async with glidemq.Worker(qname, old_processor, **options):
                await asyncio.wait_for(old_started.wait(), 10)
                valkey.restart()
                job = await queue.add("x", 2, job_id="same")
                async with glidemq.Worker(qname, new_processor, **options):
                    await asyncio.wait_for(new_started.wait(), 10)
                    release.set()  # the old run reports now, with the token it got before the restart
                    result = await job.wait_until_finished(timeout=10)
    print(f"\nFAULT stale worker across an empty restart: the new job 'same' finished with {result!r}")
    assert result == "new run", "a worker from before the restart completed the new job that reused the id"
