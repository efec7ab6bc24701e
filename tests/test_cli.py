"""The ``glidemq`` command line, run as real subprocesses against the test server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from glide import GlideClient

import glidemq
from glidemq.testing import free_port

TESTS_DIR = Path(__file__).parent  # the working directory of the commands: cli_app is importable from it


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GLIDEMQ_URL"}
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONFAULTHANDLER"] = "1"  # a command stuck past its timeout dumps its threads (see wait_exit)
    env.update(extra)
    return env


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "glidemq.cli", *args]


def cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs ``glidemq ARGS`` to the end."""
    return subprocess.run(
        _command(*args), cwd=TESTS_DIR, env=_env(**env), capture_output=True, text=True, timeout=timeout
    )


def spawn(*args: str, **env: str) -> subprocess.Popen[str]:
    """Starts ``glidemq ARGS`` in the background."""
    return subprocess.Popen(
        _command(*args), cwd=TESTS_DIR, env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


async def wait_exit(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of ``proc``; kills it if it outlives ``timeout``."""
    try:
        out, err = await asyncio.to_thread(proc.communicate, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack to stderr
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        pytest.fail(f"the command did not exit within {timeout}s\nstdout: {out}\nstderr: {err}")
    return proc.returncode, out, err


async def wait_state(job: glidemq.Job, state: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (current := await job.get_state()) != state:
        assert time.monotonic() < deadline, f"job {job.id} stayed {current!r}, expected {state!r}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def worker_on_a_slow_job(
    queue: glidemq.Queue, url: str, processor: str, sleep: float, **env: str
) -> AsyncIterator[tuple[subprocess.Popen[str], glidemq.Job]]:
    """A CLI worker running ``processor`` on a job that sleeps ``sleep`` s, once the job is
    active; the worker is killed on the way out if it is still running."""
    proc = spawn("worker", f"cli_app:{processor}", "--queue", queue.name, "--url", url, **env)
    try:
        job = await queue.add("slow", {"sleep": sleep})
        await wait_state(job, "active")
        yield proc, job
    finally:
        if proc.poll() is None:
            proc.kill()


def parse_stats(stdout: str) -> dict[str, str]:
    pairs = [line.split() for line in stdout.splitlines() if line.strip()]
    assert all(len(pair) == 2 for pair in pairs), stdout
    return {key: value for key, value in pairs}


async def test_stats_prints_each_state_with_its_count(url: str, qname: str, queue: glidemq.Queue) -> None:
    async def process(job: glidemq.Job) -> str:
        if job.data == "bad":
            raise ValueError("bad job")
        return "ok"

    good, bad = await queue.add("a", "ok"), await queue.add("b", "bad")
    async with glidemq.Worker(qname, process, connection=url):
        await good.wait_until_finished(timeout=10)
        await wait_state(bad, "failed")
    await queue.add_bulk([("w", i) for i in range(3)])
    await queue.add("d", 1, delay=60)
    await queue.add("d", 2, delay=60)
    await queue.pause()

    result = await asyncio.to_thread(cli, "stats", qname, "--url", url)

    assert result.returncode == 0, result.stderr
    assert parse_stats(result.stdout) == {
        "waiting": "3", "active": "0", "delayed": "2", "completed": "1", "failed": "1",
        "waiting-children": "0", "paused": "yes",
    }


async def test_stats_reads_glidemq_url_and_prefix(url: str, qname: str) -> None:
    async with glidemq.Queue(qname, connection=url, prefix="other") as other:
        await other.add("x", 1)
    result = await asyncio.to_thread(cli, "stats", qname, "--prefix", "other", GLIDEMQ_URL=url)
    assert result.returncode == 0, result.stderr
    assert parse_stats(result.stdout)["waiting"] == "1"
    assert parse_stats(result.stdout)["paused"] == "no"


def test_stats_unreachable_server_fails_without_showing_the_password() -> None:
    port = free_port()
    result = cli("stats", "q", "--url", f"valkey://user:s3cret-pw@127.0.0.1:{port}", timeout=30)
    assert result.returncode == 1
    assert "glidemq stats: error:" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr


@pytest.mark.parametrize(("choice", "loop"), [("auto", "uvloop"), ("asyncio", "asyncio")])
async def test_worker_burst_with_a_processor_runs_every_job_then_exits(
    url: str, qname: str, queue: glidemq.Queue, choice: str, loop: str
) -> None:
    jobs = await queue.add_bulk([("echo", i) for i in range(40)])
    jobs.append(await queue.add("echo", "later", delay=1))

    result = await asyncio.to_thread(
        cli, "worker", "cli_app:echo", "--queue", qname, "--url", url, "--concurrency", "5", "--burst",
        GLIDEMQ_LOOP=choice,
    )

    assert result.returncode == 0, result.stderr
    for job in jobs:
        assert await job.get_state() == "completed"
    assert (await queue.get_job(jobs[-1].id)).return_value == "later"  # type: ignore[union-attr]
    assert "concurrency 5" in result.stderr
    assert f"{loop} event loop" in result.stderr  # uvloop is installed with the test extra


def test_worker_with_an_unknown_event_loop_exits_2_and_names_the_choices(url: str, qname: str) -> None:
    result = cli("worker", "cli_app:echo", "--queue", qname, "--url", url, "--burst", GLIDEMQ_LOOP="trio")
    assert result.returncode == 2
    assert "GLIDEMQ_LOOP must be one of auto, uvloop, asyncio, got 'trio'" in result.stderr


async def test_worker_burst_with_a_worker_object(url: str, qname: str, queue: glidemq.Queue) -> None:
    jobs = await queue.add_bulk([("echo", {"i": i}) for i in range(25)])

    result = await asyncio.to_thread(cli, "worker", "cli_app:worker", "--url", url, "--burst", CLI_TEST_QUEUE=qname)

    assert result.returncode == 0, result.stderr
    assert [await job.get_state() for job in jobs] == ["completed"] * len(jobs)
    assert "concurrency 4" in result.stderr


async def test_worker_burst_on_an_empty_queue_exits_at_once(url: str, qname: str) -> None:
    started = time.monotonic()
    result = await asyncio.to_thread(cli, "worker", "cli_app:echo", "--queue", qname, "--url", url, "--burst")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
@pytest.mark.parametrize("processor", ["slow", "slow_sync"])
async def test_sigterm_lets_the_active_job_finish_then_exits_0(
    url: str, queue: glidemq.Queue, processor: str, loop: str
) -> None:
    async with worker_on_a_slow_job(queue, url, processor, 2, GLIDEMQ_LOOP=loop) as (proc, job):
        proc.send_signal(signal.SIGTERM)
        code, _, err = await wait_exit(proc, 30)
    assert code == 0, err
    assert await job.get_state() == "completed"
    assert await job.wait_until_finished(timeout=1) == "slept"


TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


def signal_a_thread_other_than_main(pid: int, signum: int) -> None:
    """Sends ``signum`` to one of ``pid``'s threads other than its main thread (tgkill), as the
    kernel may do with a signal sent to the process."""
    import ctypes

    others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
    assert others, "the worker runs more than one thread"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL, pid, others[0], signum) == 0, os.strerror(ctypes.get_errno())


@pytest.mark.skipif(TGKILL is None or not sys.platform.startswith("linux"), reason="tgkill: Linux x86_64/aarch64")
@pytest.mark.parametrize("processor", ["slow", "slow_sync"])
async def test_a_signal_another_thread_receives_still_stops_the_worker(
    url: str, queue: glidemq.Queue, processor: str
) -> None:
    async with worker_on_a_slow_job(queue, url, processor, 1) as (proc, job):
        signal_a_thread_other_than_main(proc.pid, signal.SIGTERM)
        code, _, err = await wait_exit(proc, 30)
    assert code == 0, err
    assert "SIGTERM: finishing active jobs" in err
    assert await job.get_state() == "completed"


@pytest.mark.parametrize("processor", ["slow", "slow_sync"])
async def test_second_sigint_forces_and_the_job_goes_back_to_waiting(
    url: str, queue: glidemq.Queue, processor: str
) -> None:
    async with worker_on_a_slow_job(queue, url, processor, 120) as (proc, job):
        proc.send_signal(signal.SIGINT)
        await asyncio.sleep(0.5)
        assert proc.poll() is None, "the first signal must wait for the active job"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code, _, err = await wait_exit(proc, 30)
    assert time.monotonic() - started < 10
    assert code == 0, err
    assert await job.get_state() == "waiting"
    fresh = await queue.get_job(job.id)
    assert fresh is not None and fresh.attempts_made == 0 and fresh.failed_reason is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no_colon_here"], "expected MODULE:ATTR"),
        (["no_such_module_zz:app"], "no module named 'no_such_module_zz'"),
        (["cli_app.py:echo"], "dotted module name"),
        (["cli_app:missing"], "has no attribute 'missing'"),
        (["cli_app:not_a_processor"], "not a glidemq.Worker or a processor function"),
        (["cli_app:echo"], "--queue"),
        (["cli_app:worker", "--concurrency", "9"], "contradicts the Worker's concurrency 4"),
        (["cli_app:worker", "--queue", "elsewhere"], "contradicts the Worker's queue"),
    ],
)
def test_worker_with_a_bad_target_exits_2_with_a_clear_message(args: list[str], message: str) -> None:
    result = cli("worker", *args, timeout=30)
    assert result.returncode == 2
    assert "glidemq worker: error:" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_demo_on_a_given_server_reports_jobs_per_second_and_cleans_up(url: str, raw: GlideClient) -> None:
    result = await asyncio.to_thread(cli, "demo", "--url", url, "--jobs", "500", "--latency-jobs", "20", timeout=120)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert "jobs/s" in lines[-1]
    assert any(line.startswith("jobs completed") and "500" in line for line in lines)
    assert any("p50" in line and "p99" in line and "ms" in line for line in lines)
    assert "\x1b[" not in result.stdout  # not a terminal: no escape codes, no progress frames
    assert await raw.custom_command(["KEYS", "glidemq:{demo-*"]) == []


def test_demo_without_url_runs_on_an_embedded_server() -> None:
    result = cli("demo", "--jobs", "300", "--concurrency", "10", "--latency-jobs", "10", timeout=120)

    assert result.returncode == 0, result.stderr
    assert "embedded Valkey" in result.stdout
    assert "jobs/s" in result.stdout.strip().splitlines()[-1]


def test_bad_arguments_exit_2() -> None:
    assert cli("demo", "--jobs", "0").returncode == 2
    assert cli("stats", "bad:name", "--url", "valkey://127.0.0.1:1").returncode == 2
    assert cli("stats", "q", "--url", "http://127.0.0.1").returncode == 2


def test_installed_script_runs() -> None:
    script = Path(sys.executable).parent / "glidemq"
    if not script.exists():
        pytest.skip("no glidemq script next to the interpreter")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30, cwd=TESTS_DIR)
    assert result.returncode == 0
    assert result.stdout.startswith("glidemq ")
