"""Fault injection with real processes: killed and frozen workers, a restarted and a frozen server.

Each test prints its figures (recovery seconds, duplicates); run with ``-s`` to see them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from glide import GlideClient, GlideClientConfiguration, NodeAddress

import glidemq
from glidemq.testing import EmbeddedValkey

from .fault_worker import trail_key
from .worker_helpers import replay_events, wait_until

ROOT = Path(__file__).resolve().parent.parent
LOCK, STALL = 1.0, 0.5  # lock_duration and stalled_interval of every worker here


Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Starts fault_worker processes; kills those still alive at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(url: str, queue: str, **options: Any) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "tests.fault_worker", url, queue]
        options = {"lock_duration": LOCK, "stalled_interval": STALL, **options}
        for key, value in options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        log = open(tmp_path / f"worker{len(started)}.log", "wb")
        process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            process.kill()
        process.wait(10)


@pytest.fixture
async def trail(server: EmbeddedValkey) -> AsyncIterator[GlideClient]:
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(server.host, server.port)]))
    yield client
    await client.close()


async def _number(client: GlideClient, key: str) -> int:
    value = await client.get(key)
    return int(value) if value is not None else 0


async def _ready(client: GlideClient, qname: str, process: subprocess.Popen[bytes]) -> None:
    async def up() -> bool:
        assert process.poll() is None, "the worker process exited"
        return await client.get(trail_key(qname, f"ready:{process.pid}")) is not None

    await wait_until(up, timeout=20)


def _kill(process: subprocess.Popen[bytes]) -> float:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(5)
    return time.monotonic()


async def _count(url: Any, qname: str, job_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per job, how many completed/failed/stalled events the queue published."""
    out = {i: {"completed": 0, "failed": 0, "stalled": 0} for i in job_ids}
    for e in await replay_events(url, qname):
        if e.job_id in out and e.event in out[e.job_id]:
            out[e.job_id][e.event] += 1
    return out


# (1) a worker process dies mid-job --------------------------------------------------------------


async def test_sigkilled_worker_jobs_are_recovered_and_completed_once(
    queue: glidemq.Queue, url: str, qname: str, trail: GlideClient, spawn: Spawn
) -> None:
    jobs = await queue.add_bulk([("long", {"sleep": 60, "result": "never"}) for _ in range(5)])
    ids = [j.id for j in jobs]
    victim = spawn(url, qname, concurrency=5)

    async def all_started() -> bool:
        return all([await _number(trail, trail_key(qname, f"runs:{i}")) == 1 for i in ids])

    await wait_until(all_started, timeout=20)
    picked: dict[str, float] = {}
    stalled: list[str] = []
    runs: dict[str, int] = {}

    async def processor(job: glidemq.Job) -> str:
        runs[job.id] = runs.get(job.id, 0) + 1
        return "recovered"

    rescuer = glidemq.Worker(qname, processor, connection=url, concurrency=5, lock_duration=LOCK,
                             stalled_interval=STALL)
    rescuer.on("active", lambda job: picked.setdefault(job.id, time.monotonic()))
    rescuer.on("stalled", stalled.append)
    async with rescuer:
        await asyncio.sleep(0.3)  # the rescuer runs; the victim still holds every lease
        assert picked == {}
        killed_at = _kill(victim)
        for job in jobs:
            assert await job.wait_until_finished(timeout=15) == "recovered"
    recovery = max(picked.values()) - killed_at
    print(f"\nFAULT sigkill: 5 jobs picked up again {recovery:.2f}s after SIGKILL "
          f"(lock_duration={LOCK}, stalled_interval={STALL})")
    assert recovery < LOCK + STALL + 1.0
    assert sorted(stalled) == sorted(ids)
    assert runs == {i: 1 for i in ids}
    events = await _count(url, qname, ids)
    duplicates = sum(c["completed"] - 1 for c in events.values())
    print(f"FAULT sigkill: completed events per job {[c['completed'] for c in events.values()]}, "
          f"duplicates {duplicates}")
    assert all(c == {"completed": 1, "failed": 0, "stalled": 1} for c in events.values()), events
    counts = await queue.get_job_counts()
    assert counts["completed"] == 5 and counts["active"] == 0 and counts["waiting"] == 0


async def test_job_of_a_sigkilled_worker_that_stalled_too_often_is_dead_lettered(
    queue: glidemq.Queue, url: str, qname: str, trail: GlideClient, spawn: Spawn
) -> None:
    job = await queue.add("long", {"sleep": 60})
    victim = spawn(url, qname)
    await wait_until(lambda: _number(trail, trail_key(qname, f"runs:{job.id}")), timeout=20)
    killed_at = _kill(victim)
    rescuer = glidemq.Worker(qname, lambda job: "never", connection=url, lock_duration=LOCK,
                             stalled_interval=STALL, max_stalled_count=0, dead_letter_queue=qname + "-dlq")
    async with rescuer, glidemq.Queue(qname + "-dlq", connection=url) as dlq:
        await wait_until(lambda: dlq.count(), timeout=15)
        (dead,) = await dlq.get_jobs("waiting")
    seconds = time.monotonic() - killed_at
    print(f"\nFAULT dead letter: stalled job in the dead-letter queue {seconds:.2f}s after SIGKILL")
    assert dead.data["id"] == job.id and dead.data["data"] == {"sleep": 60}
    assert dead.data["reason"] == "job stalled more than allowable limit"
    assert await job.get_state() == "failed"


async def test_job_that_stalls_too_often_fails(
    queue: glidemq.Queue, url: str, qname: str, trail: GlideClient, spawn: Spawn
) -> None:
    job = await queue.add("doomed", {"sleep": 60})
    first, second = spawn(url, qname), spawn(url, qname)
    by_pid = {first.pid: first, second.pid: second}
    runs_key, pid_key = trail_key(qname, f"runs:{job.id}"), trail_key(qname, f"pid:{job.id}")

    await wait_until(lambda: _number(trail, runs_key), timeout=20)
    runner = by_pid[int(await trail.get(pid_key))]
    killed_at = _kill(runner)
    # The other process recovers it (stall 1 of max_stalled_count=1) and runs it again.
    await wait_until(lambda: _equals(trail, runs_key, 2), timeout=10)
    first_recovery = time.monotonic() - killed_at
    runner = by_pid[int(await trail.get(pid_key))]
    assert runner.poll() is None
    killed_at = _kill(runner)

    runs = 0
    failures: list[tuple[str, str, str]] = []
    stalled: list[str] = []

    async def processor(job: glidemq.Job) -> None:
        nonlocal runs
        runs += 1

    judge = glidemq.Worker(qname, processor, connection=url, lock_duration=LOCK, stalled_interval=STALL,
                           max_stalled_count=1)
    judge.on("stalled", stalled.append)
    judge.on("failed", lambda j, exc: failures.append((j.id, str(exc), j.failed_reason or "")))
    async with judge:
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=15)
        failed_after = time.monotonic() - killed_at
        await wait_until(lambda: failures, timeout=5)
    print(f"\nFAULT stalled twice: recovered {first_recovery:.2f}s after the first SIGKILL, "
          f"failed {failed_after:.2f}s after the second")
    assert "stalled" in (info.value.failed_reason or "")
    assert runs == 0  # failed, not run a third time
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert await stored.get_state() == "failed"
    assert "stalled" in (stored.failed_reason or "")
    assert stalled == [job.id]
    assert len(failures) == 1 and failures[0][0] == job.id
    assert "stalled" in failures[0][1] and "stalled" in failures[0][2]
    assert await _number(trail, runs_key) == 2
    events = (await _count(url, qname, [job.id]))[job.id]
    assert events == {"completed": 0, "failed": 1, "stalled": 2}


async def _equals(client: GlideClient, key: str, value: int) -> bool:
    return await _number(client, key) == value


# (2) the server restarts empty ------------------------------------------------------------------


async def test_server_restarted_empty_producers_and_workers_carry_on(qname: str) -> None:
    with EmbeddedValkey() as valkey:
        connection = glidemq.Connection(valkey.url, request_timeout=1.0)
        errors: list[BaseException] = []
        done: list[Any] = []

        async def processor(job: glidemq.Job) -> Any:
            done.append(job.data)
            return job.data * 10

        worker = glidemq.Worker(qname, processor, connection=connection, lock_duration=LOCK, stalled_interval=STALL)
        worker.on("error", errors.append)
        run = asyncio.create_task(worker.run())
        async with glidemq.Queue(qname, connection=connection) as queue:
            job = await queue.add("before", 1)
            assert await job.wait_until_finished(timeout=10) == 10

            # An instant restart: the library and every key are gone.
            valkey.restart()
            restarted_at = time.monotonic()
            job = await queue.add("after restart", 2)  # reloads the library by itself
            assert await job.wait_until_finished(timeout=15) == 20
            first_recovery = time.monotonic() - restarted_at

            # A longer outage: a producer call waits request_timeout, then raises.
            valkey.kill()
            started = time.monotonic()
            with pytest.raises(glidemq.ConnectionFailedError) as info:
                await queue.add("while down", 3)
            waited = time.monotonic() - started
            assert info.value.__cause__ is not None
            assert 0.8 <= waited < 3.0, waited
            with pytest.raises(glidemq.ConnectionFailedError):
                await queue.get_job_counts()
            await asyncio.sleep(1.0)
            assert not run.done()  # the worker does not raise out of run()
            valkey.start()
            back_at = time.monotonic()
            job = await queue.add("after outage", 4)  # the very next call succeeds
            added_after = time.monotonic() - back_at
            assert await job.wait_until_finished(timeout=20) == 40
            second_recovery = time.monotonic() - back_at
            more = await queue.add_bulk([("more", i) for i in range(5, 10)])
            for j in more:
                assert await j.wait_until_finished(timeout=10) == j.data * 10
        print(f"\nFAULT restart: new job processed {first_recovery:.2f}s after an instant restart; after a "
              f"{waited:.1f}s+1s outage, add took {added_after:.2f}s and the job ran within {second_recovery:.2f}s; "
              f"{len(errors)} error events")
        assert not run.done()
        assert errors and all(isinstance(e, glidemq.GlideMQError) for e in errors)
        assert sorted(done) == [1, 2, 4, 5, 6, 7, 8, 9]
        await asyncio.wait_for(worker.close(), 15)
        await asyncio.wait_for(run, 5)  # returns normally


# (3) a stale worker is fenced off ---------------------------------------------------------------


@pytest.mark.parametrize("stale_outcome", ["complete", "fail"])
async def test_frozen_worker_cannot_finish_a_job_it_lost(
    queue: glidemq.Queue, url: str, qname: str, trail: GlideClient, spawn: Spawn, stale_outcome: str
) -> None:
    job = await queue.add("contested", {"sleep": 1.5, "result": "stale", "fail": stale_outcome == "fail"})
    frozen = spawn(url, qname)
    runs_key, ends_key = trail_key(qname, f"runs:{job.id}"), trail_key(qname, f"ends:{job.id}")
    await wait_until(lambda: _number(trail, runs_key), timeout=20)
    os.kill(frozen.pid, signal.SIGSTOP)  # processor and heartbeat stop: the lease runs out
    stopped_at = time.monotonic()
    fresh_runs = 0

    async def processor(job: glidemq.Job) -> str:
        nonlocal fresh_runs
        fresh_runs += 1
        return "fresh"

    async with glidemq.Worker(qname, processor, connection=url, lock_duration=LOCK, stalled_interval=STALL):
        assert await job.wait_until_finished(timeout=15) == "fresh"
    taken_over = time.monotonic() - stopped_at
    before = await queue.get_job(job.id)
    assert before is not None

    os.kill(frozen.pid, signal.SIGCONT)  # its processor now returns (or raises) and reports
    await wait_until(lambda: _number(trail, ends_key), timeout=10)
    await asyncio.sleep(1.0)  # time for its report to reach the server (and be refused)
    assert frozen.poll() is None

    after = await queue.get_job(job.id)
    assert after is not None
    assert await after.get_state() == "completed"
    assert after.return_value == "fresh"
    assert after.failed_reason is None
    assert after.finished_on == before.finished_on
    assert after.attempts_made == before.attempts_made
    assert fresh_runs == 1
    events = (await _count(url, qname, [job.id]))[job.id]
    print(f"\nFAULT fenced ({stale_outcome}): taken over {taken_over:.2f}s after SIGSTOP; events {events}")
    assert events["completed"] == 1 and events["failed"] == 0
    counts = await queue.get_job_counts()
    assert counts["completed"] == 1 and counts["failed"] == 0 and counts["active"] == 0 and counts["waiting"] == 0


# (4) the server freezes -------------------------------------------------------------------------


async def test_server_frozen_for_a_while_loses_nothing(qname: str) -> None:
    with EmbeddedValkey() as valkey:
        runs: dict[Any, int] = {}
        finished = asyncio.Event()

        async def processor(job: glidemq.Job) -> Any:
            runs[job.data] = runs.get(job.data, 0) + 1
            await asyncio.sleep(0.05)
            if len(runs) == 41:
                finished.set()
            return job.data

        async with glidemq.Queue(qname, connection=valkey.url) as queue, glidemq.Worker(
            qname, processor, connection=valkey.url, concurrency=4
        ):
            await queue.add_bulk([("j", i) for i in range(40)])
            await wait_until(lambda: len(runs) >= 8, timeout=10)
            valkey.pause()
            try:
                late_add = asyncio.create_task(queue.add("added while frozen", 40))
                await asyncio.sleep(2.5)
                assert not late_add.done()
            finally:
                valkey.cont()
            thawed_at = time.monotonic()
            await late_add
            await asyncio.wait_for(finished.wait(), 20)
            drained = time.monotonic() - thawed_at
            await wait_until(lambda: _completed(queue, 41), timeout=10)
        duplicates = sum(n - 1 for n in runs.values())
        print(f"\nFAULT server SIGSTOP 2.5s: all 41 jobs done {drained:.2f}s after SIGCONT, {duplicates} duplicates")
        assert sorted(runs) == list(range(41))
        assert duplicates == 0


async def _completed(queue: glidemq.Queue, n: int) -> bool:
    counts = await queue.get_job_counts()
    return counts["completed"] == n and counts["active"] == 0 and counts["waiting"] == 0
