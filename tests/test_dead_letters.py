"""Dead-letter queue of a Worker, against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import glidemq
import glidemq._codec
import glidemq.testing
from glidemq._client import Client
from glidemq._codec import decode_active, encode_finished
from glidemq.worker import encode_take_options

from .worker_helpers import wait_until


async def _dead(url: str, name: str, count: int) -> list[glidemq.Job]:
    async with glidemq.Queue(name, connection=url) as dlq:
        await wait_until(lambda: _count(dlq, count), timeout=10)
        return await dlq.get_jobs("waiting")


async def _count(q: glidemq.Queue, n: int) -> bool:
    return (await q.get_job_counts())["waiting"] >= n


def _boom(job: glidemq.Job) -> None:
    raise ValueError(f"bad {job.data}")


async def test_final_failure_lands_in_the_dead_letter_queue(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("mail", {"to": "x"}, attempts=2)
    async with glidemq.Worker(qname, _boom, connection=url, dead_letter_queue=qname + "-dlq"):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=5)
        (dead,) = await _dead(url, qname + "-dlq", 1)
    assert dead.name == "mail"
    assert dead.data == {
        "name": "mail", "data": {"to": "x"}, "reason": "bad {'to': 'x'}", "queue": qname, "id": job.id,
        "attempts_made": 2, "failed_on": dead.data["failed_on"],
    }
    assert await job.get_state() == "failed"  # the original stays failed in its own queue


async def test_retries_do_not_go_to_the_dead_letter_queue(url: str, queue: glidemq.Queue, qname: str) -> None:
    tries = 0

    def flaky(job: glidemq.Job) -> str:
        nonlocal tries
        tries += 1
        if tries < 3:
            raise ValueError("not yet")
        return "ok"

    job = await queue.add("x", None, attempts=3)
    async with glidemq.Worker(qname, flaky, connection=url, dead_letter_queue=qname + "-dlq"):
        assert await job.wait_until_finished(timeout=5) == "ok"
    async with glidemq.Queue(qname + "-dlq", connection=url) as dlq:
        assert (await dlq.get_job_counts())["waiting"] == 0


@pytest.mark.parametrize(
    ("processor", "options", "reason"),
    [
        (lambda job: (_ for _ in ()).throw(glidemq.UnrecoverableError("nope")), {"attempts": 5}, "nope"),
        (lambda job: asyncio.sleep(5), {"timeout": 0.1}, "job timed out after 0.1s"),
    ],
    ids=["unrecoverable", "timeout"],
)
async def test_unrecoverable_and_timed_out_jobs_are_dead_lettered(
    url: str, queue: glidemq.Queue, qname: str, processor: Any, options: dict[str, Any], reason: str
) -> None:
    job = await queue.add("x", 7, **options)
    async with glidemq.Worker(qname, processor, connection=url, dead_letter_queue=qname + "-dlq"):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=5)
        (dead,) = await _dead(url, qname + "-dlq", 1)
    assert dead.data["reason"] == reason and dead.data["id"] == job.id and dead.data["data"] == 7


async def test_removed_on_fail_jobs_still_reach_the_dead_letter_queue(
    url: str, queue: glidemq.Queue, qname: str
) -> None:
    job = await queue.add("x", "payload", remove_on_fail=True)
    async with glidemq.Worker(qname, _boom, connection=url, dead_letter_queue=qname + "-dlq"):
        (dead,) = await _dead(url, qname + "-dlq", 1)
    assert dead.data["data"] == "payload" and await queue.get_job(job.id) is None


async def test_a_failure_left_by_a_dead_worker_is_delivered_by_the_next(
    url: str, queue: glidemq.Queue, qname: str
) -> None:
    """A worker that failed a job for good and died before copying it: the failure was
    recorded with the job's end, so the next worker of the queue copies it."""
    job = await queue.add("x", {"n": 1})
    client = Client(glidemq.Connection(url))
    options = encode_take_options(True, None)
    try:
        reply = await client.fcall("take", queue._ctx.base, ["30000", "1", b"", options])
        ((job_id, token, *_),) = decode_active(reply[3], reply[0])
        finished = [(job_id, token, "f", b"died", "1", -1, b"", -1, 0)]
        await client.fcall("take", queue._ctx.base, ["30000", "0", encode_finished(finished), options])
    finally:
        await client.close()
    assert await job.get_state() == "failed"  # failed for good; nobody copied it yet
    async with glidemq.Worker(qname, _boom, connection=url, dead_letter_queue=qname + "-dlq"):
        (dead,) = await _dead(url, qname + "-dlq", 1)
    assert dead.data["id"] == job.id and dead.data["reason"] == "died"


async def test_a_copy_made_twice_is_one_dead_letter_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    from glidemq._dead_letters import envelope

    await queue.add("x", 1)
    async with glidemq.Worker(qname, _boom, connection=url, dead_letter_queue=qname + "-dlq"):
        (dead,) = await _dead(url, qname + "-dlq", 1)
    # the same outbox entry delivered again (a worker that died after copying, before acking)
    entry = glidemq._codec.pack([dead.data["id"], "x", glidemq._codec.pack(1), dead.data["reason"], "1",
                                 str(round(dead.data["failed_on"] * 1000))])
    job_id, name, body = envelope(qname, entry)
    async with glidemq.Queue(qname + "-dlq", connection=url) as dlq:
        again = await dlq.add(name, body, job_id=job_id)
        assert again.id == dead.id
        assert (await dlq.get_job_counts())["waiting"] == 1


@pytest.mark.parametrize("bad", ["", "a:b", "{x}", 5])
def test_bad_dead_letter_queue_name_is_refused(url: str, bad: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker("q", _boom, connection=url, dead_letter_queue=bad)


def test_dead_letter_queue_must_differ_from_the_worker_queue(url: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker("q", _boom, connection=url, dead_letter_queue="q")


async def test_dead_letters_on_the_cluster(cluster: glidemq.testing.EmbeddedValkeyCluster, qname: str) -> None:
    # the origin and the dead-letter queue hash to different slots: copying must not need both in one call
    async with glidemq.Queue(qname, connection=cluster.url) as q:
        job = await q.add("x", 1)
        async with glidemq.Worker(qname, _boom, connection=cluster.url, dead_letter_queue=qname + "-dead"):
            (dead,) = await _dead(cluster.url, qname + "-dead", 1)
    assert dead.data["id"] == job.id


async def test_a_scheduled_job_is_dead_lettered_too(url: str, queue: glidemq.Queue, qname: str) -> None:
    # a scheduler's job ids hold ':' ("repeat:<id>:<slot>"), which custom job ids may not
    await queue.upsert_job_scheduler("tick", every=60, name="tick", data={"n": 1})
    async with glidemq.Worker(qname, _boom, connection=url, dead_letter_queue=qname + "-dlq"):
        (dead,) = await _dead(url, qname + "-dlq", 1)
    assert dead.data["id"].startswith("repeat:tick:") and dead.data["data"] == {"n": 1}
    assert ":" not in dead.id
