"""Worker processing promises: processors, results, retries, timeouts, retention, concurrency, events."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest

import glidemq
from glidemq._codec import decode_active, encode_finished, pack
from glidemq.testing import free_port

from .worker_helpers import replay_events, wait_until

# processors --------------------------------------------------------------------------------------


async def test_async_processor_is_awaited_and_its_value_stored(queue: glidemq.Queue, url: str, qname: str) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    async def processor(job: glidemq.Job) -> Any:
        await asyncio.sleep(0.01)  # a real await: the coroutine must be awaited, not just called
        seen.append(threading.get_ident())
        return {"echo": job.data, "n": [1, 2.5, None, True, "x", b"\x00\xff"]}

    job = await queue.add("echo", {"a": 1})
    before = time.time()
    async with glidemq.Worker(qname, processor, connection=url):
        result = await job.wait_until_finished(timeout=10)
    assert result == {"echo": {"a": 1}, "n": [1, 2.5, None, True, "x", b"\x00\xff"]}
    assert seen == [loop_thread]
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert stored.return_value == result
    assert await stored.get_state() == "completed"
    assert stored.attempts_made == 1
    assert stored.failed_reason is None
    assert stored.processed_on is not None and stored.finished_on is not None
    assert before - 1 <= stored.processed_on <= stored.finished_on <= time.time() + 1


async def test_sync_processor_runs_off_the_event_loop(queue: glidemq.Queue, url: str, qname: str) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def processor(job: glidemq.Job) -> int:
        threads.append(threading.get_ident())
        return int(job.data) * 3

    jobs = [await queue.add("triple", i) for i in range(3)]
    async with glidemq.Worker(qname, processor, connection=url):
        results = [await j.wait_until_finished(timeout=10) for j in jobs]
    assert results == [0, 3, 6]
    assert len(threads) == 3
    assert loop_thread not in threads
    for j, expected in zip(jobs, results, strict=False):
        stored = await queue.get_job(j.id)
        assert stored is not None and stored.return_value == expected


async def test_sync_processors_run_in_parallel_up_to_concurrency(queue: glidemq.Queue, url: str, qname: str) -> None:
    # Every job waits at a barrier of 4: it only passes if 4 threads run at the same time.
    barrier = threading.Barrier(4, timeout=5)
    lock = threading.Lock()
    running = peak = 0

    def processor(job: glidemq.Job) -> str:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            barrier.wait()
            time.sleep(0.05)
        finally:
            with lock:
                running -= 1
        return "ok"

    jobs = await queue.add_bulk([("p", i) for i in range(8)])
    started = time.monotonic()
    async with glidemq.Worker(qname, processor, connection=url, concurrency=4):
        for j in jobs:
            assert await j.wait_until_finished(timeout=15) == "ok"
    assert peak == 4
    assert time.monotonic() - started < 5


async def test_unrecoverable_error_fails_at_once(queue: glidemq.Queue, url: str, qname: str) -> None:
    calls = 0

    async def processor(job: glidemq.Job) -> None:
        nonlocal calls
        calls += 1
        raise glidemq.UnrecoverableError("bad input, do not retry")

    job = await queue.add("u", None, attempts=5, backoff=0.01)
    async with glidemq.Worker(qname, processor, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=10)
        await asyncio.sleep(0.3)  # room for a wrong retry to show up
    assert "bad input, do not retry" in (info.value.failed_reason or "")
    assert calls == 1
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert await stored.get_state() == "failed"
    assert stored.attempts_made == 1
    assert "bad input, do not retry" in (stored.failed_reason or "")


# retries and backoff ----------------------------------------------------------------------------


async def _run_retries(
    queue: glidemq.Queue, url: str, qname: str, *, attempts: int, backoff: Any, succeed_on: int | None,
    concurrency: int = 1,
) -> tuple[glidemq.Job, list[float], list[str]]:
    """Runs one job that fails until try ``succeed_on``; returns it, its start times and its states between tries."""
    starts: list[float] = []
    states: list[str] = []

    async def processor(job: glidemq.Job) -> str:
        starts.append(time.monotonic())
        if succeed_on is not None and len(starts) >= succeed_on:
            return f"ok after {len(starts)}"
        raise RuntimeError(f"try {len(starts)} failed")

    worker = glidemq.Worker(qname, processor, connection=url, concurrency=concurrency)

    @worker.on("failed")
    async def on_failed(job: glidemq.Job, exc: BaseException) -> None:
        states.append(await job.get_state())

    job = await queue.add("r", None, attempts=attempts, backoff=backoff)
    async with worker:
        try:
            await job.wait_until_finished(timeout=20)
        except glidemq.JobFailedError:
            pass
        await asyncio.sleep(0.1)
    stored = await queue.get_job(job.id)
    assert stored is not None
    return stored, starts, states


async def test_retry_with_fixed_backoff_goes_delayed_then_runs_again(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    job, starts, states = await _run_retries(
        queue, url, qname, attempts=3, backoff=glidemq.Backoff.fixed(0.4), succeed_on=3
    )
    assert len(starts) == 3
    assert states == ["delayed", "delayed"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0.35 <= g < 1.5 for g in gaps), gaps
    assert await job.get_state() == "completed"
    assert job.return_value == "ok after 3"
    assert job.attempts_made == 3


async def test_retry_backoff_given_as_a_number_is_fixed(queue: glidemq.Queue, url: str, qname: str) -> None:
    job, starts, states = await _run_retries(queue, url, qname, attempts=3, backoff=0.3, succeed_on=None)
    assert len(starts) == 3
    assert states == ["delayed", "delayed", "failed"]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(0.25 <= g < 1.2 for g in gaps), gaps
    assert await job.get_state() == "failed"
    assert job.attempts_made == 3
    assert "try 3 failed" in (job.failed_reason or "")


async def test_retry_with_exponential_backoff_doubles_the_delay(queue: glidemq.Queue, url: str, qname: str) -> None:
    job, starts, states = await _run_retries(
        queue, url, qname, attempts=4, backoff=glidemq.Backoff.exponential(0.2), succeed_on=None, concurrency=2
    )
    assert len(starts) == 4
    assert states == ["delayed", "delayed", "delayed", "failed"]
    # The delay each failure scheduled, to the ms: a "delayed" event holds the due time, its entry id the call's time.
    delayed = [e for e in await replay_events(url, qname) if e.event == "delayed"]
    assert [e.data["delay"] - int(e.id.split("-")[0]) for e in delayed] == [200, 400, 800]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    for n, gap in enumerate(gaps, start=1):
        expected = 0.2 * 2 ** (n - 1)
        assert expected - 0.05 <= gap < expected + 2, (n, gaps)  # waited it out, then ran (late on a loaded machine)
    assert job.attempts_made == 4


async def test_retry_without_backoff_goes_back_to_waiting(queue: glidemq.Queue, url: str, qname: str) -> None:
    job, starts, states = await _run_retries(queue, url, qname, attempts=2, backoff=None, succeed_on=2)
    assert len(starts) == 2
    assert states[0] in ("waiting", "active")  # may already be picked up again
    assert job.return_value == "ok after 2"
    assert job.attempts_made == 2


async def test_failed_event_fires_on_every_attempt(queue: glidemq.Queue, url: str, qname: str) -> None:
    seen: list[tuple[str, int, str, str]] = []
    exceptions: list[BaseException] = []

    class Boom(Exception):
        pass

    async def processor(job: glidemq.Job) -> None:
        raise Boom(f"boom {job.attempts_made + 1}")

    worker = glidemq.Worker(qname, processor, connection=url)

    @worker.on("failed")
    async def on_failed(job: glidemq.Job, exc: BaseException) -> None:
        exceptions.append(exc)
        seen.append((job.id, job.attempts_made, await job.get_state(), job.failed_reason or ""))

    job = await queue.add("f", None, attempts=3, backoff=0.2)
    async with worker:
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
        await wait_until(lambda: len(seen) == 3, timeout=5)
    assert [s[1] for s in seen] == [1, 2, 3]
    assert [s[2] for s in seen] == ["delayed", "delayed", "failed"]
    assert all(s[0] == job.id for s in seen)
    assert [s[3] for s in seen] == ["boom 1", "boom 2", "boom 3"]
    assert all(isinstance(e, Boom) for e in exceptions)


# timeouts and stack traces ----------------------------------------------------------------------


async def test_timeout_cancels_the_processor_and_fails_the_job(queue: glidemq.Queue, url: str, qname: str) -> None:
    cancelled = asyncio.Event()
    after_sleep: list[bool] = []

    async def processor(job: glidemq.Job) -> str:
        try:
            await asyncio.sleep(10)
            after_sleep.append(True)
            return "too late"
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await queue.add("slow", None, timeout=0.3)
    started = time.monotonic()
    async with glidemq.Worker(qname, processor, connection=url):
        with pytest.raises(glidemq.JobFailedError) as info:
            await job.wait_until_finished(timeout=10)
        elapsed = time.monotonic() - started
    assert cancelled.is_set()
    assert after_sleep == []
    assert elapsed < 3
    assert "timed out" in (info.value.failed_reason or "")
    stored = await queue.get_job(job.id)
    assert stored is not None
    assert await stored.get_state() == "failed"
    assert "timed out" in (stored.failed_reason or "")
    assert stored.attempts_made == 1


async def test_timed_out_job_is_retried_when_attempts_remain(queue: glidemq.Queue, url: str, qname: str) -> None:
    tries = 0
    cancellations = 0

    async def processor(job: glidemq.Job) -> str:
        nonlocal tries, cancellations
        tries += 1
        if tries == 1:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancellations += 1
                raise
        return "second try"

    job = await queue.add("slow", None, timeout=0.3, attempts=2)
    async with glidemq.Worker(qname, processor, connection=url):
        assert await job.wait_until_finished(timeout=10) == "second try"
    assert tries == 2 and cancellations == 1
    stored = await queue.get_job(job.id)
    assert stored is not None and stored.attempts_made == 2


def _explode_deep_inside_helper(value: int) -> None:
    raise ValueError(f"cannot handle {value}")


async def test_stacktrace_contains_the_processors_frames(queue: glidemq.Queue, url: str, qname: str) -> None:
    async def processor_with_a_name_to_find(job: glidemq.Job) -> None:
        _explode_deep_inside_helper(job.data)

    job = await queue.add("st", 7)
    async with glidemq.Worker(qname, processor_with_a_name_to_find, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    stored = await queue.get_job(job.id)
    assert stored is not None
    text = "".join(stored.stacktrace)
    assert isinstance(stored.stacktrace, list) and stored.stacktrace
    assert "processor_with_a_name_to_find" in text
    assert "_explode_deep_inside_helper" in text
    assert "test_worker.py" in text
    assert "ValueError: cannot handle 7" in text
    assert "cannot handle 7" in (stored.failed_reason or "")


async def test_stacktrace_of_a_sync_processor(queue: glidemq.Queue, url: str, qname: str) -> None:
    def sync_processor_to_find(job: glidemq.Job) -> None:
        _explode_deep_inside_helper(job.data)

    job = await queue.add("st", 8)
    async with glidemq.Worker(qname, sync_processor_to_find, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    stored = await queue.get_job(job.id)
    assert stored is not None
    text = "".join(stored.stacktrace)
    assert "sync_processor_to_find" in text and "_explode_deep_inside_helper" in text


# retention -------------------------------------------------------------------------------------


async def _finish_all(url: str, qname: str, jobs: list[glidemq.Job], fail: bool) -> None:
    async def processor(job: glidemq.Job) -> int:
        if fail:
            raise RuntimeError("no")
        return 1

    done = asyncio.Event()
    finished: set[str] = set()
    worker = glidemq.Worker(qname, processor, connection=url)

    def record(job: glidemq.Job, _: Any) -> None:
        finished.add(job.id)
        if len(finished) == len(jobs):
            done.set()

    worker.on("failed" if fail else "completed", record)
    async with worker:
        await asyncio.wait_for(done.wait(), 10)


async def test_remove_on_complete_true_deletes_the_job(queue: glidemq.Queue, url: str, qname: str) -> None:
    job = await queue.add("rc", {"x": 1}, remove_on_complete=True)
    kept = await queue.add("keep", {"x": 2})
    await _finish_all(url, qname, [job, kept], fail=False)
    assert await queue.get_job(job.id) is None
    assert await job.get_state() == "unknown"
    assert (await queue.get_job_counts())["completed"] == 1
    assert [j.id for j in await queue.get_jobs("completed")] == [kept.id]


async def test_remove_on_fail_true_deletes_the_job(queue: glidemq.Queue, url: str, qname: str) -> None:
    job = await queue.add("rf", None, remove_on_fail=True)
    kept = await queue.add("keep", None)
    await _finish_all(url, qname, [job, kept], fail=True)
    assert await queue.get_job(job.id) is None
    assert [j.id for j in await queue.get_jobs("failed")] == [kept.id]


async def test_remove_on_complete_n_keeps_the_newest(queue: glidemq.Queue, url: str, qname: str) -> None:
    jobs = [await queue.add("rc", i, remove_on_complete=2) for i in range(5)]
    await _finish_all(url, qname, jobs, fail=False)
    completed = await queue.get_jobs("completed")
    assert [j.id for j in completed] == [jobs[4].id, jobs[3].id]
    for j in jobs[:3]:
        assert await queue.get_job(j.id) is None
    assert [j.return_value for j in completed] == [1, 1]


async def test_remove_on_fail_n_keeps_the_newest(queue: glidemq.Queue, url: str, qname: str) -> None:
    jobs = [await queue.add("rf", i, remove_on_fail=3) for i in range(6)]
    await _finish_all(url, qname, jobs, fail=True)
    failed = await queue.get_jobs("failed")
    assert [j.id for j in failed] == [jobs[5].id, jobs[4].id, jobs[3].id]
    for j in jobs[:3]:
        assert await queue.get_job(j.id) is None


async def test_remove_on_fail_waits_for_the_last_attempt(queue: glidemq.Queue, url: str, qname: str) -> None:
    states: list[tuple[int, bool]] = []

    async def processor(job: glidemq.Job) -> None:
        raise RuntimeError("again")

    worker = glidemq.Worker(qname, processor, connection=url)

    @worker.on("failed")
    async def on_failed(job: glidemq.Job, exc: BaseException) -> None:
        states.append((job.attempts_made, await queue.get_job(job.id) is not None))

    await queue.add("rf", None, attempts=2, backoff=0.5, remove_on_fail=True)
    async with worker:
        await wait_until(lambda: len(states) == 2, timeout=10)
    assert states == [(1, True), (2, False)]


# concurrency -----------------------------------------------------------------------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_concurrency_is_respected_and_used(
    queue: glidemq.Queue, url: str, qname: str, concurrency: int
) -> None:
    running = peak = 0
    done = 0

    async def processor(job: glidemq.Job) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.15)
        running -= 1
        done += 1

    await queue.add_bulk([("c", i) for i in range(9)])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=concurrency):
        await wait_until(lambda: done == 9, timeout=15)
    assert peak == concurrency
    assert (await queue.get_job_counts())["completed"] == 9


async def test_concurrency_is_respected_while_jobs_keep_arriving(queue: glidemq.Queue, url: str, qname: str) -> None:
    running = peak = done = 0
    full = asyncio.Event()

    async def processor(job: glidemq.Job) -> None:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        if running == 4:
            full.set()
        if int(job.data) < 4:  # the first four hold their slots until all four run, while more jobs arrive
            await asyncio.wait_for(full.wait(), 10)
        await asyncio.sleep(0.01 * (int(job.data) % 5))
        running -= 1
        done += 1

    async with glidemq.Worker(qname, processor, connection=url, concurrency=4):
        for i in range(60):
            await queue.add("c", i)
            if i % 10 == 0:
                await asyncio.sleep(0.02)
        await wait_until(lambda: done == 60, timeout=20)
    assert peak == 4


async def test_two_takes_on_their_way_never_lease_more_than_concurrency(
    queue: glidemq.Queue, raw: Any, url: str, qname: str
) -> None:
    """Short jobs keep two take calls on their way (each finishing and fetching about half of
    the slots); without prefetch, the server still never holds more than ``concurrency`` jobs
    active for the worker."""
    concurrency, n = 10, 600
    active_seen: list[int] = []
    done = 0

    async def processor(job: glidemq.Job) -> None:
        nonlocal done
        if int(job.data) % 20 == 0:  # sample the server's active set now and then, mid-run
            active_seen.append((await queue.get_job_counts())["active"])
        done += 1

    await queue.add_bulk([("c", i) for i in range(n)])
    stats_before = await raw.custom_command(["INFO", "commandstats"])
    async with glidemq.Worker(qname, processor, connection=url, concurrency=concurrency, prefetch=0):
        await wait_until(lambda: done == n, timeout=30)
    stats_after = await raw.custom_command(["INFO", "commandstats"])
    assert len(active_seen) == n // 20
    assert max(active_seen) <= concurrency
    assert (await queue.get_job_counts())["completed"] == n

    def fcalls(stats: Any) -> int:
        line = next(x for x in stats.decode().splitlines() if x.startswith("cmdstat_fcall:"))
        return int(line.split("calls=")[1].split(",")[0])

    # half-size batches: about 2 * n / concurrency take calls (one per batch would be n / concurrency)
    assert fcalls(stats_after) - fcalls(stats_before) > 1.5 * n / concurrency


async def test_a_worker_of_very_high_concurrency_holds_renews_and_finishes_every_job(
    queue: glidemq.Queue, url: str, qname: str
) -> None:
    """Thousands of leases held at once: renewing them all and finishing them all takes more
    values than the server's Lua unpacks into one command, and every job still completes."""
    n = 5000
    release = asyncio.Event()
    started = 0

    async def processor(job: glidemq.Job) -> None:
        nonlocal started
        started += 1
        await release.wait()

    await queue.add_bulk([("c", i) for i in range(n)])
    worker = glidemq.Worker(qname, processor, connection=url, concurrency=n, lock_duration=1.0)
    errors: list[BaseException] = []
    stalled: list[str] = []
    worker.on("error", errors.append)
    worker.on("stalled", stalled.append)
    async with worker:
        await wait_until(lambda: started == n, timeout=60)
        await asyncio.sleep(1.5)  # past the first lease deadline: only renewals keep the jobs
        assert (await queue.get_job_counts())["active"] == n
        release.set()
        await wait_until(lambda: worker._active == {}, timeout=60)
    counts = await queue.get_job_counts()
    assert (counts["completed"], counts["active"], counts["waiting"]) == (n, 0, 0)
    assert errors == [] and stalled == []


async def test_one_take_call_activates_and_finishes_thousands_of_jobs(queue: glidemq.Queue) -> None:
    """The library itself takes any batch size (a client sends at most a thousand per call)."""
    n = 6000
    await queue.add_bulk([("c", i) for i in range(n)])
    now_ms, _, _, records, _, _ = await queue._ctx.call("take", ["30000", str(n), "", ""])
    active = decode_active(records, now_ms)
    assert len(active) == n
    assert (await queue.get_job_counts())["active"] == n
    rows = [(job[0], job[1], "c", pack(i), "1", -1) for i, job in enumerate(active)]
    _, _, statuses, records, _, _ = await queue._ctx.call("take", ["30000", "0", encode_finished(rows), ""])
    assert statuses == [1] * n and not records
    counts = await queue.get_job_counts()
    assert (counts["completed"], counts["active"]) == (n, 0)
    done = await queue.get_job(active[-1][0])
    assert done is not None and done.return_value == n - 1


# events ----------------------------------------------------------------------------------------


async def test_events_have_the_documented_arguments(queue: glidemq.Queue, url: str, qname: str) -> None:
    log: list[tuple[Any, ...]] = []

    async def processor(job: glidemq.Job) -> Any:
        await job.update_progress(50)
        await job.update_progress({"step": 2})
        if job.data == "bad":
            raise KeyError("missing")
        return job.data.upper()

    worker = glidemq.Worker(qname, processor, connection=url)
    worker.on("active", lambda job: log.append(("active", job.id, isinstance(job, glidemq.Job))))
    worker.on("progress", lambda job, value: log.append(("progress", job.id, value)))

    @worker.on("completed")
    def on_completed(job: glidemq.Job, result: Any) -> None:
        log.append(("completed", job.id, result, job.return_value))

    @worker.on("failed")
    async def on_failed(job: glidemq.Job, exc: BaseException) -> None:
        await asyncio.sleep(0)
        log.append(("failed", job.id, type(exc).__name__, job.failed_reason))

    worker.on("drained", lambda: log.append(("drained",)))

    async def on_closed() -> None:
        await asyncio.sleep(0)
        log.append(("closed",))

    assert worker.on("closed", on_closed) is on_closed
    assert on_completed is not None and on_failed is not None  # the decorator hands the function back

    good = await queue.add("g", "hello")
    bad = await queue.add("b", "bad")
    async with worker:
        await wait_until(lambda: any(e[0] == "failed" for e in log), timeout=10)
        await wait_until(lambda: any(e[0] == "drained" for e in log), timeout=10)
    assert log[-1] == ("closed",)
    assert ("active", good.id, True) in log and ("active", bad.id, True) in log
    assert [e for e in log if e[0] == "progress" and e[1] == good.id] == [
        ("progress", good.id, 50), ("progress", good.id, {"step": 2}),
    ]
    assert ("completed", good.id, "HELLO", "HELLO") in log
    assert ("failed", bad.id, "KeyError", "'missing'") in log
    assert log.index(("active", good.id, True)) < log.index(("completed", good.id, "HELLO", "HELLO"))
    assert sum(1 for e in log if e[0] == "closed") == 1


async def test_drained_fires_when_the_queue_runs_empty(queue: glidemq.Queue, url: str, qname: str) -> None:
    drained = 0
    completed = 0

    async def processor(job: glidemq.Job) -> None:
        await asyncio.sleep(0.01)

    worker = glidemq.Worker(qname, processor, connection=url, concurrency=2)

    @worker.on("drained")
    async def on_drained() -> None:
        nonlocal drained
        drained += 1

    @worker.on("completed")
    def on_completed(job: glidemq.Job, result: Any) -> None:
        nonlocal completed
        completed += 1

    async with worker:
        await wait_until(lambda: drained == 1, timeout=10)  # an empty queue at start
        await queue.add_bulk([("d", i) for i in range(5)])
        await wait_until(lambda: completed == 5, timeout=10)
        assert await wait_until(lambda: drained == 2, timeout=10) < 2.5  # at once, not after a 5 s poll timeout
        await asyncio.sleep(0.3)
    assert drained == 2  # once per time the queue runs dry, not once per idle wait


async def test_error_event_when_the_server_is_unreachable(qname: str) -> None:
    errors: list[BaseException] = []

    async def processor(job: glidemq.Job) -> None:
        raise AssertionError("no job can exist here")

    connection = glidemq.Connection(f"valkey://127.0.0.1:{free_port()}", request_timeout=0.3)
    worker = glidemq.Worker(qname, processor, connection=connection)
    worker.on("error", errors.append)
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(2.5)
    assert not task.done()  # run() does not raise
    assert errors
    assert all(isinstance(e, glidemq.GlideMQError) for e in errors)
    assert len(errors) < 40  # it backs off instead of spinning
    await asyncio.wait_for(worker.close(), 10)
    await asyncio.wait_for(task, 5)


async def test_a_failing_listener_does_not_stop_the_worker(queue: glidemq.Queue, url: str, qname: str) -> None:
    async def processor(job: glidemq.Job) -> int:
        return 1

    worker = glidemq.Worker(qname, processor, connection=url)

    def broken(job: glidemq.Job, result: Any) -> None:
        raise RuntimeError("listener bug")

    async def broken_async(job: glidemq.Job) -> None:
        raise RuntimeError("async listener bug")

    worker.on("completed", broken)
    worker.on("active", broken_async)
    jobs = await queue.add_bulk([("x", 1), ("x", 2)])
    async with worker:
        for j in jobs:
            assert await j.wait_until_finished(timeout=10) == 1


def test_unknown_event_is_rejected(url: str, qname: str) -> None:
    worker = glidemq.Worker(qname, lambda job: None, connection=url)
    with pytest.raises(glidemq.InvalidArgumentError):
        worker.on("finished", lambda job: None)
