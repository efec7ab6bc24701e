"""QueueEvents: every lifecycle event with its data, replay, lazy use and robustness."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

import glidemq
from glidemq._waiter import RawEvent, split_entry
from glidemq.testing import EmbeddedValkey

Event = glidemq.QueueEvent


class Collector:
    """Reads a QueueEvents in the background and keeps every event."""

    def __init__(self, events: glidemq.QueueEvents) -> None:
        self.events = events
        self.seen: list[Event] = []
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        async for event in self.events:
            self.seen.append(event)

    def of(self, job_id: str) -> list[Event]:
        return [e for e in self.seen if e.job_id == job_id]

    def names(self, job_id: str) -> list[str]:
        return [e.event for e in self.of(job_id)]

    async def until(self, predicate: Callable[[list[Event]], bool], timeout: float = 10.0) -> list[Event]:
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            if self._task.done():
                self._task.result()
                raise AssertionError(f"the event stream ended; seen: {self.seen}")
            if time.monotonic() > deadline:
                raise AssertionError(f"expected events not seen; seen: {[(e.event, e.job_id) for e in self.seen]}")
            await asyncio.sleep(0.01)
        return self.seen

    async def has(self, event: str, job_id: str | None = None, timeout: float = 10.0) -> Event:
        def found(seen: list[Event]) -> bool:
            return any(e.event == event and (job_id is None or e.job_id == job_id) for e in seen)

        await self.until(found, timeout)
        return next(e for e in self.seen if e.event == event and (job_id is None or e.job_id == job_id))

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_job_lifecycle_events(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def work(job: glidemq.Job) -> dict[str, Any]:
        await job.update_progress(30)
        await job.update_progress(62.5)
        await job.update_progress({"stage": "upload", "pct": 90})
        return {"ok": True, "items": [1, 2], "raw": b"\x00\x01"}

    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        job = await queue.add("lifecycle", {"in": 1})
        async with glidemq.Worker(qname, work, connection=url):
            await job.wait_until_finished(timeout=10)
            await collector.has("completed", job.id)
        await collector.stop()
    mine = collector.of(job.id)
    assert [e.event for e in mine] == ["added", "active", "progress", "progress", "progress", "completed"]
    for event in collector.seen:
        assert isinstance(event, glidemq.QueueEvent)
        assert isinstance(event.event, str) and isinstance(event.job_id, str) and isinstance(event.data, dict)
    assert mine[0].data.get("name") == "lifecycle"
    assert [e.data["progress"] for e in mine[2:5]] == [30, 62.5, {"stage": "upload", "pct": 90}]
    assert mine[-1].data["return_value"] == {"ok": True, "items": [1, 2], "raw": b"\x00\x01"}


async def test_failed_event_data(url: str, queue: glidemq.Queue, qname: str) -> None:
    def work(job: glidemq.Job) -> None:
        raise RuntimeError(f"broken {job.data}")

    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        job = await queue.add("fails", 7, attempts=2)
        async with glidemq.Worker(qname, work, connection=url):
            with pytest.raises(glidemq.JobFailedError):
                await job.wait_until_finished(timeout=10)
            await collector.has("failed", job.id)
            await asyncio.sleep(0.2)
        await collector.stop()
    failed = [e for e in collector.of(job.id) if e.event == "failed"]
    assert failed, "a failed event was published"
    last = failed[-1]
    assert "broken 7" in last.data["failed_reason"]
    assert last.data["attempts_made"] == 2
    assert isinstance(last.data["attempts_made"], int)
    assert collector.names(job.id).count("active") == 2
    assert "completed" not in collector.names(job.id)


async def test_delayed_events(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        delayed = await queue.add("later", None, delay=60)
        event = await collector.has("delayed", delayed.id)
        assert "delay" in event.data
        assert [e.event for e in collector.of(delayed.id)] == ["added", "delayed"]

        tries: list[int] = []

        async def flaky(job: glidemq.Job) -> str:
            tries.append(1)
            if len(tries) == 1:
                raise RuntimeError("again")
            return "ok"

        retried = await queue.add("backoff", None, attempts=2, backoff=0.2)
        async with glidemq.Worker(qname, flaky, connection=url):
            await retried.wait_until_finished(timeout=10)
            await collector.has("completed", retried.id)
        await collector.stop()
    assert "delayed" in collector.names(retried.id), "waiting out a backoff is a delayed event"
    assert collector.names(retried.id)[-1] == "completed"


async def test_removed_event(queue: glidemq.Queue, qname: str, url: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        job = await queue.add("doomed")
        other = await queue.add("doomed-too")
        assert await job.remove() is True
        assert await queue.remove(other.id) is True
        await collector.has("removed", job.id)
        await collector.has("removed", other.id)
        await collector.stop()
    assert collector.names(job.id) == ["added", "removed"]


async def test_paused_resumed_and_drained_events(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        await queue.pause()
        await queue.resume()
        paused = await collector.has("paused")
        resumed = await collector.has("resumed")
        assert paused.job_id == "" and resumed.job_id == ""
        job = await queue.add("only")
        async with glidemq.Worker(qname, lambda j: None, connection=url):
            await job.wait_until_finished(timeout=10)
            drained = await collector.has("drained")
        await collector.stop()
    assert drained.job_id == ""
    names = [e.event for e in collector.seen]
    assert names.index("paused") < names.index("resumed")


async def test_drain_publishes_drained(queue: glidemq.Queue, qname: str, url: str) -> None:
    await queue.add_bulk([("x", i) for i in range(3)])
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        assert await queue.drain() == 3
        await collector.has("drained")
        await collector.stop()


async def test_bulk_add_publishes_one_added_event_per_job(queue: glidemq.Queue, qname: str, url: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        jobs = await queue.add_bulk([(f"b{i}", i) for i in range(25)])
        await collector.until(lambda seen: sum(e.event == "added" for e in seen) == 25)
        await collector.stop()
    added = [e for e in collector.seen if e.event == "added"]
    assert [e.job_id for e in added] == [j.id for j in jobs]
    assert [e.data["name"] for e in added] == [f"b{i}" for i in range(25)]


async def test_completed_events_for_a_batch_of_jobs(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        jobs = await queue.add_bulk([("sq", i) for i in range(40)])
        async with glidemq.Worker(qname, lambda j: j.data * j.data, connection=url, concurrency=20):
            await collector.until(lambda seen: sum(e.event == "completed" for e in seen) == 40)
        await collector.stop()
    values = {e.job_id: e.data["return_value"] for e in collector.seen if e.event == "completed"}
    assert values == {job.id: job.data * job.data for job in jobs}


async def test_default_start_skips_history_and_zero_replays_it(url: str, queue: glidemq.Queue, qname: str) -> None:
    old = await queue.add("old", 1)
    await queue.pause()
    await queue.resume()
    async with glidemq.QueueEvents(qname, connection=url) as only_new:
        collector = Collector(only_new)
        new = await queue.add("new", 2)
        await collector.has("added", new.id)
        await collector.stop()
    assert old.id not in {e.job_id for e in collector.seen}
    assert "paused" not in [e.event for e in collector.seen]

    async with glidemq.QueueEvents(qname, connection=url, last_event_id="0") as replay:
        history = Collector(replay)
        await history.has("added", new.id)
        await history.stop()
    names = [(e.event, e.job_id) for e in history.seen]
    assert names[:4] == [("added", old.id), ("paused", ""), ("resumed", ""), ("added", new.id)]


async def test_resume_from_an_event_id(url: str, queue: glidemq.Queue, qname: str) -> None:
    first = await queue.add("first")
    async with glidemq.QueueEvents(qname, connection=url, last_event_id="0") as events:
        collector = Collector(events)
        mark = await collector.has("added", first.id)
        await collector.stop()
    second = await queue.add("second")
    async with glidemq.QueueEvents(qname, connection=url, last_event_id=mark.id) as resumed:
        collector = Collector(resumed)
        await collector.has("added", second.id)
        await collector.stop()
    assert first.id not in {e.job_id for e in collector.seen}


async def test_two_listeners_see_the_same_events(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as a, glidemq.QueueEvents(qname, connection=url) as b:
        ca, cb = Collector(a), Collector(b)
        jobs = [await queue.add("j", i) for i in range(5)]
        for collector in (ca, cb):
            await collector.until(lambda seen: sum(e.event == "added" for e in seen) == 5)
            await collector.stop()
    assert [(e.event, e.job_id) for e in ca.seen] == [(e.event, e.job_id) for e in cb.seen]
    assert [e.job_id for e in ca.seen] == [j.id for j in jobs]


async def test_without_async_with(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("lazy")
    later = await queue.add("later", None, delay=100)
    events = glidemq.QueueEvents(qname, connection=url, last_event_id="0")
    try:
        seen = []
        async for event in events:
            seen.append((event.event, event.job_id))
            if len(seen) == 3:
                break
        assert seen == [("added", job.id), ("added", later.id), ("delayed", later.id)]
        third = await queue.add("third")
        event = await asyncio.wait_for(events.__anext__(), 5)
        assert (event.event, event.job_id) == ("added", third.id)
    finally:
        await events.close()


async def test_timeout_while_waiting_loses_nothing(url: str, queue: glidemq.Queue, qname: str) -> None:
    async with glidemq.QueueEvents(qname, connection=url) as events:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(events.__anext__(), 0.3)
        job = await queue.add("after-timeout")
        event = await asyncio.wait_for(events.__anext__(), 5)
        assert (event.event, event.job_id) == ("added", job.id)
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                async for _ in events:
                    pass
        second = await queue.add("second")
        event = await asyncio.wait_for(events.__anext__(), 5)
        assert (event.event, event.job_id) == ("added", second.id)


async def test_close_ends_iteration(url: str, qname: str) -> None:
    events = glidemq.QueueEvents(qname, connection=url)
    reader = asyncio.ensure_future(events.__anext__())
    await asyncio.sleep(0.2)
    await events.close()
    with pytest.raises((StopAsyncIteration, asyncio.CancelledError, glidemq.GlideMQError)):
        await asyncio.wait_for(reader, 5)


async def test_listener_survives_server_restart(qname: str) -> None:
    with EmbeddedValkey() as own:
        async with glidemq.Queue(qname, connection=glidemq.Connection(own.url, request_timeout=2)) as queue:
            async with glidemq.QueueEvents(qname, connection=own.url) as events:
                collector = Collector(events)
                before = await queue.add("before")
                await collector.has("added", before.id)
                own.restart()
                deadline = time.monotonic() + 15
                while True:
                    try:
                        after = await queue.add("after-restart")
                        break
                    except glidemq.ConnectionFailedError:
                        assert time.monotonic() < deadline
                await collector.has("added", after.id, timeout=15)
                await collector.stop()


DEAD_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    import glidemq

    async def work(job):
        print("started", job.id, flush=True)
        await asyncio.sleep(3600)

    async def main():
        worker = glidemq.Worker(sys.argv[2], work, connection=sys.argv[1], lock_duration=1, stalled_interval=30)
        await worker.run()

    asyncio.run(main())
    """
)


async def test_stalled_event(url: str, queue: glidemq.Queue, qname: str, tmp_path: Path) -> None:
    script = tmp_path / "dead_worker.py"
    script.write_text(DEAD_WORKER)
    job = await queue.add("survivor", 5)
    async with glidemq.QueueEvents(qname, connection=url) as events:
        collector = Collector(events)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), url, qname, stdout=asyncio.subprocess.PIPE, env=env
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 20)
            assert line.split() == [b"started", job.id.encode()]
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        assert await job.get_state() == "active"
        async with glidemq.Worker(qname, lambda j: j.data * 2, connection=url, lock_duration=1, stalled_interval=0.3):
            assert await job.wait_until_finished(timeout=20) == 10
            await collector.has("completed", job.id)
        await collector.stop()
    names = collector.names(job.id)
    assert "stalled" in names
    assert names.index("stalled") < names.index("completed")
    assert names.count("active") == 2


def test_stream_entries_of_every_library_format_split_into_the_same_events() -> None:
    expected = [
        RawEvent("1-0", "added", "7", {"name": b"mail"}),
        RawEvent("1-0", "added", "8", {"name": b"sms"}),
        RawEvent("1-0", "failed", "7", {"failed_reason": b"boom", "attempts_made": b"2"}),
        RawEvent("1-0", "drained", "", {}),
    ]
    keyed = ["added", "name", ["7", "mail", "8", "sms"], "failed", "failed_reason,attempts_made", ["7", "boom", 2],
             "drained", "", [""]]
    named = ["added", ["id", "7", "name", "mail", "id", "8", "name", "sms"],
             "failed", ["id", "7", "failed_reason", "boom", "attempts_made", 2], "drained", ["id", ""]]
    assert split_entry("1-0", [[b"c", msgpack.packb(keyed)]]) == expected
    assert split_entry("1-0", [[b"b", msgpack.packb(named)]]) == expected
    one_each = [[b"e", b"failed"], [b"id", b"7"], [b"failed_reason", b"boom"], [b"attempts_made", b"2"]]
    assert split_entry("1-0", one_each) == [expected[2]]
    assert split_entry("1-0", [[b"x", b"?"]]) == []
