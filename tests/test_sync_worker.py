"""glidemq.sync.Worker: thread pool and process pool, shutdown, signals, crashes, the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import glidemq
from glidemq.sync import Job, JobSnapshot, Queue, Worker

from . import sync_helpers

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the pool's children import tests.sync_helpers by name (after the installed glidemq)
    sys.path.append(str(ROOT))


def running(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_thread_pool_runs_concurrency_jobs_at_once(url: str, qname: str) -> None:
    barrier = threading.Barrier(4, timeout=10)
    seen: list[Any] = []

    def processor(job: Job) -> str:
        seen.append(type(job))
        job.update_progress(50)
        job.log(f"job {job.id}")
        barrier.wait()  # passes only when 4 jobs run at the same time
        return f"done {job.data}"

    with Queue(qname, connection=url) as q:
        jobs = q.add_bulk([("j", i) for i in range(4)])
        worker = Worker(qname, processor, connection=url, concurrency=4)
        thread = running(worker)
        assert [j.wait_until_finished(timeout=15) for j in jobs] == [f"done {i}" for i in range(4)]
        assert jobs[0].get_logs() == [f"job {jobs[0].id}"] and q.get_job(jobs[0].id).progress == 50
        worker.close()
        thread.join(10)
        assert not thread.is_alive() and not worker.running
    assert seen == [Job] * 4


def test_close_from_another_thread_ends_run(url: str, qname: str) -> None:
    worker = Worker(qname, sync_helpers.sleepy, connection=url)
    thread = running(worker)
    with Queue(qname, connection=url) as q:
        job = q.add("s", {"sleep": 0.3})
        worker.close()  # waits for the active job, if it started
        thread.join(10)
        assert not thread.is_alive()
        assert job.get_state() in ("completed", "waiting")


def test_failures_retries_and_events(url: str, qname: str) -> None:
    events: list[tuple[str, Any]] = []

    def processor(job: Job) -> None:
        if job.data == "fatal":
            raise glidemq.UnrecoverableError("no point retrying")
        raise RuntimeError(f"attempt {job.attempts_made + 1}")

    worker = Worker(qname, processor, connection=url, concurrency=2)

    @worker.on("failed")
    def failed(job: Job, exc: BaseException) -> None:
        events.append((job.get_state(), job.attempts_made))  # callbacks may use the sync API

    with Queue(qname, connection=url) as q, worker:
        retried = q.add("r", attempts=2)
        fatal = q.add("f", "fatal", attempts=5)
        with pytest.raises(glidemq.JobFailedError, match="attempt 2"):
            retried.wait_until_finished(timeout=15)
        with pytest.raises(glidemq.JobFailedError, match="no point retrying"):
            fatal.wait_until_finished(timeout=15)
        fatal.refresh()
        assert fatal.attempts_made == 1
        assert any("in processor" in line for line in fatal.stacktrace)
    assert sorted(made for _, made in events) == [1, 1, 2]
    assert {state for state, _ in events} <= {"waiting", "delayed", "active", "failed"}


async def test_async_producer_sync_worker_and_back(url: str, qname: str, queue: glidemq.Queue) -> None:
    job = await queue.add("async-made", {"n": 3})
    with Worker(qname, lambda j: j.data["n"] * 2, connection=url):
        assert await job.wait_until_finished(timeout=15) == 6
    with Queue(qname, connection=url) as q:
        sync_job = q.add("sync-made", {"n": 4})

        async def double(j: glidemq.Job) -> int:
            return int(j.data["n"]) * 2

        async with glidemq.Worker(qname, double, connection=url):
            assert await asyncio.to_thread(sync_job.wait_until_finished, 15) == 8


@pytest.mark.parametrize(
    "kwargs",
    [{"concurrency": 0}, {"processes": 0}, {"processes": 2.5}, {"lock_duration": 0}, {"prefix": ""}],
)
def test_bad_worker_options(url: str, qname: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        Worker(qname, sync_helpers.cpu, connection=url, **kwargs)


def test_bad_processors(url: str, qname: str) -> None:
    async def coroutine_function(job: Any) -> None: ...

    with pytest.raises(glidemq.InvalidArgumentError, match=r"glidemq\.Worker"):
        Worker(qname, coroutine_function, connection=url)
    with pytest.raises(glidemq.InvalidArgumentError, match="module-level"):
        Worker(qname, lambda job: None, connection=url, processes=1)
    with pytest.raises(glidemq.InvalidArgumentError):
        Worker(qname, 42, connection=url)  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        Worker("bad{name}", sync_helpers.cpu, connection=url)


def test_process_pool_runs_jobs_in_children(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q, Worker(qname, sync_helpers.cpu, connection=url, processes=2):
        jobs = q.add_bulk([("cpu", {"n": 1000 + i}) for i in range(6)])
        results = [j.wait_until_finished(timeout=30) for j in jobs]
    assert [r["sum"] for r in results] == [sum(k * k for k in range(1000 + i)) for i in range(6)]
    assert os.getpid() not in {r["pid"] for r in results}


def test_process_pool_child_sees_a_snapshot(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q, Worker(qname, sync_helpers.snapshot_fields, connection=url, processes=1):
        job = q.add("look", {"k": [1, "v"]}, attempts=2)
        seen = job.wait_until_finished(timeout=30)
    assert seen == {"id": job.id, "name": "look", "queue": qname, "data": {"k": [1, "v"]}, "attempts": 2,
                    "attempts_made": 0, "type": JobSnapshot.__name__}


def test_children_report_progress_and_logs(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q, Worker(qname, sync_helpers.report, connection=url, processes=1):
        job = q.add("report")
        child = job.wait_until_finished(timeout=30)
        assert child != os.getpid()
        assert job.get_logs() == [f"hello from {child}"]
        fresh = q.get_job(job.id)
        assert fresh is not None and fresh.progress == {"done": 50}
    detached = JobSnapshot(id="1", name="n", queue_name=qname, data=None, attempts=1, attempts_made=0, priority=0,
                           delay=0.0, timestamp=0.0, processed_on=None, timeout=None, backoff="")
    with pytest.raises(glidemq.GlideMQError, match="running job"):
        detached.update_progress(1)


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_a_killed_child_retries_or_fails_its_job(url: str, qname: str, how: str) -> None:
    with Queue(qname, connection=url) as q, Worker(qname, sync_helpers.crash_first, connection=url, processes=1):
        retried = q.add("crash", {"how": how}, attempts=2)
        assert retried.wait_until_finished(timeout=30) == "survived"
        failed = q.add("crash", {"how": how}, attempts=1)
        with pytest.raises(glidemq.JobFailedError, match="died"):
            failed.wait_until_finished(timeout=30)
        assert q.get_job_counts()["active"] == 0


def test_a_timed_out_job_stops_its_child(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q, Worker(qname, sync_helpers.sleepy, connection=url, processes=1):
        slow = q.add("slow", {"sleep": 60}, timeout=0.5)
        with pytest.raises(glidemq.JobFailedError, match="timed out"):
            slow.wait_until_finished(timeout=30)
        quick = q.add("quick", {"sleep": 0})
        assert quick.wait_until_finished(timeout=30) == "slept"


def test_forced_close_puts_the_job_back_and_kills_its_child(url: str, qname: str, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    worker = Worker(qname, sync_helpers.sleepy_with_pid, connection=url, processes=1)
    thread = running(worker)
    with Queue(qname, connection=url) as q:
        job = q.add("long", {"sleep": 60, "pid_file": str(pid_file)}, attempts=1)
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        worker.close(timeout=0.2)
        thread.join(10)
        assert not thread.is_alive()
        assert job.get_state() == "waiting"
        fresh = q.get_job(job.id)
        assert fresh is not None and fresh.attempts_made == 0 and fresh.failed_reason is None
    child = int(pid_file.read_text())
    while True:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, f"the child {child} still runs"
        time.sleep(0.05)


def test_pause_resume_and_more_jobs_than_processes(url: str, qname: str) -> None:
    worker = Worker(qname, sync_helpers.cpu, connection=url, processes=1, concurrency=3)
    assert worker.concurrency == 3 and worker.processes == 1
    completed: list[str] = []
    worker.on("completed", lambda job, result: completed.append(job.id))
    with Queue(qname, connection=url) as q, worker:
        worker.pause()
        jobs = q.add_bulk([("cpu", {"n": 10}) for _ in range(5)])
        assert all(j.get_state() == "waiting" for j in jobs)
        worker.resume()
        assert [j.wait_until_finished(timeout=30)["sum"] for j in jobs] == [285] * 5
    assert sorted(completed) == sorted(j.id for j in jobs)


def test_sigterm_finishes_the_active_job_then_run_returns(url: str, qname: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sync_helpers", url, qname], cwd=ROOT / "tests",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with Queue(qname, connection=url) as q:
            job = q.add("s", {"sleep": 1.5})
            for _ in range(300):
                if job.get_state() == "active":
                    break
                threading.Event().wait(0.05)
            assert job.get_state() == "active"
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err
            assert "run returned" in out
            assert job.get_state() == "completed"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_cli_runs_a_plain_function_in_processes(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        jobs = q.add_bulk([("cpu", {"n": 100}) for _ in range(4)])
        result = subprocess.run(
            [sys.executable, "-m", "glidemq.cli", "worker", "sync_helpers:cpu", "--queue", qname, "--url", url,
             "--processes", "2", "--burst"],
            cwd=ROOT / "tests", capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "2 processes" in result.stderr
        assert {j.wait_until_finished(timeout=1)["sum"] for j in jobs} == {sum(k * k for k in range(100))}


def test_cli_runs_a_sync_worker_object(url: str, qname: str) -> None:
    env = {**os.environ, "SYNC_CLI_QUEUE": qname}
    env.pop("GLIDEMQ_URL", None)
    with Queue(qname, connection=url) as q:
        jobs = q.add_bulk([("d", i) for i in range(5)])
        refused = subprocess.run(
            [sys.executable, "-m", "glidemq.cli", "worker", "sync_cli_app:worker", "--url", url, "--processes", "3"],
            cwd=ROOT / "tests", env=env, capture_output=True, text=True, timeout=60,
        )
        assert refused.returncode == 2 and "contradicts the Worker's processes 2" in refused.stderr
        assert q.count() == 5
        result = subprocess.run(
            [sys.executable, "-m", "glidemq.cli", "worker", "sync_cli_app:worker", "--url", url, "--burst"],
            cwd=ROOT / "tests", env=env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert [j.wait_until_finished(timeout=1) for j in jobs] == [0, 2, 4, 6, 8]


def test_cli_refuses_processes_for_an_async_processor(url: str, qname: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "glidemq.cli", "worker", "cli_app:echo", "--queue", qname, "--url", url,
         "--processes", "2"],
        cwd=ROOT / "tests", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "--processes needs a plain function" in result.stderr
