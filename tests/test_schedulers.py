"""Job schedulers (repeatable jobs): every/cron slots, one job per slot, replace/remove, bad input."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from glide import GlideClient

import glidemq
from glidemq._cron import next_slot
from glidemq.testing import EmbeddedValkeyCluster

from .conftest import keyspace
from .worker_helpers import wait_until

UTC = timezone.utc


def slot_of(job_id: str) -> int:
    """The slot (epoch ms) in an iteration job's id "repeat:<scheduler>:<slot>"."""
    prefix, _, slot = job_id.rpartition(":")
    assert prefix.startswith("repeat:")
    return int(slot)


async def pending(q: glidemq.Queue) -> list[glidemq.Job]:
    return await q.get_jobs(["waiting", "delayed"])


async def info_of(q: glidemq.Queue, scheduler_id: str) -> glidemq.SchedulerInfo:
    (info,) = [s for s in await q.get_job_schedulers() if s.id == scheduler_id]
    return info


class Recorder:
    """A processor that records the ids (and server slots) of the jobs it ran."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.started: list[float] = []
        self.datas: list[Any] = []

    async def __call__(self, job: glidemq.Job) -> None:
        self.ids.append(job.id)
        self.started.append(job.processed_on or 0.0)
        self.datas.append(job.data)


# --- every -------------------------------------------------------------------------------------


async def test_every_fires_at_start_and_repeatedly(queue: glidemq.Queue, url: str, qname: str) -> None:
    before = time.time()
    await queue.upsert_job_scheduler("tick", every=0.2, name="tick", data={"n": 1}, attempts=2)
    (first,) = await pending(queue)
    assert first.id.startswith("repeat:tick:") and first.name == "tick" and first.data == {"n": 1}
    assert first.attempts == 2
    assert await first.get_state() == "waiting"  # start defaults to now: due at once
    info = await info_of(queue, "tick")
    assert isinstance(info, glidemq.SchedulerInfo)
    assert info.every == 0.2 and info.cron is None and info.count == 1
    assert info.next_run == slot_of(first.id) / 1000
    assert abs(info.next_run - before) < 5
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) >= 4)
    assert recorder.ids[0] == first.id
    slots = [slot_of(i) for i in recorder.ids]
    assert len(set(slots)) == len(slots)
    assert all((b - a) % 200 == 0 and b > a for a, b in pairwise(slots))
    assert recorder.datas[-1] == {"n": 1}


async def test_every_first_slot_is_start(queue: glidemq.Queue) -> None:
    start = datetime.now(UTC) + timedelta(seconds=30)
    await queue.upsert_job_scheduler("later", every=timedelta(minutes=1), start=start, name="later")
    (job,) = await pending(queue)
    start_ms = round(start.timestamp() * 1000)
    assert job.id == f"repeat:later:{start_ms}"
    assert await job.get_state() == "delayed"
    info = await info_of(queue, "later")
    assert info.every == 60.0 and info.next_run == start_ms / 1000 and info.start == start_ms / 1000


async def test_naive_datetimes_are_utc(queue: glidemq.Queue) -> None:
    await queue.upsert_job_scheduler(
        "naive", every=10, start=datetime(2031, 1, 1, 12), end=datetime(2031, 1, 2), name="n"
    )
    info = await info_of(queue, "naive")
    assert info.next_run == datetime(2031, 1, 1, 12, tzinfo=UTC).timestamp()
    assert info.end == datetime(2031, 1, 2, tzinfo=UTC).timestamp()


async def test_limit_stops_it(queue: glidemq.Queue, url: str, qname: str) -> None:
    await queue.upsert_job_scheduler("three", every=0.05, limit=3, name="x")
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) >= 3)
        await asyncio.sleep(0.3)
    assert len(recorder.ids) == 3
    info = await info_of(queue, "three")
    assert info.count == 3 and info.next_run is None and info.limit == 3
    assert await pending(queue) == []


async def test_end_stops_it(queue: glidemq.Queue, url: str, qname: str) -> None:
    start = datetime.now(UTC)
    end = start + timedelta(seconds=0.35)
    await queue.upsert_job_scheduler("short", every=0.1, start=start, end=end, name="x")
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: info_of_ended(queue, "short"))
        await asyncio.sleep(0.2)
    start_ms, end_ms = round(start.timestamp() * 1000), round(end.timestamp() * 1000)
    slots = [slot_of(i) for i in recorder.ids]
    assert slots and slots[0] == start_ms
    assert all(start_ms <= s <= end_ms and (s - start_ms) % 100 == 0 for s in slots)
    assert len(slots) <= 4
    assert await pending(queue) == []


async def info_of_ended(q: glidemq.Queue, scheduler_id: str) -> bool:
    return (await info_of(q, scheduler_id)).next_run is None


async def test_many_workers_make_one_job_per_slot(queue: glidemq.Queue, url: str, qname: str) -> None:
    recorder = Recorder()
    workers = [glidemq.Worker(qname, recorder, connection=url, concurrency=2) for _ in range(4)]
    drained: list[None] = []
    for w in workers:
        w.on("drained", lambda: drained.append(None))
        await w.__aenter__()
    await wait_until(lambda: len(drained) == 4)  # every worker runs and waits for jobs
    began = time.monotonic()
    await queue.upsert_job_scheduler("fast", every=0.1, name="fast")
    await asyncio.sleep(2.0)
    for w in workers:
        await w.close()
    elapsed = time.monotonic() - began  # the workers still open run iterations while the others close
    slots = [slot_of(i) for i in recorder.ids]
    assert len(set(recorder.ids)) == len(recorder.ids) and len(set(slots)) == len(slots)
    assert all((s - slots[0]) % 100 == 0 for s in slots)
    expected = elapsed / 0.1
    assert expected * 0.5 <= len(slots) <= expected + 2
    assert (await info_of(queue, "fast")).count == len(slots) + len(await pending(queue))


async def test_missed_slots_give_one_catch_up_job(queue: glidemq.Queue, url: str, qname: str) -> None:
    start = datetime.now(UTC) + timedelta(seconds=0.1)
    await queue.upsert_job_scheduler("gap", every=0.1, start=start, name="x")
    await asyncio.sleep(0.8)  # no worker: seven slots pass
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) >= 3)
    start_ms = round(start.timestamp() * 1000)
    slots = [slot_of(i) for i in recorder.ids]
    assert slots[0] == start_ms  # the one catch-up job
    assert slots[1] >= start_ms + 600, "no job for the slots missed while no worker ran"
    assert slots[1] > recorder.started[0] * 1000  # the next slot comes after the catch-up started
    assert all(b - a >= 100 for a, b in pairwise(slots))


# --- replace and remove ------------------------------------------------------------------------


async def test_upsert_replaces_and_drops_the_pending_iteration(queue: glidemq.Queue, url: str, qname: str) -> None:
    start = datetime.now(UTC) + timedelta(seconds=60)
    await queue.upsert_job_scheduler("s", every=60, start=start, name="old", data="A")
    (old,) = await pending(queue)
    await queue.upsert_job_scheduler("s", every=0.1, name="new", data="B", priority=3)
    assert await queue.get_job(old.id) is None
    (new,) = await pending(queue)
    assert new.id != old.id and new.name == "new" and new.data == "B" and new.priority == 3
    (info,) = await queue.get_job_schedulers()
    assert (info.id, info.every, info.name, info.data, info.count) == ("s", 0.1, "new", "B", 1)
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) >= 2)
    assert set(recorder.datas) == {"B"}


async def test_upsert_from_every_to_cron(queue: glidemq.Queue) -> None:
    await queue.upsert_job_scheduler("s", every=60, start=datetime.now(UTC) + timedelta(seconds=60), name="x")
    (old,) = await pending(queue)
    await queue.upsert_job_scheduler("s", cron="0 12 1 1 *", name="x")
    assert await queue.get_job(old.id) is None
    (new,) = await pending(queue)
    info = await info_of(queue, "s")
    assert info.every is None and info.cron == "0 12 1 1 *" and info.next_run == slot_of(new.id) / 1000
    fire = datetime.fromtimestamp(info.next_run, UTC)
    assert (fire.month, fire.day, fire.hour, fire.minute) == (1, 1, 12, 0)


async def test_identical_upsert_keeps_the_scheduler(queue: glidemq.Queue) -> None:
    await queue.upsert_job_scheduler("same", every=30, name="x", data=[1])
    first = await pending_ids(queue)
    for _ in range(3):  # e.g. every process of an application upserts at start-up
        await queue.upsert_job_scheduler("same", every=30, name="x", data=[1])
    assert await pending_ids(queue) == first
    assert (await info_of(queue, "same")).count == 1


async def test_remove(queue: glidemq.Queue) -> None:
    await queue.upsert_job_scheduler("gone", every=60, start=datetime.now(UTC) + timedelta(seconds=60), name="x")
    await queue.upsert_job_scheduler("kept", cron="*/5 * * * *", name="y")
    assert len(await pending(queue)) == 2
    assert await queue.remove_job_scheduler("gone") is True
    assert [s.id for s in await queue.get_job_schedulers()] == ["kept"]
    (left,) = await pending(queue)
    assert left.id.startswith("repeat:kept:")
    assert await queue.remove_job_scheduler("gone") is False
    assert await queue.remove_job_scheduler("never") is False


async def test_removed_scheduler_makes_no_more_jobs(queue: glidemq.Queue, url: str, qname: str) -> None:
    await queue.upsert_job_scheduler("stop", every=0.05, name="x")
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) >= 2)
        assert await queue.remove_job_scheduler("stop")
        ran = len(recorder.ids)
        await asyncio.sleep(0.3)
        assert len(recorder.ids) <= ran + 1  # at most the iteration already started
    assert await pending(queue) == []


async def test_obliterate_removes_schedulers(queue: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    await queue.upsert_job_scheduler("a", every=60, name="x")
    await queue.upsert_job_scheduler("b", cron="0 0 * * *", name="y")
    await queue.obliterate()
    assert await keyspace(raw, qname) == {}
    assert await queue.get_job_schedulers() == []


# --- cron --------------------------------------------------------------------------------------


async def test_cron_next_run_in_a_time_zone_across_the_offset_change(queue: glidemq.Queue) -> None:
    # New York moves from UTC-5 to UTC-4 on 2031-03-09
    await queue.upsert_job_scheduler(
        "before", cron="0 9 * * *", tz="America/New_York", start=datetime(2031, 3, 8, tzinfo=UTC), name="x"
    )
    await queue.upsert_job_scheduler(
        "after", cron="0 9 * * *", tz="America/New_York", start=datetime(2031, 3, 10, tzinfo=UTC), name="x"
    )
    await queue.upsert_job_scheduler("utc", cron="0 9 * * *", start=datetime(2031, 3, 10, tzinfo=UTC), name="x")
    before, after, utc = [await info_of(queue, s) for s in ("before", "after", "utc")]
    assert before.next_run == datetime(2031, 3, 8, 14, tzinfo=UTC).timestamp()
    assert after.next_run == datetime(2031, 3, 10, 13, tzinfo=UTC).timestamp()
    assert utc.next_run == datetime(2031, 3, 10, 9, tzinfo=UTC).timestamp()
    assert before.tz == "America/New_York" and utc.tz is None
    local = datetime.fromtimestamp(after.next_run, ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (9, 0)


def test_next_slot_is_the_first_match_strictly_after() -> None:
    at = round(datetime(2031, 3, 8, 14, tzinfo=UTC).timestamp() * 1000)
    nine = "0 9 * * *"
    assert next_slot(nine, "America/New_York", at - 1) == at
    assert next_slot(nine, "America/New_York", at) == round(datetime(2031, 3, 9, 13, tzinfo=UTC).timestamp() * 1000)
    # long after a missed slot, the next one is the first after now: one catch-up, no burst
    late = at + 5 * 86_400_000 + 1
    assert next_slot(nine, "America/New_York", late) == at + 6 * 86_400_000 - 3_600_000


async def test_cron_next_iteration_comes_when_one_starts(queue: glidemq.Queue, url: str, qname: str) -> None:
    before = time.time()
    await queue.upsert_job_scheduler("minutely", cron="* * * * *", name="m", data=7)
    (job,) = await pending(queue)
    first = slot_of(job.id)
    assert first % 60_000 == 0 and first > before * 1000  # the first minute after the upsert
    await job.promote()  # start it now rather than at the minute
    recorder = Recorder()
    async with glidemq.Worker(qname, recorder, connection=url):
        await wait_until(lambda: len(recorder.ids) == 1)
        await wait_until(lambda: pending_ids(queue))
    (nxt,) = await pending(queue)
    assert slot_of(nxt.id) == first + 60_000
    info = await info_of(queue, "minutely")
    assert info.count == 2 and info.next_run == (first + 60_000) / 1000 and recorder.datas == [7]


async def pending_ids(q: glidemq.Queue) -> list[str]:
    return [j.id for j in await pending(q)]


async def test_cron_slot_is_recovered_when_the_worker_died_before_computing_it(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    await queue.upsert_job_scheduler("minutely", cron="* * * * *", name="m")
    (job,) = await pending(queue)
    first = slot_of(job.id)
    await job.promote()
    # a worker that activates the iteration and dies before computing the next slot
    await queue._ctx.call("take", ["60000", "1", ""])
    assert await pending(queue) == [] and (await info_of(queue, "minutely")).next_run is None

    async def idle(job: glidemq.Job) -> None:
        pass

    async with glidemq.Worker(qname, idle, connection=url):
        await wait_until(lambda: pending_ids(queue))
    assert [slot_of(i) for i in await pending_ids(queue)] == [first + 60_000]


# --- bad input ---------------------------------------------------------------------------------

NOW = datetime.now(UTC)
BAD: list[tuple[str, dict[str, Any]]] = [
    ("no every nor cron", {}),
    ("both every and cron", {"every": 1, "cron": "* * * * *"}),
    ("every 0", {"every": 0}),
    ("every < 0", {"every": -1}),
    ("every timedelta 0", {"every": timedelta(0)}),
    ("every not a number", {"every": "5"}),
    ("every below 1 ms", {"every": 0.0001}),
    ("cron 4 fields", {"cron": "* * * *"}),
    ("cron 6 fields", {"cron": "0 * * * * *"}),
    ("cron bad minute", {"cron": "61 * * * *"}),
    ("cron garbage", {"cron": "every day"}),
    ("cron never", {"cron": "0 0 31 2 *"}),
    ("cron not a str", {"cron": 5}),
    ("unknown tz", {"cron": "* * * * *", "tz": "Mars/Olympus_Mons"}),
    ("empty tz", {"cron": "* * * * *", "tz": ""}),
    ("path tz", {"cron": "* * * * *", "tz": "../etc/passwd"}),
    ("limit 0", {"every": 1, "limit": 0}),
    ("limit float", {"every": 1, "limit": 1.5}),
    ("end == start", {"every": 1, "start": NOW, "end": NOW}),
    ("end < start", {"every": 1, "start": NOW, "end": NOW - timedelta(seconds=1)}),
    ("end in the past, no start", {"every": 1, "end": NOW - timedelta(hours=1)}),
    ("start not a datetime", {"every": 1, "start": 12.0}),
    ("end not a datetime", {"every": 1, "end": "tomorrow"}),
    ("job_id option", {"every": 1, "job_id": "x"}),
    ("delay option", {"every": 1, "delay": 5}),
    ("unknown option", {"every": 1, "colour": "red"}),
    ("bad priority", {"every": 1, "priority": -1}),
    ("bad attempts", {"every": 1, "attempts": 0}),
    ("bad job name", {"every": 1, "name": ""}),
    ("bad scheduler id", {"every": 1, "scheduler_id": "a:b"}),
    ("empty scheduler id", {"every": 1, "scheduler_id": ""}),
]


@pytest.mark.parametrize(("case", "kwargs"), BAD, ids=[case for case, _ in BAD])
async def test_bad_input_raises_and_writes_nothing(
    queue: glidemq.Queue, raw: GlideClient, qname: str, case: str, kwargs: dict[str, Any]
) -> None:
    await queue.upsert_job_scheduler("s", every=60, start=datetime.now(UTC) + timedelta(seconds=60), name="x")
    before = await keyspace(raw, qname)
    kwargs = {"name": "job", **kwargs}
    scheduler_id = kwargs.pop("scheduler_id", "s")
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.upsert_job_scheduler(scheduler_id, **kwargs)
    assert await keyspace(raw, qname) == before


async def test_unserializable_data_raises_and_writes_nothing(
    queue: glidemq.Queue, raw: GlideClient, qname: str
) -> None:
    before = await keyspace(raw, qname)
    with pytest.raises(glidemq.SerializationError):
        await queue.upsert_job_scheduler("s", every=1, name="x", data={1: object()})
    with pytest.raises(glidemq.InvalidArgumentError):
        await queue.remove_job_scheduler("a:b")
    assert await keyspace(raw, qname) == before


# --- cluster -----------------------------------------------------------------------------------


async def test_schedulers_on_a_cluster(cluster: EmbeddedValkeyCluster, qname: str) -> None:
    async with glidemq.Queue(qname, connection=cluster.url) as q:
        await q.upsert_job_scheduler("tick", every=0.1, name="tick")
        await q.upsert_job_scheduler("cron", cron="0 9 * * *", tz="Europe/Paris", name="c")
        recorder = Recorder()
        async with glidemq.Worker(qname, recorder, connection=cluster.url):
            await wait_until(lambda: len(recorder.ids) >= 3)
        slots = [slot_of(i) for i in recorder.ids if i.startswith("repeat:tick:")]
        assert len(set(slots)) == len(slots) >= 3
        assert {s.id for s in await q.get_job_schedulers()} == {"tick", "cron"}
        assert await q.remove_job_scheduler("tick") and await q.remove_job_scheduler("cron")
        assert await q.get_job_schedulers() == []
        await q.obliterate(force=True)


async def test_deleting_the_pending_job_skips_one_run(queue: glidemq.Queue, url: str, qname: str) -> None:
    start = datetime.now(UTC) + timedelta(seconds=60)
    start_ms = round(start.timestamp() * 1000)
    await queue.upsert_job_scheduler("removed", every=60, start=start, name="x")
    await queue.upsert_job_scheduler("drained", cron="0 12 * * *", name="y")
    (cron_job,) = [j for j in await pending(queue) if j.id.startswith("repeat:drained:")]
    assert await queue.remove(f"repeat:removed:{start_ms}")
    assert await queue.drain(delayed=True) == 1

    async def idle(job: glidemq.Job) -> None:
        pass

    async with glidemq.Worker(qname, idle, connection=url):  # its periodic check repairs both
        await wait_until(lambda: len_is(pending(queue), 2))
    slots = {i.rpartition(":")[0]: slot_of(i) for i in await pending_ids(queue)}
    assert slots == {"repeat:removed": start_ms + 60_000, "repeat:drained": slot_of(cron_job.id) + 86_400_000}


async def len_is(items: Any, n: int) -> bool:
    return len(await items) == n
