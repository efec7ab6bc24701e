"""The worker registry: Queue.get_workers() with real workers, in this process and in killed subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from glide import GlideClient

import glidemq
from glidemq.discover import queue_names
from glidemq.testing import EmbeddedValkeyCluster

from .conftest import keyspace
from .fault_worker import trail_key
from .worker_helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent


async def test_a_running_worker_is_listed_and_removed_when_it_closes(queue: glidemq.Queue, url: str) -> None:
    assert await queue.get_workers() == []
    before = time.time()
    worker = glidemq.Worker(queue.name, lambda job: None, connection=url, concurrency=3)
    async with worker:
        await wait_until(queue.get_workers)
        (info,) = await queue.get_workers()
        assert isinstance(info, glidemq.WorkerInfo)
        assert info.id == worker.id
        assert info.host == socket.gethostname()
        assert info.pid == os.getpid()
        assert before - 1 <= info.started <= time.time()
        assert info.active_jobs == 0
        assert info.concurrency == 3
    assert await queue.get_workers() == []


async def test_active_jobs_follow_the_jobs_a_worker_holds(queue: glidemq.Queue, url: str) -> None:
    release = asyncio.Event()

    async def processor(job: glidemq.Job) -> None:
        await release.wait()

    await queue.add_bulk([("slow", i) for i in range(2)])
    async with glidemq.Worker(queue.name, processor, connection=url, concurrency=5, lock_duration=0.4):

        async def holding_two() -> bool:
            return [w.active_jobs for w in await queue.get_workers()] == [2]

        await wait_until(holding_two)
        release.set()

        async def holding_none() -> bool:
            return [w.active_jobs for w in await queue.get_workers()] == [0]

        await wait_until(holding_none)


async def test_several_workers_are_listed_oldest_first(queue: glidemq.Queue, url: str) -> None:
    first = glidemq.Worker(queue.name, lambda job: None, connection=url)
    second = glidemq.Worker(queue.name, lambda job: None, connection=url)
    async with first:
        await wait_until(queue.get_workers)
        async with second:

            async def both() -> bool:
                return len(await queue.get_workers()) == 2

            await wait_until(both)
            assert [w.id for w in await queue.get_workers()] == [first.id, second.id]
        assert [w.id for w in await queue.get_workers()] == [first.id]


async def test_workers_of_other_queues_are_not_listed(queue: glidemq.Queue, url: str) -> None:
    async with glidemq.Queue(queue.name + "x", connection=url) as other:
        async with glidemq.Worker(other.name, lambda job: None, connection=url):
            await wait_until(other.get_workers)
            assert await queue.get_workers() == []


async def test_a_sigkilled_worker_drops_out_within_its_ttl(
    queue: glidemq.Queue, url: str, qname: str, raw: GlideClient
) -> None:
    lock = 0.5  # the entry lives three lock durations after the last heartbeat
    args = [sys.executable, "-m", "tests.fault_worker", url, qname, "--lock-duration", str(lock)]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:

        async def ready() -> bool:
            assert process.poll() is None, "the worker process exited"
            return await raw.get(trail_key(qname, f"ready:{process.pid}")) is not None

        await wait_until(ready, timeout=20)
        await wait_until(queue.get_workers)
        assert [w.pid for w in await queue.get_workers()] == [process.pid]
        os.kill(process.pid, signal.SIGKILL)
        process.wait(5)
        assert [w.pid for w in await queue.get_workers()] == [process.pid]  # not gone before the ttl

        async def gone() -> bool:
            return await queue.get_workers() == []

        await wait_until(gone, timeout=3 * lock + 2)
        # the index is pruned too, not only the entry
        assert await raw.zcard(f"glidemq:{{{qname}:workers}}:index") == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


async def test_heartbeats_never_write_into_the_queue_keyspace(
    queue: glidemq.Queue, url: str, raw: GlideClient
) -> None:
    await queue.add("x", delay=60)
    worker = glidemq.Worker(queue.name, lambda job: None, connection=url, lock_duration=0.2)
    drained = asyncio.Event()
    worker.on("drained", drained.set)
    async with worker:
        await wait_until(queue.get_workers)
        await asyncio.wait_for(drained.wait(), 10)
        await asyncio.sleep(0.2)  # the worker now waits for the delayed job: its loop writes nothing
        before = await keyspace(raw, queue.name)
        await asyncio.sleep(0.5)  # several heartbeats
        assert await keyspace(raw, queue.name) == before
        await queue.obliterate()
        await asyncio.sleep(0.3)
        assert await keyspace(raw, queue.name) == {}  # the live worker does not bring the queue back
        assert len(await queue.get_workers()) == 1
    assert await raw.custom_command(["KEYS", f"*{queue.name}*"]) == []


async def test_discovery_does_not_mistake_the_registry_for_a_queue(url: str, qname: str) -> None:
    async with glidemq.Worker(qname, lambda job: None, connection=url):
        async with glidemq.Queue(qname, connection=url) as q:
            await wait_until(q.get_workers)
        assert not [name for name in await queue_names(url) if qname in name]


async def test_the_registry_works_on_a_cluster(cluster: EmbeddedValkeyCluster) -> None:
    names = [f"reg{i}{os.getpid()}" for i in range(3)]  # spread over several slots
    workers = [glidemq.Worker(n, lambda job: None, connection=cluster.url) for n in names]
    for worker in workers:
        await worker.__aenter__()
    try:
        for name, worker in zip(names, workers, strict=True):
            async with glidemq.Queue(name, connection=cluster.url) as q:
                await wait_until(q.get_workers)
                assert [w.id for w in await q.get_workers()] == [worker.id]
    finally:
        for worker in workers:
            await worker.close()
    for name in names:
        async with glidemq.Queue(name, connection=cluster.url) as q:
            assert await q.get_workers() == []
