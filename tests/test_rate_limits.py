"""Rate limits, global concurrency and RateLimitError, against a real server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from glide import GlideClient

import glidemq
import glidemq.testing

from .conftest import keyspace
from .worker_helpers import replay_events


class Tracker:
    """Counts processors running at once and when each started, by the server's clock (``processed_on``):
    the limits act there, and a loaded machine cannot skew it by delaying one reply more than another."""

    def __init__(self, hold: float = 0.0) -> None:
        self.hold = hold
        self.running = self.peak = 0
        self.starts: list[float] = []

    async def __call__(self, job: glidemq.Job) -> None:
        assert job.processed_on is not None
        self.starts.append(job.processed_on)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.running -= 1


def busiest_window(starts: list[float], window: float) -> int:
    """The most starts inside any interval of ``window`` seconds."""
    starts = sorted(starts)
    return max(sum(1 for t in starts if s <= t < s + window) for s in starts)


async def test_worker_limiter_is_shared_by_all_workers(url: str, queue: glidemq.Queue, qname: str) -> None:
    await queue.add_bulk([("x", i) for i in range(20)])
    tracker = Tracker()
    limit = glidemq.RateLimit(max=4, duration=0.4)
    workers = [glidemq.Worker(qname, tracker, connection=url, concurrency=10, limiter=limit) for _ in range(2)]
    for w in workers:
        await w.__aenter__()
    try:
        peak_active = 0
        while len(tracker.starts) < 20:
            peak_active = max(peak_active, (await queue.get_job_counts())["active"])
            await asyncio.sleep(0.01)
    finally:
        for w in workers:
            await w.close()
    # fixed windows of 0.4 s: two neighbouring windows hold at most 8 starts in any 0.4 s
    assert busiest_window(tracker.starts, 0.4) <= 8
    assert max(tracker.starts) - min(tracker.starts) >= 0.4 * (20 / 4 - 1) - 0.1
    assert peak_active <= 8  # limited jobs wait in the queue, they are not claimed


async def test_queue_rate_limit_applies_to_workers_without_a_limiter(
    url: str, queue: glidemq.Queue, qname: str
) -> None:
    await queue.set_rate_limit(3, 0.3)
    await queue.add_bulk([("x", i) for i in range(9)])
    tracker = Tracker()
    async with glidemq.Worker(qname, tracker, connection=url, concurrency=9):
        while len(tracker.starts) < 9:
            await asyncio.sleep(0.01)
    assert busiest_window(tracker.starts, 0.3) <= 6
    assert max(tracker.starts) - min(tracker.starts) >= 0.3 * 2 - 0.1

    await queue.remove_rate_limit()
    await queue.add_bulk([("x", i) for i in range(9)])
    fast = Tracker(hold=0.2)
    async with glidemq.Worker(qname, fast, connection=url, concurrency=9):
        while len(fast.starts) < 9:
            await asyncio.sleep(0.01)
    assert fast.peak > 3


async def test_queue_rate_limit_wins_over_the_worker_limiter(url: str, queue: glidemq.Queue, qname: str) -> None:
    await queue.set_rate_limit(2, 0.3)
    await queue.add_bulk([("x", i) for i in range(6)])
    tracker = Tracker()
    async with glidemq.Worker(qname, tracker, connection=url, concurrency=6, limiter=glidemq.RateLimit(100, 0.3)):
        while len(tracker.starts) < 6:
            await asyncio.sleep(0.01)
    assert busiest_window(tracker.starts, 0.3) <= 4


async def test_global_concurrency_caps_active_jobs_across_workers(url: str, queue: glidemq.Queue, qname: str) -> None:
    await queue.set_global_concurrency(2)
    await queue.add_bulk([("x", i) for i in range(12)])
    tracker = Tracker(hold=0.05)
    workers = [glidemq.Worker(qname, tracker, connection=url, concurrency=5) for _ in range(3)]
    for w in workers:
        await w.__aenter__()
    try:
        while len(tracker.starts) < 12 or tracker.running:
            await asyncio.sleep(0.01)
        assert tracker.peak == 2
        await queue.set_global_concurrency(None)
        tracker.peak = 0  # before the add: idle workers may start all 12 before it returns
        await queue.add_bulk([("x", i) for i in range(12)])
        while len(tracker.starts) < 24:
            await asyncio.sleep(0.01)
    finally:
        for w in workers:
            await w.close()
    assert tracker.peak > 2


async def test_rate_limit_error_puts_the_job_back_without_an_attempt(
    url: str, queue: glidemq.Queue, qname: str
) -> None:
    calls: list[float] = []

    async def limited_once(job: glidemq.Job) -> str:
        calls.append(time.monotonic())
        if len(calls) == 1:
            assert job.attempts_made == 0
            raise glidemq.RateLimitError(0.3)
        assert job.attempts_made == 0  # the first run did not use an attempt
        return "done"

    failed: list[Any] = []
    job = await queue.add("x", None, attempts=1)
    worker = glidemq.Worker(qname, limited_once, connection=url)
    worker.on("failed", lambda j, e: failed.append(e))
    async with worker:
        assert await job.wait_until_finished(timeout=5) == "done"
    assert calls[1] - calls[0] >= 0.25
    assert failed == []
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.attempts_made == 1 and not fresh.failed_reason
    assert not [e for e in await replay_events(url, qname) if e.event == "failed"]


async def test_rate_limit_error_while_waiting_shows_an_empty_failed_reason(
    url: str, queue: glidemq.Queue, qname: str
) -> None:
    async def always_limited(job: glidemq.Job) -> None:
        raise glidemq.RateLimitError(30)

    job = await queue.add("x", None)
    async with glidemq.Worker(qname, always_limited, connection=url):
        for _ in range(200):
            if await job.get_state() == "delayed":
                break
            await asyncio.sleep(0.02)
    fresh = await queue.get_job(job.id)
    assert fresh is not None and await fresh.get_state() == "delayed"
    assert fresh.attempts_made == 0 and not fresh.failed_reason


@pytest.mark.parametrize(
    "make",
    [
        lambda: glidemq.RateLimit(0, 1),
        lambda: glidemq.RateLimit(1, 0),
        lambda: glidemq.RateLimit(True, 1),  # type: ignore[arg-type]
        lambda: glidemq.RateLimit(1, "1"),  # type: ignore[arg-type]
        lambda: glidemq.RateLimitError(-1),
        lambda: glidemq.RateLimitError("soon"),  # type: ignore[arg-type]
    ],
)
def test_bad_limits_are_refused(make: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        make()


def test_worker_limiter_must_be_a_rate_limit(url: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker("q", lambda job: None, connection=url, limiter=(5, 1))  # type: ignore[arg-type]


async def test_bad_queue_limits_write_nothing(queue: glidemq.Queue, raw: GlideClient) -> None:
    await queue.add("seed", 1)
    before = await keyspace(raw, queue.name)
    for call in (
        lambda: queue.set_rate_limit(0, 1),
        lambda: queue.set_rate_limit(5, -1),
        lambda: queue.set_global_concurrency(0),
        lambda: queue.set_global_concurrency(1.5),  # type: ignore[arg-type]
    ):
        with pytest.raises(glidemq.InvalidArgumentError):
            await call()
    assert await keyspace(raw, queue.name) == before


async def test_limits_on_the_cluster(cluster: glidemq.testing.EmbeddedValkeyCluster, qname: str) -> None:
    async with glidemq.Queue(qname, connection=cluster.url) as queue:
        await queue.set_global_concurrency(1)
        await queue.set_rate_limit(3, 0.3)
        await queue.add_bulk([("x", i) for i in range(6)])
        tracker = Tracker(hold=0.02)
        async with glidemq.Worker(qname, tracker, connection=cluster.url, concurrency=4):
            while len(tracker.starts) < 6:
                await asyncio.sleep(0.01)
    assert tracker.peak == 1
    assert busiest_window(tracker.starts, 0.3) <= 6 and max(tracker.starts) - min(tracker.starts) >= 0.25
