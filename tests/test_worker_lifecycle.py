"""Worker lifecycle promises: options, run/close, pause/resume, graceful and forced shutdown, heartbeats."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import glidemq
from glidemq.testing import EmbeddedValkey

from .worker_helpers import wait_until


async def _noop(job: glidemq.Job) -> None:
    return None


# options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"concurrency": 0},
        {"concurrency": -3},
        {"concurrency": 1.5},
        {"concurrency": True},
        {"lock_duration": 0},
        {"lock_duration": -1},
        {"lock_duration": timedelta(0)},
        {"stalled_interval": 0},
        {"stalled_interval": -0.5},
        {"max_stalled_count": -1},
        {"max_stalled_count": 0.5},
    ],
)
def test_invalid_worker_options_are_rejected(url: str, qname: str, options: dict[str, Any]) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, _noop, connection=url, **options)


def test_valid_edge_options_are_accepted(url: str, qname: str) -> None:
    glidemq.Worker(qname, _noop, connection=url, concurrency=1, lock_duration=0.5, stalled_interval=timedelta(
        milliseconds=200), max_stalled_count=0)


def test_invalid_queue_name_and_processor_are_rejected(url: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker("bad:name", _noop, connection=url)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker("fine", "not callable", connection=url)  # type: ignore[arg-type]


# run and close ---------------------------------------------------------------------------------


async def test_run_returns_after_close(queue: glidemq.Queue, url: str, qname: str) -> None:
    closed: list[bool] = []
    worker = glidemq.Worker(qname, _noop, connection=url)
    worker.on("closed", lambda: closed.append(True))
    task = asyncio.create_task(worker.run())
    job = await queue.add("j", 1)
    await job.wait_until_finished(timeout=10)
    assert not task.done()
    await asyncio.wait_for(worker.close(), 10)
    await asyncio.wait_for(task, 1)  # run() has returned (and did not raise)
    assert task.result() is None
    assert closed == [True]
    assert not worker.running


async def test_close_of_an_idle_worker_is_quick(url: str, qname: str) -> None:
    worker = glidemq.Worker(qname, _noop, connection=url)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.3)  # now blocked waiting for jobs
    started = time.monotonic()
    await asyncio.wait_for(worker.close(), 10)
    await task
    assert time.monotonic() - started < 2.5  # the blocking wait is cut short, not waited out (5 s)


async def test_close_without_run_and_twice(url: str, qname: str) -> None:
    worker = glidemq.Worker(qname, _noop, connection=url)
    await worker.close()
    await worker.close()
    async with glidemq.Worker(qname, _noop, connection=url) as running:
        pass
    await running.close()


async def test_async_with_runs_in_the_background_and_closes_gracefully(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    finished: list[str] = []
    release = asyncio.Event()

    async def processor(job: glidemq.Job) -> str:
        if job.data == "slow":
            await release.wait()
            await asyncio.sleep(0.3)
        finished.append(job.data)
        return job.data

    closed = asyncio.Event()
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=2)
    worker.on("closed", closed.set)
    fast = await queue.add("j", "fast")
    slow = await queue.add("j", "slow")
    async with worker as entered:
        assert entered is worker
        # The body runs while the worker works in the background.
        assert await fast.wait_until_finished(timeout=10) == "fast"
        await wait_until(lambda: _state_is(slow, "active"), timeout=5)
        assert worker.running
        release.set()
    # Leaving the block waited for the active job to finish.
    assert closed.is_set()
    assert not worker.running
    assert finished == ["fast", "slow"]
    assert await slow.get_state() == "completed"


async def _state_is(job: glidemq.Job, state: str) -> bool:
    return await job.get_state() == state


async def test_close_lets_active_jobs_finish(queue: glidemq.Queue, url: str, qname: str) -> None:
    started: list[str] = []
    done: list[str] = []
    release = asyncio.Event()

    async def processor(job: glidemq.Job) -> str:
        started.append(job.id)
        await release.wait()
        done.append(job.id)
        return "finished"

    jobs = await queue.add_bulk([("j", 1), ("j", 2), ("j", 3)])
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=2)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: len(started) == 2, timeout=10)
    closing = asyncio.ensure_future(worker.close())
    try:
        await asyncio.sleep(0.3)
        assert not closing.done()  # it waits for the running jobs
    finally:  # never leave a processor blocked, or closing would wait on it
        release.set()
    await asyncio.wait_for(closing, 10)
    assert len(done) == 2  # both ran to the end before close() returned
    await task
    states = [await j.get_state() for j in jobs]
    assert sorted(states) == ["completed", "completed", "waiting"]  # no new job started after close()
    assert len(done) == 2
    for j in jobs:
        stored = await queue.get_job(j.id)
        assert stored is not None
        if stored.id in done:
            assert stored.return_value == "finished"


async def test_close_with_timeout_requeues_running_jobs_without_using_an_attempt(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    cancelled: list[str] = []
    failed: list[str] = []
    runs: dict[str, int] = {}

    async def processor(job: glidemq.Job) -> str:
        runs[job.id] = runs.get(job.id, 0) + 1
        if job.data == "flaky" and job.attempts_made == 0:
            raise RuntimeError("first try fails")
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(job.id)
            raise
        return "never"

    hang = await queue.add("hang", "plain", attempts=1)
    flaky = await queue.add("hang", "flaky", attempts=3)
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=2)
    worker.on("failed", lambda job, exc: failed.append(job.id))
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: runs.get(hang.id) == 1 and runs.get(flaky.id) == 2, timeout=10)
    t0 = time.monotonic()
    await asyncio.wait_for(worker.close(timeout=0.5), 10)
    elapsed = time.monotonic() - t0
    await asyncio.wait_for(task, 5)
    assert 0.4 <= elapsed < 3
    assert sorted(cancelled) == sorted([hang.id, flaky.id])
    assert failed == [flaky.id]  # only the real failure of the first try; the shutdown fails nothing
    for job, attempts_made in ((hang, 0), (flaky, 1)):
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert await stored.get_state() == "waiting"
        assert stored.attempts_made == attempts_made
        assert stored.finished_on is None
    assert (await queue.get_job_counts())["failed"] == 0
    # Another worker picks them up again.
    done: list[str] = []

    async def quick(job: glidemq.Job) -> str:
        done.append(job.id)
        return "second life"

    async with glidemq.Worker(qname, quick, connection=url, concurrency=2):
        assert await hang.wait_until_finished(timeout=10) == "second life"
        assert await flaky.wait_until_finished(timeout=10) == "second life"
    stored = await queue.get_job(hang.id)
    assert stored is not None and stored.attempts_made == 1


async def test_close_with_timeout_requeues_a_sync_processors_job(queue: glidemq.Queue, url: str, qname: str) -> None:
    entered = threading.Event()
    let_go = threading.Event()

    def processor(job: glidemq.Job) -> str:
        entered.set()
        let_go.wait(10)
        return "late"

    job = await queue.add("sync", None, attempts=2)
    worker = glidemq.Worker(qname, processor, connection=url)
    task = asyncio.create_task(worker.run())
    try:
        await wait_until(entered.is_set, timeout=10)
        await asyncio.wait_for(worker.close(timeout=0.3), 10)
        await asyncio.wait_for(task, 5)
        stored = await queue.get_job(job.id)
        assert stored is not None
        assert await stored.get_state() == "waiting"
        assert stored.attempts_made == 0
    finally:
        let_go.set()
    await asyncio.sleep(0.2)  # the abandoned thread returns; its late result must not land
    stored = await queue.get_job(job.id)
    assert stored is not None and await stored.get_state() == "waiting" and stored.return_value is None


async def test_close_timeout_not_reached_means_no_cancellation(queue: glidemq.Queue, url: str, qname: str) -> None:
    async def processor(job: glidemq.Job) -> str:
        await asyncio.sleep(0.3)
        return "done"

    job = await queue.add("j", None)
    worker = glidemq.Worker(qname, processor, connection=url)
    task = asyncio.create_task(worker.run())
    await wait_until(lambda: _state_is(job, "active"), timeout=10)
    await asyncio.wait_for(worker.close(timeout=5), 10)
    await task
    assert await job.get_state() == "completed"


# pause and resume ------------------------------------------------------------------------------


async def test_worker_pause_and_resume(queue: glidemq.Queue, url: str, qname: str) -> None:
    started: list[Any] = []
    finished: list[Any] = []

    async def processor(job: glidemq.Job) -> None:
        started.append(job.data)
        await asyncio.sleep(0.4)
        finished.append(job.data)

    worker = glidemq.Worker(qname, processor, connection=url)
    async with worker:
        await queue.add("j", 1)
        await wait_until(lambda: started == [1], timeout=10)
        await worker.pause()
        await queue.add_bulk([("j", 2), ("j", 3)])
        await wait_until(lambda: finished == [1], timeout=5)  # the active job finishes
        await asyncio.sleep(0.8)
        assert started == [1]  # nothing new started while paused
        assert (await queue.get_job_counts())["waiting"] == 2
        await worker.resume()
        await wait_until(lambda: finished == [1, 2, 3], timeout=10)


async def test_a_paused_worker_closes_promptly(queue: glidemq.Queue, url: str, qname: str) -> None:
    worker = glidemq.Worker(qname, _noop, connection=url)
    await worker.pause()
    task = asyncio.create_task(worker.run())
    job = await queue.add("j", None)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await asyncio.wait_for(worker.close(), 10)
    await task
    assert time.monotonic() - started < 2.5  # not blocked in a wait for jobs (5 s)
    assert await job.get_state() == "waiting"


async def test_queue_pause_stops_every_worker(queue: glidemq.Queue, url: str, qname: str) -> None:
    started: list[tuple[str, Any]] = []
    finished: list[Any] = []
    release = asyncio.Event()
    release_resumed = asyncio.Event()

    def make(name: str) -> Any:
        async def processor(job: glidemq.Job) -> None:
            started.append((name, job.data))
            await (release if job.data < 4 else release_resumed).wait()
            finished.append(job.data)

        return processor

    await queue.add_bulk([("j", i) for i in range(4)])
    async with glidemq.Worker(qname, make("a"), connection=url, concurrency=2), glidemq.Worker(
        qname, make("b"), connection=url, concurrency=2
    ):
        try:
            await wait_until(lambda: len(started) == 4, timeout=10)
            assert {w for w, _ in started} == {"a", "b"}  # both workers are busy
            await queue.pause()
            assert await queue.is_paused()
            await queue.add_bulk([("j", i) for i in range(4, 10)])
            release.set()  # active jobs finish while paused
            await wait_until(lambda: len(finished) == 4, timeout=10)
            await asyncio.sleep(1.0)
            assert len(started) == 4  # no worker started a new job
            counts = await queue.get_job_counts()
            assert counts["waiting"] == 6 and counts["active"] == 0 and counts["completed"] == 4
            resumed_at = time.monotonic()
            await queue.resume()
            assert not await queue.is_paused()
            # Jobs added while paused hold their processor, so all four slots fill only if
            # resume woke both workers.
            await wait_until(lambda: len(started) == 8, timeout=3)
            assert time.monotonic() - resumed_at < 3  # resume wakes the workers; no long poll
            assert sorted(w for w, _ in started[4:]) == ["a", "a", "b", "b"]
            release_resumed.set()
            await wait_until(lambda: len(finished) == 10, timeout=10)
        finally:  # never leave a processor blocked, or closing the workers would wait on it
            release.set()
            release_resumed.set()


async def test_queue_paused_before_workers_start(queue: glidemq.Queue, url: str, qname: str) -> None:
    done: list[Any] = []

    async def processor(job: glidemq.Job) -> None:
        done.append(job.data)

    await queue.pause()
    await queue.add("j", 1)
    async with glidemq.Worker(qname, processor, connection=url):
        await asyncio.sleep(0.6)
        assert done == []
        await queue.resume()
        await wait_until(lambda: done == [1], timeout=5)


# heartbeats ------------------------------------------------------------------------------------


async def test_heartbeats_keep_the_lease_while_the_event_loop_is_blocked(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    runs: list[str] = []
    stalled: list[str] = []

    async def hog(job: glidemq.Job) -> str:
        runs.append("hog")
        time.sleep(3)  # blocks this event loop: no task of it runs for 3 s
        return "hogged"

    async def other(job: glidemq.Job) -> str:
        runs.append("other")
        return "other"

    settings: dict[str, Any] = {"lock_duration": 1, "stalled_interval": 0.5}
    first = glidemq.Worker(qname, hog, connection=url, **settings)
    second = glidemq.Worker(qname, other, connection=url, **settings)
    for worker in (first, second):
        worker.on("stalled", stalled.append)
    # The second worker is paused: it takes no job, but its heartbeat thread looks for
    # stalled jobs every 0.5 s while the first worker's event loop is blocked.
    await second.pause()
    await queue.get_job_counts()  # this loop already holds a connection, as in an application
    async with second, first:
        job = await queue.add("blocking", None)
        assert await job.wait_until_finished(timeout=15) == "hogged"
        await second.resume()  # would now run the job again had it been recovered
        await asyncio.sleep(1.2)
    assert runs == ["hog"]
    assert stalled == []
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.attempts_made == 1
    assert stored.return_value == "hogged"
    counts = await queue.get_job_counts()
    assert counts["completed"] == 1 and counts["waiting"] == 0 and counts["active"] == 0


async def test_heartbeats_with_a_password_and_a_database(qname: str) -> None:
    with EmbeddedValkey(extra_args=["--requirepass", "s3cret pass"]) as valkey:
        connection = glidemq.Connection(host=valkey.host, port=valkey.port, password="s3cret pass", db=3)
        runs = 0

        async def hog(job: glidemq.Job) -> str:
            nonlocal runs
            runs += 1
            time.sleep(2)
            return "done"

        async with glidemq.Queue(qname, connection=connection) as queue:
            job = await queue.add("blocking", None)
            worker = glidemq.Worker(qname, hog, connection=connection, lock_duration=0.8, stalled_interval=0.3)
            errors: list[BaseException] = []
            worker.on("error", errors.append)  # a heartbeat that cannot log in reports here
            async with worker:
                assert await job.wait_until_finished(timeout=15) == "done"
                await asyncio.sleep(1.0)
            assert runs == 1
            assert errors == []
            stored = await queue.get_job(job.id)
            assert stored is not None and stored.attempts_made == 1
