"""Worker(prefetch=N): jobs held beyond concurrency are leased, started in order, and handed
back (without using an attempt) when the worker pauses or closes. Left to the worker
(prefetch=None, the default), it holds jobs ahead only while they finish well within a call
to the server."""

from __future__ import annotations

import asyncio
from typing import Any

import glidemq
from glidemq._prefetch import LIMIT_FACTOR, AutoPrefetch

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


async def _held_while_one_job_blocks(queue: glidemq.Queue, url: str, qname: str, **options: int) -> int:
    """Runs 200 short jobs, then one that blocks, then 20 more (concurrency 1); returns how
    many jobs the server holds active while the blocking one runs, and checks the run."""
    gate = asyncio.Event()
    started: list[object] = []
    running = peak = 0

    async def processor(job: glidemq.Job) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        started.append(job.data)
        if job.data == "gate":
            await gate.wait()
        running -= 1

    await queue.add_bulk([("j", i) for i in range(200)] + [("j", "gate")] + [("j", i) for i in range(200, 220)])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=1, **options):
        await wait_until(lambda: "gate" in started, timeout=30)
        if options.get("prefetch") == 0:
            await asyncio.sleep(0.3)  # time enough for a worker that would hold more to take them
        else:
            await wait_until(lambda: _active_above(queue, 1), timeout=10)
        held = (await queue.get_job_counts())["active"]
        gate.set()
        await wait_until(lambda: len(started) == 221, timeout=30)
    assert peak == 1
    assert sorted(x for x in started if x != "gate") == list(range(220))  # type: ignore[type-var]
    counts = await queue.get_job_counts()
    assert counts == {**counts, "completed": 221, "active": 0, "waiting": 0}
    return held


async def test_by_default_a_worker_of_short_jobs_holds_jobs_ahead(queue: glidemq.Queue, url: str, qname: str) -> None:
    held = await _held_while_one_job_blocks(queue, url, qname)
    assert 1 < held <= 1 + LIMIT_FACTOR


async def test_prefetch_zero_never_holds_more_than_concurrency(queue: glidemq.Queue, url: str, qname: str) -> None:
    assert await _held_while_one_job_blocks(queue, url, qname, prefetch=0) == 1


async def test_by_default_a_worker_holds_no_more_than_concurrency_while_jobs_outlast_a_call(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    active_seen: list[int] = []

    async def processor(job: glidemq.Job) -> None:
        active_seen.append((await queue.get_job_counts())["active"])
        await asyncio.sleep(0.2)

    await queue.add_bulk([("j", i) for i in range(8)])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=2) as worker:
        await wait_until(lambda: len(active_seen) == 8, timeout=30)
        assert worker.prefetch is None
    assert max(active_seen) == 2
    assert (await queue.get_job_counts())["completed"] == 8


async def test_held_jobs_go_back_in_order_once_the_worker_learns_the_queue_is_paused(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    """A worker holding jobs it has not started hands them back (no attempt used, order kept)
    with the first reply that says the queue is paused; at most one job per processor starts
    after the pause (the one it starts before that reply arrives)."""
    gate = asyncio.Event()
    started: list[object] = []

    async def processor(job: glidemq.Job) -> None:
        started.append(job.data)
        if job.data == "gate":
            await gate.wait()
        elif isinstance(job.data, int) and job.data >= 100:
            await asyncio.sleep(0.05)

    await queue.add_bulk([("j", i) for i in range(100)] + [("j", "gate")] + [("j", i) for i in range(100, 110)])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=1, prefetch=3):
        await wait_until(lambda: "gate" in started, timeout=30)
        await wait_until(lambda: _active_count(queue, 4), timeout=10)  # the gate + 3 held
        await queue.pause()
        gate.set()
        await wait_until(lambda: _active_count(queue, 0), timeout=10)
        await asyncio.sleep(0.2)
        after_pause = started[started.index("gate") + 1:]
    assert after_pause == [100]
    counts = await queue.get_job_counts()
    assert counts == {**counts, "completed": 102, "waiting": 9, "active": 0, "failed": 0}
    waiting = await queue.get_jobs("waiting")
    assert [job.data for job in waiting] == list(range(101, 110))
    assert all(job.attempts_made == 0 for job in waiting)


async def test_jobs_held_for_short_jobs_go_back_once_jobs_turn_long(queue: glidemq.Queue, url: str, qname: str) -> None:
    """After short jobs a worker holds jobs ahead; when the jobs turn out to take long, it
    hands the held ones back (in order, no attempt used) rather than keep them from other
    workers until its processors get to them."""
    gates = {f"s{i}": asyncio.Event() for i in range(6)}
    started: list[object] = []

    async def processor(job: glidemq.Job) -> None:
        started.append(job.data)
        if job.data in gates:
            await gates[job.data].wait()

    await queue.add_bulk([("j", i) for i in range(200)] + [("j", name) for name in gates])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=1):
        try:
            await wait_until(lambda: "s0" in started, timeout=30)
            await wait_until(lambda: _active_above(queue, 1), timeout=10)  # s0 runs, later ones held
            await asyncio.sleep(0.1)  # s0 takes far longer than a call to the server
            gates["s0"].set()
            await wait_until(lambda: "s1" in started, timeout=10)
            await wait_until(lambda: _active_count(queue, 1), timeout=10)  # only s1: the rest went back
            waiting = await queue.get_jobs("waiting")
            assert [job.data for job in waiting] == ["s2", "s3", "s4", "s5"]
            assert all(job.attempts_made == 0 for job in waiting)
        finally:
            for gate in gates.values():
                gate.set()
        await wait_until(lambda: len(started) == 206, timeout=30)
    assert started[200:] == list(gates)
    assert (await queue.get_job_counts())["completed"] == 206


async def test_jobs_start_in_queue_order_when_replies_arrive_out_of_order(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    """valkey-glide may hand over the replies of two calls on one connection in the other order
    than the server ran them (seen under load); a worker of concurrency 1 still starts jobs in
    the order the queue gave them. Every other take's reply is held back here to force it."""
    started: list[int] = []

    async def processor(job: glidemq.Job) -> None:
        started.append(job.data)

    await queue.add_bulk([("j", i) for i in range(300)])
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=1, prefetch=7)
    client = worker._ctx.client
    real_fcall = client.fcall
    takes = 0

    async def fcall(name: str, base: str, args: list[Any]) -> Any:
        nonlocal takes
        reply = await real_fcall(name, base, args)
        if name == "take":
            takes += 1
            if takes % 2:
                await asyncio.sleep(0.005)  # the next take's reply gets in first
        return reply

    client.fcall = fcall  # type: ignore[method-assign]
    async with worker:
        await wait_until(lambda: len(started) == 300, timeout=30)
    assert started == list(range(300))


async def _active_above(queue: glidemq.Queue, n: int) -> bool:
    return (await queue.get_job_counts())["active"] > n


def test_auto_prefetch_holds_what_the_processors_finish_during_one_call() -> None:
    auto = AutoPrefetch(10)
    assert auto.extra == 0
    auto.call_took(0.0005)
    assert auto.extra == 0  # no job timed yet
    auto.job_ran(0.001)
    auto.call_took(0.0005)
    assert auto.extra == 5  # 10 processors finish 5 jobs in 0.5 ms
    for _ in range(200):
        auto.job_ran(0.01)
        auto.call_took(0.0005)
    assert auto.extra == 0  # jobs outlast a call: nothing held
    for _ in range(200):
        auto.job_ran(0.0)
        auto.call_took(0.0005)
    assert auto.extra == LIMIT_FACTOR * 10


def test_auto_prefetch_moves_with_running_means() -> None:
    auto = AutoPrefetch(1)
    auto.job_ran(0.001)
    auto.call_took(0.002)
    assert auto.extra == 2
    auto.job_ran(0.1)  # one long job among short ones barely moves the mean ...
    auto.call_took(0.002)
    assert auto.job_seconds is not None and 0.007 < auto.job_seconds < 0.008
    assert auto.extra == 0  # ... but enough that no job is held


def test_prefetch_must_be_a_non_negative_int_or_none() -> None:
    assert glidemq.Worker("q", lambda job: None).prefetch is None
    assert glidemq.Worker("q", lambda job: None, prefetch=0).prefetch == 0
    for bad in (-1, 1.5, True, "2"):
        try:
            glidemq.Worker("q", lambda job: None, prefetch=bad)
        except glidemq.InvalidArgumentError:
            continue
        raise AssertionError(f"prefetch={bad!r} was accepted")
