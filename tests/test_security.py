"""The runtime ACL of docs/security.md is complete: a user restricted to exactly it can
add, process, listen to events and read counts once an admin has loaded the library."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest

import glidemq
from glidemq._cli_admin import load_library
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster

SECURITY_DOC = pathlib.Path(__file__).resolve().parent.parent / "docs" / "security.md"

# quoted verbatim in docs/security.md (test_the_docs_quote_the_acl keeps them in sync)
RUNTIME_ACL = (
    "ACL SETUSER glidemq_app on >CHANGE-ME resetkeys ~glidemq* resetchannels -@all "
    "+fcall +fcall_ro +time +xread +xrevrange +lrange +bzpopmin +wait +waitaof +ping +info "
    "+hello +auth +select +client|setname +client|setinfo +cluster|slots +cluster|shards +readonly "
    "+hset +hget +hmget +hgetall +hdel +hincrby +zadd +zrem +zrange +zrangebyscore +zcard +zscore +zscan "
    "+zpopmin +zremrangebyrank +lpush +rpush +lpop +lrem +llen +incr +incrby +del +exists +xadd "
    "+sadd +srem +scard +smembers +expire +persist +get +set +pttl +pexpire"
)
PASSWORD = "s3cret-runtime"


def acl_rules() -> list[str]:
    """RUNTIME_ACL as the arguments of ACL SETUSER, with the test's password."""
    words = RUNTIME_ACL.split()
    assert words[:3] == ["ACL", "SETUSER", "glidemq_app"]
    return [f">{PASSWORD}" if w == ">CHANGE-ME" else w for w in words[3:]]


@pytest.fixture
def locked() -> Iterator[EmbeddedValkey]:
    with EmbeddedValkey() as server:
        server.command("ACL", "SETUSER", "glidemq_app", *acl_rules())
        yield server


def test_the_docs_quote_the_acl() -> None:
    assert RUNTIME_ACL in SECURITY_DOC.read_text(encoding="utf-8")


async def test_runtime_user_restricted_to_the_documented_acl(locked: EmbeddedValkey, qname: str) -> None:
    await load_library(locked.url)  # the admin (default user) pre-loads the library
    locked.command("ACL", "LOG", "RESET")
    url = f"valkey://glidemq_app:{PASSWORD}@127.0.0.1:{locked.port}"

    async def work(job: glidemq.Job) -> dict[str, int]:
        await job.update_progress(50)
        await job.log("working")
        return {"ok": job.data["x"]}

    async with glidemq.Queue(qname, connection=url) as queue:
        async with glidemq.QueueEvents(qname, connection=url, last_event_id="0") as events:
            job = await queue.add("job", {"x": 1}, attempts=2)
            async with glidemq.FlowProducer(connection=url) as flow:
                tree = await flow.add(glidemq.FlowJob("job", qname, {"x": 5}, children=[
                    glidemq.FlowJob("job", qname, {"x": 6}), glidemq.FlowJob("job", qname, {"fail": 1}, attempts=1),
                ]))
            bulk = await queue.add_bulk([("bulk", {"x": 2}), ("bulk", {"x": 3}, {"delay": 30})])
            deduplicated = [
                await queue.add("dedup", {"x": 7}, deduplication=glidemq.Dedup("d1", ttl=60)) for _ in range(2)
            ]
            assert deduplicated[0].id == deduplicated[1].id
            await queue.set_rate_limit(1000, 1)
            durable = glidemq.Durability(replicas=1, fsync=True, timeout=0.1)
            with pytest.raises(glidemq.DurabilityError) as short:  # no replica, no AOF: WAIT and WAITAOF run
                await queue.add("durable", {"x": 4}, durability=durable)
            async with glidemq.Worker(qname, work, connection=url, concurrency=2, stalled_interval=0.2):
                assert await job.wait_until_finished(timeout=10) == {"ok": 1}
                assert await bulk[0].wait_until_finished(timeout=10) == {"ok": 2}
                assert await short.value.jobs[0].wait_until_finished(timeout=10) == {"ok": 4}
                assert await deduplicated[0].wait_until_finished(timeout=10) == {"ok": 7}
                with pytest.raises(glidemq.JobFailedError):  # a child failed: so does its parent
                    await tree.job.wait_until_finished(timeout=10)
                assert list((await tree.job.get_children_values()).values()) == [{"ok": 6}]
            assert await job.get_logs() == ["working"]
            counts = await queue.get_job_counts()
            assert counts["completed"] == 5 and counts["delayed"] == 1
            seen = [(await asyncio.wait_for(events.__anext__(), 5)).event for _ in range(3)]
            assert seen[0] == "added"
            await queue.clean(0, 10)
            await queue.obliterate(force=True)
    # a denied command or key would be in the ACL log
    assert locked.command("ACL", "LOG") == []


async def test_runtime_acl_on_the_cluster(cluster: EmbeddedValkeyCluster, qname: str) -> None:
    for node in cluster.nodes:
        node.command("ACL", "SETUSER", "glidemq_app", "reset", *acl_rules())
    try:
        await load_library(cluster.url)
        for node in cluster.nodes:
            node.command("ACL", "LOG", "RESET")
        url = f"valkey://glidemq_app:{PASSWORD}@127.0.0.1:{cluster.port}?cluster=true"

        async def work(job: glidemq.Job) -> int:
            await job.log("x")
            return 1

        async with glidemq.Queue(qname, connection=url) as queue:
            async with glidemq.QueueEvents(qname, connection=url, last_event_id="0") as events:
                job = await queue.add("a", 1, durability=glidemq.Durability(replicas=1, timeout=2))
                async with glidemq.Worker(qname, work, connection=url):
                    assert await job.wait_until_finished(timeout=10) == 1
                assert await job.get_logs() == ["x"]
                assert (await queue.get_job_counts())["completed"] == 1
                assert (await asyncio.wait_for(events.__anext__(), 5)).event == "added"
                await queue.obliterate(force=True)
        assert [node.command("ACL", "LOG") for node in cluster.nodes] == [[] for _ in cluster.nodes]
    finally:
        for node in cluster.nodes:
            node.command("ACL", "DELUSER", "glidemq_app")
