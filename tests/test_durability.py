"""Durable adds (WAIT / WAITAOF) on a real primary with a real replica, and on the cluster."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

import glidemq
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster


@pytest.fixture(scope="module")
def replicated() -> Iterator[EmbeddedValkey]:
    """A primary with appendonly yes and one attached replica."""
    with EmbeddedValkey(appendonly=True) as primary, EmbeddedValkey() as replica:
        replica.command("REPLICAOF", primary.host, primary.port)
        deadline = time.monotonic() + 15
        while b"master_link_status:up" not in replica.command("INFO", "replication"):
            assert time.monotonic() < deadline, "the replica did not attach"
            time.sleep(0.05)
        yield primary


async def test_replica_acknowledges_add_and_bulk(replicated: EmbeddedValkey, qname: str) -> None:
    async with glidemq.Queue(qname, connection=replicated.url) as queue:
        wanted = glidemq.Durability(replicas=1, fsync=True, timeout=2)
        job = await queue.add("a", {"x": 1}, durability=wanted)
        jobs = await queue.add_bulk([("b", 1), ("c", 2, {"priority": 3})], durability=wanted)
        assert len(jobs) == 2 and (await queue.get_job(job.id)) is not None
        assert await queue.count() == 3


async def test_too_many_replicas_raise_with_what_was_achieved(replicated: EmbeddedValkey, qname: str) -> None:
    async with glidemq.Queue(qname, connection=replicated.url) as queue:
        started = time.monotonic()
        with pytest.raises(glidemq.DurabilityError) as caught:
            await queue.add("a", 1, durability=glidemq.Durability(replicas=5, timeout=0.2))
        assert time.monotonic() - started < 3
        error = caught.value
        assert isinstance(error, glidemq.GlideMQError)
        assert error.achieved == glidemq.Achieved(replicas=1, fsync=False)
        assert error.requested.replicas == 5 and "1 of 5 replicas" in str(error)
        assert [j.id for j in error.jobs] == [j.id for j in await queue.get_jobs("waiting")]  # written anyway


async def test_concurrent_durable_and_plain_adds(replicated: EmbeddedValkey, qname: str) -> None:
    async with glidemq.Queue(qname, connection=replicated.url) as queue:
        durable = glidemq.Durability(replicas=1)
        jobs = await asyncio.gather(
            *(queue.add("d", i, durability=durable if i % 2 else None) for i in range(40))
        )
        assert len({j.id for j in jobs}) == 40 and await queue.count() == 40


async def test_concurrent_durable_adds_short_of_replicas_each_raise_durability_error(url: str, qname: str) -> None:
    """On a server without replicas every WAIT runs its full timeout, one after the other on the
    durable adds' connection: each add still reports DurabilityError, none times out."""
    connection = glidemq.Connection(url, request_timeout=1)
    async with glidemq.Queue(qname, connection=connection) as queue:
        wanted = glidemq.Durability(replicas=1, timeout=0.2)
        adds = [queue.add("d", i, durability=wanted) for i in range(8)]
        outcomes = await asyncio.gather(*adds, return_exceptions=True)
        assert all(isinstance(o, glidemq.DurabilityError) for o in outcomes), outcomes
        assert await queue.count() == 8


async def test_fsync_without_appendonly_is_reported(url: str, qname: str) -> None:
    async with glidemq.Queue(qname, connection=url) as queue:
        with pytest.raises(glidemq.DurabilityError, match="appendonly") as caught:
            await queue.add("a", 1, durability=glidemq.Durability(fsync=True, timeout=0.5))
        assert caught.value.achieved == glidemq.Achieved(replicas=0, fsync=False)
        assert await queue.count() == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: glidemq.Durability(replicas=-1),
        lambda: glidemq.Durability(replicas=True),  # type: ignore[arg-type]
        lambda: glidemq.Durability(timeout=0),
        lambda: glidemq.Durability(timeout=-1.0),
        lambda: glidemq.Durability(fsync="yes"),  # type: ignore[arg-type]
    ],
)
def test_bad_durability_is_rejected(make: object) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        make()  # type: ignore[operator]


async def test_bad_durability_writes_nothing(queue: glidemq.Queue) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add("a", 1, durability={"replicas": 1})  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add_bulk([("a", 1, {"durability": glidemq.Durability(replicas=1)})])
    assert await queue.count() == 0


async def test_cluster_durable_adds(cluster: EmbeddedValkeyCluster, qname: str) -> None:
    async with glidemq.Queue(qname, connection=cluster.url) as queue:
        job = await queue.add("a", 1, durability=glidemq.Durability(replicas=1, timeout=2))
        assert await queue.get_job(job.id) is not None
        await queue.add_bulk([("b", i) for i in range(5)], durability=glidemq.Durability(replicas=1, timeout=2))
        with pytest.raises(glidemq.DurabilityError) as caught:
            await queue.add("c", 1, durability=glidemq.Durability(replicas=5, timeout=0.2))
        assert caught.value.achieved.replicas == 1
        assert await queue.count() == 7
