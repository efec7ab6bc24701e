"""Deduplication of adds (glidemq.Dedup) against a real server."""

from __future__ import annotations

import asyncio
import time

import pytest
from glide import GlideClient

import glidemq
import glidemq.testing

from .conftest import keyspace


async def test_simple_dedup_skips_while_the_first_job_is_unfinished(queue: glidemq.Queue) -> None:
    first = await queue.add("a", 1, deduplication=glidemq.Dedup("k"))
    second = await queue.add("a", 2, deduplication=glidemq.Dedup("k"))
    assert second.id == first.id and second.data == 1
    assert (await queue.get_job_counts())["waiting"] == 1


async def test_simple_dedup_frees_the_id_when_the_job_finishes(url: str, queue: glidemq.Queue) -> None:
    first = await queue.add("a", 1, deduplication=glidemq.Dedup("k"))
    async with glidemq.Worker(queue.name, lambda job: job.data, connection=url):
        assert await first.wait_until_finished(timeout=5) == 1
    second = await queue.add("a", 2, deduplication=glidemq.Dedup("k"))
    assert second.id != first.id and second.data == 2


async def test_failed_job_frees_the_id_too(url: str, queue: glidemq.Queue) -> None:
    def boom(job: glidemq.Job) -> None:
        raise ValueError("no")

    first = await queue.add("a", 1, deduplication=glidemq.Dedup("k"))
    async with glidemq.Worker(queue.name, boom, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await first.wait_until_finished(timeout=5)
    assert (await queue.add("a", 2, deduplication=glidemq.Dedup("k"))).id != first.id


async def test_removed_job_frees_the_id(queue: glidemq.Queue) -> None:
    first = await queue.add("a", 1, deduplication=glidemq.Dedup("k"))
    assert await queue.remove(first.id)
    assert (await queue.add("a", 2, deduplication=glidemq.Dedup("k"))).id != first.id


async def test_ttl_keeps_blocking_after_the_job_finished(url: str, queue: glidemq.Queue) -> None:
    # the ttl runs from the first add: long enough for a worker to start and finish the job within it
    first = await queue.add("a", 1, deduplication=glidemq.Dedup("t", ttl=2))
    expires = time.monotonic() + 2
    async with glidemq.Worker(queue.name, lambda job: None, connection=url):
        await first.wait_until_finished(timeout=5)
    assert (await queue.add("a", 2, deduplication=glidemq.Dedup("t", ttl=2))).id == first.id
    await asyncio.sleep(expires + 0.1 - time.monotonic())
    assert (await queue.add("a", 3, deduplication=glidemq.Dedup("t", ttl=2))).id != first.id


async def test_extend_restarts_the_ttl_on_each_skipped_add(queue: glidemq.Queue) -> None:
    dedup = glidemq.Dedup("e", ttl=1, extend=True)
    first = await queue.add("a", 1, deduplication=dedup)
    for _ in range(5):  # 0.25 s apart: 1.25 s in all, longer than the ttl, each add extends it
        await asyncio.sleep(0.25)
        assert (await queue.add("a", 0, deduplication=dedup)).id == first.id
    await asyncio.sleep(1.1)
    assert (await queue.add("a", 2, deduplication=dedup)).id != first.id


async def test_replace_debounces_a_delayed_job(queue: glidemq.Queue) -> None:
    dedup = glidemq.Dedup("d", ttl=5, replace=True)
    first = await queue.add("a", {"v": 1}, delay=10, deduplication=dedup)
    again = await queue.add("a", {"v": 2}, delay=20, deduplication=dedup)
    assert again.id == first.id and again.data == {"v": 2}
    assert again.delay == 20
    assert (await queue.get_job_counts())["delayed"] == 1
    now = await queue.add("a", {"v": 3}, delay=0, deduplication=dedup)
    assert now.id == first.id and now.data == {"v": 3}
    assert await now.get_state() == "waiting"


async def test_replace_leaves_a_job_that_already_runs_alone(queue: glidemq.Queue) -> None:
    dedup = glidemq.Dedup("r", replace=True)
    first = await queue.add("a", 1, deduplication=dedup)  # waiting, not delayed
    again = await queue.add("a", 2, delay=5, deduplication=dedup)
    assert again.id == first.id and again.data == 1 and await again.get_state() == "waiting"


async def test_deduplicated_event_is_published(url: str, queue: glidemq.Queue) -> None:
    async with glidemq.QueueEvents(queue.name, connection=url) as events:
        first = await queue.add("a", 1, deduplication=glidemq.Dedup("ev"))
        await queue.add("a", 2, deduplication=glidemq.Dedup("ev"))
        async for event in events:
            if event.event == "deduplicated":
                assert event.job_id == first.id
                assert event.data["deduplication_id"] == "ev"
                break


async def test_many_concurrent_adds_with_one_id_make_one_job(url: str, queue: glidemq.Queue) -> None:
    queues = [glidemq.Queue(queue.name, connection=url) for _ in range(4)]
    try:
        jobs = await asyncio.gather(
            *(q.add("a", i, deduplication=glidemq.Dedup("race")) for i in range(50) for q in queues)
        )
    finally:
        for q in queues:
            await q.close()
    assert len({job.id for job in jobs}) == 1
    assert await queue.count() == 1


async def test_add_bulk_dedups_within_and_across_calls(queue: glidemq.Queue) -> None:
    jobs = await queue.add_bulk([("a", i, {"deduplication": glidemq.Dedup("b")}) for i in range(5)])
    assert len({job.id for job in jobs}) == 1 and jobs[-1].data == 0
    assert await queue.count() == 1


async def test_dedup_on_the_cluster(cluster: glidemq.testing.EmbeddedValkeyCluster, qname: str) -> None:
    async with glidemq.Queue(qname, connection=cluster.url) as q:
        a = await q.add("a", 1, deduplication=glidemq.Dedup("c"))
        b = await q.add("a", 2, deduplication=glidemq.Dedup("c"))
        assert a.id == b.id and await q.count() == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: glidemq.Dedup(""),
        lambda: glidemq.Dedup(5),  # type: ignore[arg-type]
        lambda: glidemq.Dedup("x", ttl=0),
        lambda: glidemq.Dedup("x", ttl=-1),
        lambda: glidemq.Dedup("x", ttl="1"),  # type: ignore[arg-type]
        lambda: glidemq.Dedup("x", extend=True),
        lambda: glidemq.Dedup("x", ttl=1, replace="yes"),  # type: ignore[arg-type]
    ],
)
def test_bad_dedup_is_refused(make: object) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        make()  # type: ignore[operator]


async def test_bad_dedup_option_writes_nothing(queue: glidemq.Queue, raw: GlideClient) -> None:
    await queue.add("seed", 1)
    before = await keyspace(raw, queue.name)
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add("a", 1, deduplication="k")  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add_bulk([("a", 1, {"deduplication": glidemq.Dedup("k")}), ("b", 2, {"deduplication": {}})])
    assert await keyspace(raw, queue.name) == before




async def test_flow_jobs_refuse_deduplication(url: str, qname: str) -> None:
    async with glidemq.FlowProducer(connection=url) as flow:
        with pytest.raises(glidemq.InvalidArgumentError):
            await flow.add(glidemq.FlowJob("p", qname, children=[
                glidemq.FlowJob("c", qname, deduplication=glidemq.Dedup("x")),
            ]))


async def test_replace_with_a_shorter_delay_wakes_a_sleeping_worker(url: str, queue: glidemq.Queue) -> None:
    dedup = glidemq.Dedup("soon", ttl=30, replace=True)
    job = await queue.add("a", 1, delay=20, deduplication=dedup)
    async with glidemq.Worker(queue.name, lambda j: j.data, connection=url):
        await asyncio.sleep(0.3)  # the worker now sleeps until the job's due time (or its longest block)
        await queue.add("a", 2, delay=0.05, deduplication=dedup)
        # without a wake-up the worker would sleep its full block (5 s) first
        assert await job.wait_until_finished(timeout=2.5) == 2
