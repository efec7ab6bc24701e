"""Job: fields, states, progress, logs, waiting for the end, remove/retry/promote, data round trips."""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from typing import Any

import pytest
from glide import GlideClient

import glidemq

from .conftest import keyspace
from .worker_helpers import replay_events, wait_until


async def state_is(job: glidemq.Job, *states: str) -> bool:
    return await job.get_state() in states


def failing_processor(job: glidemq.Job) -> None:
    raise RuntimeError(f"processor refused {job.name}")


# --- fields --------------------------------------------------------------------------------

async def test_fields_of_a_completed_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def work(job: glidemq.Job) -> dict[str, Any]:
        await job.update_progress(75)
        return {"sum": sum(job.data)}

    job = await queue.add("sum", [1, 2, 3], attempts=3, priority=2)
    before = time.time()
    async with glidemq.Worker(qname, work, connection=url):
        assert await job.wait_until_finished(timeout=10) == {"sum": 6}
    after = time.time()
    done = await queue.get_job(job.id)
    assert done is not None
    assert done.name == "sum" and done.queue_name == qname and done.data == [1, 2, 3]
    assert done.return_value == {"sum": 6}
    assert done.progress == 75
    assert done.attempts == 3 and done.attempts_made == 1 and done.priority == 2
    assert done.failed_reason is None
    assert done.stacktrace == []
    for stamp in (done.timestamp, done.processed_on, done.finished_on):
        assert isinstance(stamp, float)
    assert done.processed_on is not None and done.finished_on is not None
    assert before - 1 <= done.timestamp <= done.processed_on <= done.finished_on <= after + 1
    assert abs(done.finished_on - time.time()) < 30, "epoch seconds, not milliseconds"


async def test_a_return_value_of_none_reads_back_as_none(
    url: str, queue: glidemq.Queue, qname: str, raw: GlideClient
) -> None:
    def work(job: glidemq.Job) -> Any:
        return None if job.name == "none" else 0

    none, zero = await queue.add("none", 1), await queue.add("zero", 2)
    async with glidemq.Worker(qname, work, connection=url):
        assert await none.wait_until_finished(timeout=10) is None
        assert await zero.wait_until_finished(timeout=10) == 0
    assert await raw.hget(f"glidemq:{{{qname}}}:j:{none.id}", "rv") is None, "None is the default: not stored"
    assert await raw.hget(f"glidemq:{{{qname}}}:j:{zero.id}", "rv") is not None
    fetched = await queue.get_job(none.id)
    assert fetched is not None and fetched.return_value is None and await fetched.get_state() == "completed"
    assert await fetched.wait_until_finished(timeout=5) is None, "read from the hash of a finished job"


async def test_fields_of_a_failed_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("refuse", None, attempts=2)
    async with glidemq.Worker(qname, failing_processor, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=10)
    assert "processor refused refuse" in (info.value.failed_reason or "")
    failed = await queue.get_job(job.id)
    assert failed is not None
    assert "processor refused refuse" in (failed.failed_reason or "")
    assert failed.attempts_made == 2
    assert failed.return_value is None
    assert isinstance(failed.finished_on, float) and isinstance(failed.processed_on, float)
    assert isinstance(failed.stacktrace, list) and all(isinstance(line, str) for line in failed.stacktrace)
    text = "".join(failed.stacktrace)
    assert "failing_processor" in text, "the processor's own frame is in the stack trace"
    assert "test_job.py" in text
    assert "RuntimeError" in text
    assert await failed.get_state() == "failed"


async def test_stacktrace_of_async_processor(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def deep_inner_helper(value: int) -> int:
        raise KeyError(f"missing {value}")

    async def async_processor(job: glidemq.Job) -> int:
        return await deep_inner_helper(job.data)

    job = await queue.add("k", 5)
    async with glidemq.Worker(qname, async_processor, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    failed = await queue.get_job(job.id)
    assert failed is not None
    text = "".join(failed.stacktrace)
    assert "async_processor" in text and "deep_inner_helper" in text
    assert "missing 5" in (failed.failed_reason or "")


async def test_get_state_values(url: str, queue: glidemq.Queue, qname: str) -> None:
    waiting = await queue.add("w")
    prioritized = await queue.add("p", priority=10)
    delayed = await queue.add("d", delay=60)
    assert await waiting.get_state() == "waiting"
    assert await prioritized.get_state() == "waiting"
    assert await delayed.get_state() == "delayed"
    gate = asyncio.Event()
    started: list[str] = []

    async def work(job: glidemq.Job) -> None:
        started.append(job.id)
        if job.name == "w":
            await gate.wait()
        if job.name == "p":
            raise RuntimeError("p fails")

    async with glidemq.Worker(qname, work, connection=url):
        await wait_until(lambda: state_is(waiting, "active"))
        assert await waiting.get_state() == "active"
        gate.set()
        await waiting.wait_until_finished(timeout=10)
        with pytest.raises(glidemq.JobFailedError):
            await prioritized.wait_until_finished(timeout=10)
    assert await waiting.get_state() == "completed"
    assert await prioritized.get_state() == "failed"
    assert await delayed.get_state() == "delayed"
    assert await delayed.remove() is True
    assert await delayed.get_state() == "unknown"


async def test_job_in_retry_backoff_is_delayed(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("retry", None, attempts=3, backoff=30)
    async with glidemq.Worker(qname, failing_processor, connection=url):
        await wait_until(lambda: state_is(job, "delayed"))
    fresh = await queue.get_job(job.id)
    assert fresh is not None
    assert fresh.attempts_made == 1
    assert "processor refused" in (fresh.failed_reason or "")
    assert (await queue.get_job_counts())["delayed"] == 1
    assert [j.id for j in await queue.get_jobs("delayed")] == [job.id]


# --- attempts, backoff, timeout, retention -------------------------------------------------

async def test_attempts_and_fixed_backoff(url: str, queue: glidemq.Queue, qname: str) -> None:
    runs: list[float] = []

    async def flaky(job: glidemq.Job) -> str:
        runs.append(time.monotonic())
        if len(runs) < 3:
            raise RuntimeError(f"try {len(runs)}")
        return "third time lucky"

    job = await queue.add("flaky", None, attempts=3, backoff=glidemq.Backoff.fixed(0.3))
    async with glidemq.Worker(qname, flaky, connection=url):
        assert await job.wait_until_finished(timeout=15) == "third time lucky"
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.25 and runs[2] - runs[1] >= 0.25
    done = await queue.get_job(job.id)
    assert done is not None and done.attempts_made == 3


async def test_backoff_number_means_fixed(url: str, queue: glidemq.Queue, qname: str) -> None:
    runs: list[float] = []

    async def flaky(job: glidemq.Job) -> None:
        runs.append(time.monotonic())
        raise RuntimeError("always")

    job = await queue.add("flaky", None, attempts=3, backoff=0.3)
    async with glidemq.Worker(qname, flaky, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=15)
    assert len(runs) == 3
    assert runs[1] - runs[0] >= 0.25 and runs[2] - runs[1] >= 0.25
    assert (await queue.get_job(job.id)).attempts_made == 3  # type: ignore[union-attr]


async def test_exponential_backoff(url: str, queue: glidemq.Queue, qname: str) -> None:
    runs: list[float] = []

    async def flaky(job: glidemq.Job) -> None:
        runs.append(time.monotonic())
        raise RuntimeError("always")

    job = await queue.add("exp", None, attempts=4, backoff=glidemq.Backoff.exponential(0.2))
    async with glidemq.Worker(qname, flaky, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=20)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(gaps) == 3
    assert gaps[0] >= 0.17 and gaps[1] >= 0.37 and gaps[2] >= 0.77, gaps
    assert gaps[2] < 3


async def test_exponential_backoff_with_jitter_never_longer(url: str, queue: glidemq.Queue, qname: str) -> None:
    runs: list[float] = []

    async def flaky(job: glidemq.Job) -> None:
        runs.append(time.monotonic())
        raise RuntimeError("always")

    job = await queue.add("exp", None, attempts=3, backoff=glidemq.Backoff.exponential(0.4, jitter=1.0))
    async with glidemq.Worker(qname, flaky, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=20)
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    assert len(gaps) == 2
    # The delay each failure scheduled, to the ms: a "delayed" event holds the due time, its entry id the call's time.
    delayed = [e for e in await replay_events(url, qname) if e.event == "delayed"]
    scheduled = [e.data["delay"] - int(e.id.split("-")[0]) for e in delayed]
    assert len(scheduled) == 2 and 0 <= scheduled[0] <= 400 and 0 <= scheduled[1] <= 800, scheduled
    assert gaps[0] < 0.4 + 2 and gaps[1] < 0.8 + 2, gaps  # ran once due (late on a loaded machine)


async def test_attempts_one_means_no_retry(url: str, queue: glidemq.Queue, qname: str) -> None:
    runs: list[str] = []

    def once(job: glidemq.Job) -> None:
        runs.append(job.id)
        raise RuntimeError("no")

    job = await queue.add("once")
    async with glidemq.Worker(qname, once, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
        await asyncio.sleep(0.3)
    assert runs == [job.id]


async def test_timeout_fails_and_cancels_processor(url: str, queue: glidemq.Queue, qname: str) -> None:
    cancelled: list[int] = []
    runs: list[int] = []

    async def slow(job: glidemq.Job) -> str:
        runs.append(1)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return "never"

    job = await queue.add("slow", None, timeout=0.3, attempts=2)
    started = time.monotonic()
    async with glidemq.Worker(qname, slow, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=15)
    assert time.monotonic() - started < 10
    assert "timed out" in (info.value.failed_reason or "")
    assert len(runs) == 2, "retried because attempts remained"
    assert len(cancelled) == 2, "the processor task was cancelled"
    failed = await queue.get_job(job.id)
    assert failed is not None and failed.attempts_made == 2
    assert "timed out" in (failed.failed_reason or "")


async def test_remove_on_complete_true(url: str, queue: glidemq.Queue, qname: str, raw: GlideClient) -> None:
    async def work(job: glidemq.Job) -> str:
        await job.log("bye")
        return "gone"

    job = await queue.add("ephemeral", 1, remove_on_complete=True)
    async with glidemq.Worker(qname, work, connection=url):
        assert await job.wait_until_finished(timeout=10) == "gone"
    assert await queue.get_job(job.id) is None
    assert await job.get_state() == "unknown"
    assert (await queue.get_job_counts())["completed"] == 0
    for key in await keyspace(raw, qname):
        assert f":j:{job.id}".encode() not in key and f":l:{job.id}".encode() not in key


async def test_remove_on_complete_keeps_newest(url: str, queue: glidemq.Queue, qname: str) -> None:
    jobs = await queue.add_bulk([(f"k{i}", i, {"remove_on_complete": 3}) for i in range(8)])

    async def work(job: glidemq.Job) -> int:
        await asyncio.sleep(0.003)
        return int(job.data)

    async with glidemq.Worker(qname, work, connection=url):
        await jobs[-1].wait_until_finished(timeout=10)
        await wait_until(lambda: _count(queue, "completed", 3))
    await asyncio.sleep(0.1)
    assert (await queue.get_job_counts())["completed"] == 3
    assert [j.name for j in await queue.get_jobs("completed")] == ["k7", "k6", "k5"]
    assert await queue.get_job(jobs[0].id) is None


async def _count(queue: glidemq.Queue, state: str, n: int) -> bool:
    return (await queue.get_job_counts())[state] == n


async def test_remove_on_fail(url: str, queue: glidemq.Queue, qname: str) -> None:
    gone = await queue.add("gone", None, remove_on_fail=True)
    kept = await queue.add_bulk([(f"f{i}", i, {"remove_on_fail": 2}) for i in range(4)])
    async with glidemq.Worker(qname, failing_processor, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await gone.wait_until_finished(timeout=10)
        for job in kept:
            with pytest.raises(glidemq.JobFailedError):
                await job.wait_until_finished(timeout=10)
    assert await queue.get_job(gone.id) is None
    await asyncio.sleep(0.05)
    assert sorted(j.name for j in await queue.get_jobs("failed")) == ["f2", "f3"]


# --- progress ------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, 42, 99.5, {"step": 2, "of": 5, "note": "x"}, {}])
async def test_update_progress_inside_processor(url: str, queue: glidemq.Queue, qname: str, value: Any) -> None:
    seen: list[Any] = []

    async def work(job: glidemq.Job) -> None:
        await job.update_progress(value)
        assert job.progress == value

    job = await queue.add("prog")
    async with glidemq.Worker(qname, work, connection=url) as worker:
        worker.on("progress", lambda j, v: seen.append((j.id, v)))
        await job.wait_until_finished(timeout=10)
    assert seen == [(job.id, value)]
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.progress == value
    assert type(stored.progress) is type(value)


async def test_update_progress_from_producer_side(queue: glidemq.Queue) -> None:
    job = await queue.add("outside")
    await job.update_progress(10)
    assert job.progress == 10
    assert (await queue.get_job(job.id)).progress == 10  # type: ignore[union-attr]
    fetched = await queue.get_job(job.id)
    assert fetched is not None
    await fetched.update_progress({"pct": 20.5})
    assert (await queue.get_job(job.id)).progress == {"pct": 20.5}  # type: ignore[union-attr]


async def test_update_progress_rejects_bad_values(queue: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    job = await queue.add("p")
    snapshot = await keyspace(raw, qname)
    for bad in ("50%", [1, 2], None, True, b"x", (1,)):
        with pytest.raises(glidemq.InvalidArgumentError):
            await job.update_progress(bad)  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await job.update_progress({"blob": "x" * (1024 * 1024 + 1)})
    with pytest.raises(glidemq.SerializationError):
        await job.update_progress({1: "int key"})  # type: ignore[dict-item]
    with pytest.raises(glidemq.SerializationError):
        await job.update_progress({"obj": object()})
    assert await keyspace(raw, qname) == snapshot


async def test_update_progress_of_removed_job_raises(queue: glidemq.Queue) -> None:
    job = await queue.add("p")
    assert await job.remove() is True
    with pytest.raises(glidemq.GlideMQError):
        await job.update_progress(1)


# --- logs ----------------------------------------------------------------------------------

async def test_log_and_get_logs(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def work(job: glidemq.Job) -> None:
        await job.log("starting")
        await job.log("unicode ✓ line")
        await job.log("")

    job = await queue.add("logged")
    assert await job.get_logs() == []
    await job.log("queued by producer")
    async with glidemq.Worker(qname, work, connection=url):
        await job.wait_until_finished(timeout=10)
    expected = ["queued by producer", "starting", "unicode ✓ line", ""]
    assert await job.get_logs() == expected
    fetched = await queue.get_job(job.id)
    assert fetched is not None and await fetched.get_logs() == expected


async def test_log_rejects_bad_input_and_missing_job(queue: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    job = await queue.add("l")
    snapshot = await keyspace(raw, qname)
    for bad in (1, None, b"bytes", ["x"]):
        with pytest.raises(glidemq.InvalidArgumentError):
            await job.log(bad)  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await job.log("x" * (1024 * 1024 + 1))
    assert await keyspace(raw, qname) == snapshot
    await job.remove()
    with pytest.raises(glidemq.GlideMQError):
        await job.log("after removal")
    assert await job.get_logs() == []


# --- wait_until_finished -------------------------------------------------------------------

async def test_wait_until_finished_returns_value(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def work(job: glidemq.Job) -> Any:
        await asyncio.sleep(0.1)
        return {"echo": job.data}

    jobs = [await queue.add("e", i) for i in range(3)]
    async with glidemq.Worker(qname, work, connection=url, concurrency=3):
        results = await asyncio.gather(*(j.wait_until_finished(timeout=10) for j in jobs))
        again = await asyncio.gather(*(j.wait_until_finished(timeout=10) for j in jobs))
    assert results == [{"echo": 0}, {"echo": 1}, {"echo": 2}]
    assert again == results
    assert jobs[0].return_value == {"echo": 0}


async def test_wait_until_finished_for_already_finished_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    ok = await queue.add("ok", 1)
    bad = await queue.add("bad", 2)

    def work(job: glidemq.Job) -> int:
        if job.name == "bad":
            raise ValueError("bad job")
        return 11

    async with glidemq.Worker(qname, work, connection=url):
        await wait_until(lambda: state_is(bad, "failed"))
        await wait_until(lambda: state_is(ok, "completed"))
    started = time.monotonic()
    assert await ok.wait_until_finished(timeout=5) == 11
    assert await ok.wait_until_finished() == 11
    with pytest.raises(glidemq.JobFailedError) as info:
        await bad.wait_until_finished(timeout=5)
    assert time.monotonic() - started < 2
    assert "bad job" in (info.value.failed_reason or "")
    assert isinstance(info.value, glidemq.GlideMQError)


async def test_wait_until_finished_timeout(queue: glidemq.Queue) -> None:
    job = await queue.add("nobody-runs-me")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await job.wait_until_finished(timeout=0.4)
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3
    assert await job.get_state() == "waiting"
    with pytest.raises(glidemq.InvalidArgumentError):
        await job.wait_until_finished(timeout=-1)


async def test_wait_until_finished_across_retries(url: str, queue: glidemq.Queue, qname: str) -> None:
    tries: list[int] = []

    async def flaky(job: glidemq.Job) -> str:
        tries.append(1)
        if len(tries) == 1:
            raise RuntimeError("first try fails")
        return "recovered"

    job = await queue.add("flaky", None, attempts=2)
    async with glidemq.Worker(qname, flaky, connection=url):
        assert await job.wait_until_finished(timeout=10) == "recovered"


async def test_wait_until_finished_with_remove_on_complete(url: str, queue: glidemq.Queue, qname: str) -> None:
    async def work(job: glidemq.Job) -> list[int]:
        await asyncio.sleep(0.2)
        return [1, 2]

    job = await queue.add("gone", None, remove_on_complete=True)
    async with glidemq.Worker(qname, work, connection=url):
        assert await job.wait_until_finished(timeout=10) == [1, 2]


async def test_wait_until_finished_failure_with_remove_on_fail(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("gone", None, remove_on_fail=True)

    async def work(j: glidemq.Job) -> None:
        await asyncio.sleep(0.2)
        raise RuntimeError("vanishing failure")

    async with glidemq.Worker(qname, work, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=10)
    assert "vanishing failure" in (info.value.failed_reason or "")


# --- remove / retry / promote --------------------------------------------------------------

async def test_job_remove(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("r")
    assert await job.remove() is True
    assert await job.remove() is False
    assert await queue.get_job(job.id) is None
    gate = asyncio.Event()

    async def work(j: glidemq.Job) -> None:
        await gate.wait()

    busy = await queue.add("busy")
    async with glidemq.Worker(qname, work, connection=url):
        await wait_until(lambda: state_is(busy, "active"))
        assert await busy.remove() is False
        gate.set()
        await busy.wait_until_finished(timeout=10)
    assert await busy.remove() is True


async def test_job_retry(url: str, queue: glidemq.Queue, qname: str) -> None:
    outcome = {"fail": True}

    async def work(job: glidemq.Job) -> str:
        if outcome["fail"]:
            raise RuntimeError("not yet")
        return "now it works"

    job = await queue.add("again", None, attempts=2)
    async with glidemq.Worker(qname, work, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    assert (await queue.get_job(job.id)).attempts_made == 2  # type: ignore[union-attr]
    await job.retry()
    assert await job.get_state() == "waiting"
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.attempts_made == 0 and fresh.failed_reason is None
    outcome["fail"] = False
    async with glidemq.Worker(qname, work, connection=url):
        assert await job.wait_until_finished(timeout=10) == "now it works"
    await job.retry()  # completed jobs can be retried too
    assert await job.get_state() == "waiting"
    with pytest.raises(glidemq.GlideMQError):
        await job.retry()  # waiting: nothing to retry
    await job.remove()
    with pytest.raises(glidemq.GlideMQError):
        await job.retry()


async def test_job_promote(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("later", "p", delay=3600)
    other = await queue.add("first")
    await job.promote()
    assert await job.get_state() == "waiting"
    assert [j.id for j in await queue.get_jobs("waiting")] == [other.id, job.id]
    assert (await queue.get_job_counts())["delayed"] == 0
    with pytest.raises(glidemq.GlideMQError):
        await job.promote()
    async with glidemq.Worker(qname, lambda j: j.data, connection=url):
        assert await job.wait_until_finished(timeout=10) == "p"
    await job.remove()
    with pytest.raises(glidemq.GlideMQError):
        await job.promote()


# --- data round trips ----------------------------------------------------------------------

ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    1.5,
    -0.0,
    1e308,
    5e-324,
    float("inf"),
    float("-inf"),
    "",
    "text ✓ with unicode \u0000 nul",
    b"",
    b"\x00\xff binary",
    [],
    [1, "two", 3.0, None, [b"x"]],
    {},
    {"nested": {"deeper": {"list": [1, {"k": b"v"}], "none": None}}, "": 0},
    "x" * 100_000,
]


@pytest.mark.parametrize("value", ROUND_TRIP, ids=lambda v: type(v).__name__ + ":" + repr(v)[:20])
async def test_data_round_trips_exactly(url: str, queue: glidemq.Queue, qname: str, value: Any) -> None:
    seen: list[Any] = []

    async def echo(job: glidemq.Job) -> Any:
        seen.append(job.data)
        return job.data

    job = await queue.add("echo", value)
    assert job.data == value
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.data == value and type(stored.data) is type(value)
    async with glidemq.Worker(qname, echo, connection=url):
        result = await job.wait_until_finished(timeout=10)
    assert seen == [value] and type(seen[0]) is type(value)
    assert result == value and type(result) is type(value)
    done = await queue.get_job(job.id)
    assert done is not None and done.return_value == value and type(done.return_value) is type(value)
    if isinstance(value, float) and value == 0:
        assert math.copysign(1, done.return_value) == math.copysign(1, value)


async def test_nan_round_trips(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("nan", {"v": float("nan"), "l": [float("nan")]})
    stored = await queue.get_job(job.id)
    assert stored is not None and math.isnan(stored.data["v"]) and math.isnan(stored.data["l"][0])
    async with glidemq.Worker(qname, lambda j: j.data["v"], connection=url):
        assert math.isnan(await job.wait_until_finished(timeout=10))
    assert math.isnan((await queue.get_job(job.id)).return_value)  # type: ignore[union-attr]


async def test_tuples_come_back_as_lists(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("t", (1, (2, 3), {"t": (4,)}))
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.data == [1, [2, 3], {"t": [4]}]
    async with glidemq.Worker(qname, lambda j: (j.data[0], "x"), connection=url):
        assert await job.wait_until_finished(timeout=10) == [1, "x"]


async def test_bulk_data_round_trips(queue: glidemq.Queue) -> None:
    values = [v for v in ROUND_TRIP if not (isinstance(v, float) and math.isnan(v))]
    jobs = await queue.add_bulk([("v", v) for v in values])
    for job, value in zip(jobs, values, strict=True):
        stored = await queue.get_job(job.id)
        assert stored is not None and stored.data == value and type(stored.data) is type(value)


async def test_unserializable_return_value_fails_the_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("bad-return")
    async with glidemq.Worker(qname, lambda j: {1, 2, 3}, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    assert await job.get_state() == "failed"


# --- payload limit for return values (Worker max_payload_size) -------------------------------

async def test_return_value_over_limit_fails_job(url: str, queue: glidemq.Queue, qname: str) -> None:
    job = await queue.add("huge")
    async with glidemq.Worker(qname, lambda j: "x" * (1024 * 1024 + 10), connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    big = await queue.add("bigger-limit")
    big_limit = 4 * 1024 * 1024
    async with glidemq.Worker(qname, lambda j: "x" * (1024 * 1024 + 10), connection=url, max_payload_size=big_limit):
        assert len(await big.wait_until_finished(timeout=10)) == 1024 * 1024 + 10
    small = await queue.add("small-limit")
    async with glidemq.Worker(qname, lambda j: "y" * 200, connection=url, max_payload_size=100):
        with pytest.raises(glidemq.JobFailedError):
            await small.wait_until_finished(timeout=10)


async def test_progress_limit_follows_worker_setting(url: str, queue: glidemq.Queue, qname: str) -> None:
    errors: list[BaseException] = []

    async def work(job: glidemq.Job) -> str:
        try:
            await job.update_progress({"blob": "z" * 500})
        except glidemq.InvalidArgumentError as exc:
            errors.append(exc)
        return "ok"

    job = await queue.add("p")
    async with glidemq.Worker(qname, work, connection=url, max_payload_size=200):
        assert await job.wait_until_finished(timeout=10) == "ok"
    assert len(errors) == 1
    assert (await queue.get_job(job.id)).progress is None  # type: ignore[union-attr]
