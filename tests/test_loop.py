"""The event loop of glidemq's own entry points: uvloop when installed, GLIDEMQ_LOOP to choose."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest
import uvloop

import glidemq
from glidemq import _loop
from glidemq.sync import Queue as SyncQueue
from glidemq.sync import Worker as SyncWorker
from glidemq.sync._portal import Portal


@pytest.mark.parametrize(("value", "name"), [(None, "uvloop"), ("auto", "uvloop"), ("", "uvloop"),
                                             ("uvloop", "uvloop"), ("asyncio", "asyncio"), (" AsyncIO ", "asyncio")])
def test_the_loop_follows_glidemq_loop(monkeypatch: pytest.MonkeyPatch, value: str | None, name: str) -> None:
    if value is None:
        monkeypatch.delenv("GLIDEMQ_LOOP", raising=False)
    else:
        monkeypatch.setenv("GLIDEMQ_LOOP", value)
    assert _loop.loop_name() == name
    loop = _loop.new_loop()
    try:
        assert isinstance(loop, uvloop.Loop) == (name == "uvloop")
    finally:
        loop.close()


def test_an_unknown_loop_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLIDEMQ_LOOP", "tokio")
    with pytest.raises(glidemq.InvalidArgumentError, match="GLIDEMQ_LOOP must be one of auto, uvloop, asyncio"):
        _loop.loop_name()


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    monkeypatch.setenv("GLIDEMQ_LOOP", "auto")
    assert _loop.loop_name() == "asyncio"
    monkeypatch.setenv("GLIDEMQ_LOOP", "uvloop")
    with pytest.raises(glidemq.InvalidArgumentError, match=r'pip install "glidemq\[uvloop\]"'):
        _loop.loop_name()


def test_queue_worker_and_events_work_on_uvloop(url: str, qname: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A whole round on uvloop: adds, a worker with retries, events, waiting for results."""
    monkeypatch.delenv("GLIDEMQ_LOOP", raising=False)

    async def scenario() -> dict[str, Any]:
        assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        tries: dict[str, int] = {}

        async def processor(job: glidemq.Job) -> Any:
            tries[job.id] = tries.get(job.id, 0) + 1
            if job.data["i"] % 10 == 0 and tries[job.id] == 1:
                raise RuntimeError("first try fails")
            await asyncio.sleep(0)
            return job.data["i"] * 2

        seen: set[str] = set()

        async def listen(events: glidemq.QueueEvents) -> None:
            async for event in events:
                if event.event == "completed":
                    seen.add(event.job_id)
                    if len(seen) == 200:
                        return

        async with glidemq.Queue(qname, connection=url) as queue, glidemq.QueueEvents(qname, connection=url) as events:
            listener = asyncio.create_task(listen(events))
            jobs = await queue.add_bulk([("double", {"i": i}, {"attempts": 2}) for i in range(200)])
            async with glidemq.Worker(qname, processor, connection=url, concurrency=20):
                results = [await job.wait_until_finished(timeout=30) for job in jobs]
            counts = await queue.get_job_counts()
            await asyncio.wait_for(listener, 10)
        return {"results": results, "counts": counts, "seen": seen, "ids": {j.id for j in jobs},
                "retried": sum(1 for n in tries.values() if n == 2)}

    out = _loop.run(scenario())
    assert out["results"] == [i * 2 for i in range(200)]
    assert out["counts"]["completed"] == 200 and out["counts"]["failed"] == 0
    assert out["retried"] == 20
    assert out["seen"] == out["ids"]


def test_the_sync_api_runs_on_the_chosen_loop(url: str, qname: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for choice, kind in (("auto", uvloop.Loop), ("asyncio", asyncio.AbstractEventLoop)):
        monkeypatch.setenv("GLIDEMQ_LOOP", choice)
        portal = Portal()
        try:
            assert isinstance(portal.loop, kind)
            assert isinstance(portal.loop, uvloop.Loop) == (choice == "auto")
        finally:
            portal.loop.call_soon_threadsafe(portal.loop.stop)
            portal.thread.join(5)
    monkeypatch.delenv("GLIDEMQ_LOOP", raising=False)
    done = threading.Event()
    with SyncQueue(qname, connection=url) as queue:
        job = queue.add("x", 21)
        with SyncWorker(qname, lambda j: j.data * 2, connection=url):
            assert job.wait_until_finished(timeout=20) == 42
            done.set()
    assert done.is_set()
