"""Worker(prefetch=N): jobs held beyond concurrency are leased, started in order, and handed
back (without using an attempt) when the worker pauses or closes."""

from __future__ import annotations

import asyncio

import glidemq

from .worker_helpers import wait_until


async def test_prefetch_keeps_concurrency_and_runs_everything(queue: glidemq.Queue, url: str, qname: str) -> None:
    running = peak = 0
    done: list[int] = []

    async def processor(job: glidemq.Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        done.append(job.data)

    await queue.add_bulk([("j", i) for i in range(300)])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=2, prefetch=20):
        await wait_until(lambda: len(done) == 300, timeout=30)
    assert peak == 2
    assert sorted(done) == list(range(300))
    counts = await queue.get_job_counts()
    assert counts["completed"] == 300 and counts["active"] == 0


async def test_prefetched_jobs_go_back_when_the_worker_closes(queue: glidemq.Queue, url: str, qname: str) -> None:
    gate = asyncio.Event()
    started: list[int] = []

    async def processor(job: glidemq.Job) -> None:
        started.append(job.data)
        await gate.wait()

    await queue.add_bulk([("j", i) for i in range(5)])
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=1, prefetch=3)
    async with worker:
        await wait_until(lambda: len(started) == 1, timeout=10)
        await wait_until(lambda: _active_count(queue, 4), timeout=10)  # 1 running + 3 prefetched
        await worker.pause()  # prefetched jobs are handed back at once
        await wait_until(lambda: _active_count(queue, 1), timeout=10)
        gate.set()
    assert started == [0]
    counts = await queue.get_job_counts()
    assert counts == {**counts, "completed": 1, "waiting": 4, "active": 0, "failed": 0}
    for job in await queue.get_jobs("waiting"):
        assert job.attempts_made == 0


async def _active_count(queue: glidemq.Queue, expected: int) -> bool:
    return (await queue.get_job_counts())["active"] == expected


def test_prefetch_must_be_a_non_negative_int() -> None:
    for bad in (-1, 1.5, True):
        try:
            glidemq.Worker("q", lambda job: None, prefetch=bad)
        except glidemq.InvalidArgumentError:
            continue
        raise AssertionError(f"prefetch={bad!r} was accepted")
