"""Queue.add_and_wait (request-reply) against a real server."""

from __future__ import annotations

import asyncio

import pytest

import glidemq


async def _double(job: glidemq.Job) -> int:
    return int(job.data) * 2


async def test_returns_the_return_value(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.Worker(qname, _double, connection=url, concurrency=10):
        assert await queue.add_and_wait("x", 21, timeout=5) == 42
        results = await asyncio.gather(*(queue.add_and_wait("x", i, timeout=5) for i in range(100)))
    assert results == [i * 2 for i in range(100)]


async def test_many_waits_share_one_listener_connection(url: str, queue: glidemq.Queue, qname: str, raw) -> None:  # type: ignore[no-untyped-def]
    async def clients() -> int:
        text = await raw.custom_command(["CLIENT", "LIST"])
        return text.decode().count("name=glidemq-waiter")

    async with glidemq.Worker(qname, _double, connection=url, concurrency=10):
        await queue.add_and_wait("x", 1, timeout=5)
        before = await clients()
        await asyncio.gather(*(queue.add_and_wait("x", i, timeout=5) for i in range(50)))
        assert await clients() == before


async def test_failure_raises_job_failed_error(url: str, queue: glidemq.Queue, qname: str) -> None:
    def boom(job: glidemq.Job) -> None:
        raise RuntimeError("kaputt")

    async with glidemq.Worker(qname, boom, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await queue.add_and_wait("x", 1, timeout=5, attempts=2)
    assert info.value.failed_reason == "kaputt"


async def test_timeout_raises_timeout_error_and_leaves_the_job(queue: glidemq.Queue) -> None:
    with pytest.raises(TimeoutError):
        await queue.add_and_wait("x", 1, timeout=0.2)
    assert await queue.count() == 1


async def test_job_options_are_passed_on(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def identity(job: glidemq.Job) -> list[object]:
        return [job.id, job.priority]

    async with glidemq.Worker(qname, identity, connection=url):
        assert await queue.add_and_wait("x", 1, timeout=5, job_id="fixed", priority=3) == ["fixed", 3]


@pytest.mark.parametrize("timeout", [0, -1, "1", None])
async def test_bad_timeout_is_refused_before_writing(queue: glidemq.Queue, timeout: object) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add_and_wait("x", 1, timeout=timeout)  # type: ignore[arg-type]
    assert await queue.count() == 0


async def test_bad_job_option_is_refused_before_writing(queue: glidemq.Queue) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add_and_wait("x", 1, timeout=1, priority=-1)
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.add_and_wait("x", 1, timeout=1, colour="red")
    assert await queue.count() == 0
