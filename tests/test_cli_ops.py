"""The operations commands (queues, job, retry, remove, clean, pause, resume, workers, watch), run as
real subprocesses against the test server."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

import glidemq
from glidemq.cli import main

from .worker_helpers import wait_until


async def glidemq_cli(*args: str) -> tuple[int, str, str]:
    """Runs ``glidemq ARGS``; returns the exit code, stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if k != "GLIDEMQ_URL"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "glidemq.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def ok(*args: str) -> str:
    code, out, err = await glidemq_cli(*args)
    assert code == 0, f"exit {code}: {err}"
    return out


async def fail_with(n: int, text: str, *args: str) -> None:
    code, out, err = await glidemq_cli(*args)
    assert code == n, f"exit {code}: {out} {err}"
    assert text in err


async def _failed_job(queue: glidemq.Queue, url: str) -> glidemq.Job:
    """A job that logged, reported progress and failed with a stack trace."""

    async def processor(job: glidemq.Job) -> None:
        await job.log("starting the import")
        await job.update_progress(42)
        raise ValueError("the file is empty")

    job = await queue.add("import", {"file": "users.csv"})
    async with glidemq.Worker(queue.name, processor, connection=url):
        with pytest.raises(glidemq.JobFailedError):
            await job.wait_until_finished(timeout=10)
    return job


async def test_queues_lists_every_queue_with_its_counts(url: str, qname: str) -> None:
    async with glidemq.Queue(qname, connection=url) as q:
        await q.add_bulk([("a", i) for i in range(3)])
        await q.add("later", delay=60)
        await q.pause()
    lines = (await ok("queues", "--url", url)).splitlines()
    assert lines[0].split()[:3] == ["queue", "waiting", "active"]
    (row,) = [line.split() for line in lines if line.split()[0] == qname]
    header = lines[0].split()
    assert dict(zip(header, row, strict=True)) | {} == {
        "queue": qname, "waiting": "3", "active": "0", "delayed": "1", "completed": "0", "failed": "0",
        "waiting-children": "0", "paused": "yes", "workers": "0",
    }


async def test_job_shows_data_state_progress_logs_stack_and_timings(queue: glidemq.Queue, url: str) -> None:
    job = await _failed_job(queue, url)
    out = await ok("job", queue.name, job.id, "--url", url)
    lines = out.splitlines()
    assert f"job {job.id}" in lines
    assert "state failed" in lines
    assert 'data {"file": "users.csv"}' in lines
    assert "progress 42" in lines
    assert "attempts 1/1" in lines
    assert "failed_reason the file is empty" in lines
    assert "  starting the import" in lines
    assert any(line.startswith("processed 20") for line in lines)
    assert any(line.startswith("ran ") for line in lines)
    assert "stacktrace" in lines
    assert "in processor" in out  # the processor's own frame
    assert "ValueError: the file is empty" in out


async def test_unknown_queues_and_jobs_exit_1_with_a_message(queue: glidemq.Queue, url: str, qname: str) -> None:
    await queue.add("x", job_id="known")
    missing = qname + "missing"
    runs = [(f"no queue named '{missing}'", [*args, "--url", url])
            for args in (["job", missing, "known"], ["pause", missing], ["watch", missing, "--once"])]
    runs += [
        (f"queue '{qname}' has no job 'nope'", ["job", qname, "nope", "--url", url]),
        ("has no job 'nope'", ["remove", qname, "nope", "--url", url]),
        ("not failed or completed", ["retry", qname, "known", "--url", url]),
    ]
    await asyncio.gather(*(fail_with(1, text, *args) for text, args in runs))


@pytest.mark.parametrize(
    "args",
    [["clean", "q", "--grace", "-1"], ["watch", "--interval", "soon"], ["job", "bad:name", "1"],
     ["retry", "q", "--state", "active"], ["metrics", "--port", "70000"], ["job", "q"]],
)
def test_bad_arguments_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main([*args, "--url", "valkey://127.0.0.1:1"])  # rejected before any connection
    except SystemExit as exc:
        code = int(str(exc.code))
    assert code == 2
    assert "error" in capsys.readouterr().err


async def test_retry_moves_failed_jobs_back(queue: glidemq.Queue, url: str) -> None:
    first = await _failed_job(queue, url)
    second = await _failed_job(queue, url)
    assert await ok("retry", queue.name, first.id, "--url", url) == f"job {first.id} moved to waiting\n"
    assert await first.get_state() == "waiting"
    assert await ok("retry", queue.name, "--url", url) == "1 failed job(s) moved to waiting\n"
    assert await second.get_state() == "waiting"


async def test_remove_clean_pause_and_resume(queue: glidemq.Queue, url: str) -> None:
    keep, gone = await queue.add("keep"), await queue.add("gone")
    assert await ok("remove", queue.name, gone.id, "--url", url) == f"job {gone.id} removed\n"
    assert await queue.get_job(gone.id) is None and await queue.get_job(keep.id) is not None
    assert await ok("pause", queue.name, "--url", url) == f"queue {queue.name} paused\n"
    assert await queue.is_paused()
    assert await ok("resume", queue.name, "--url", url) == f"queue {queue.name} resumed\n"
    assert not await queue.is_paused()
    async with glidemq.Worker(queue.name, lambda job: None, connection=url):
        await keep.wait_until_finished(timeout=10)
    assert await ok("clean", queue.name, "--grace", "3600", "--url", url) == "0 completed job(s) removed\n"
    assert await ok("clean", queue.name, "--url", url) == "1 completed job(s) removed\n"
    assert await queue.get_job(keep.id) is None


async def test_workers_lists_the_live_workers(queue: glidemq.Queue, url: str) -> None:
    async with glidemq.Worker(queue.name, lambda job: None, connection=url) as worker:
        await wait_until(queue.get_workers)  # a queue that never had a job, but has a worker
        lines = (await ok("workers", queue.name, "--url", url)).splitlines()
        assert lines[1].split()[0] == worker.id
    await queue.add("x")
    assert "no live workers" in await ok("workers", queue.name, "--url", url)
    async with glidemq.Worker(queue.name, lambda job: None, connection=url, concurrency=7) as worker:
        await wait_until(queue.get_workers)
        lines = (await ok("workers", queue.name, "--url", url)).splitlines()
        assert lines[0].split() == ["id", "host", "pid", "started", "active_jobs", "concurrency"]
        assert lines[1].split()[0] == worker.id
        assert lines[1].split()[2] == str(os.getpid())
        assert lines[1].split()[-1] == "7"


async def test_watch_shows_counts_and_rates(queue: glidemq.Queue, url: str) -> None:
    await queue.add_bulk([("a", i) for i in range(4)])
    out = await ok("watch", queue.name, "--url", url, "--iterations", "2", "--interval", "0.1")
    row = next(line for line in out.splitlines() if queue.name in line)
    cells = [c.strip() for c in row.strip("│┃| ").split("│")]
    assert cells[:2] == [queue.name, "4"]
    assert cells[-2:] == ["0.0", "0.0"]  # rates from the second refresh on
    everything = await ok("watch", "--url", url, "--once")
    assert queue.name in everything


async def test_credentials_are_never_printed(queue: glidemq.Queue, url: str) -> None:
    await queue.add("x")
    connection = glidemq.Connection(url)
    secret_url = f"valkey://admin:s3cr3t-pw@{connection.host}:{connection.port}"
    commands = (["queues"], ["watch", "--once"], ["workers", queue.name], ["job", queue.name, "1"])
    for code, out, err in await asyncio.gather(*(glidemq_cli(*args, "--url", secret_url) for args in commands)):
        assert code == 1  # the server has no such user
        assert "s3cr3t-pw" not in out + err
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "glidemq.cli", "metrics", "--url", secret_url, "--port", "0", "--host", "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    ready = await asyncio.wait_for(proc.stdout.readline(), 30)
    proc.terminate()
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert b"serving metrics" in ready and b"admin" in ready
    assert b"s3cr3t-pw" not in ready + out + err
