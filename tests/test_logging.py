"""Structured logging: records under ``glidemq.*`` with job ids in ``extra``; silent by default."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import glidemq


async def _run(queue: glidemq.Queue, url: str, data: object, attempts: int = 1) -> glidemq.Job:
    async def processor(job: glidemq.Job) -> str:
        if job.data == "bad":
            raise RuntimeError("broken input")
        return "fine"

    job = await queue.add("work", data, attempts=attempts)
    async with glidemq.Worker(queue.name, processor, connection=url):
        try:
            await job.wait_until_finished(timeout=10)
        except glidemq.JobFailedError:
            pass
    return job


def _records(caplog: pytest.LogCaptureFixture, job_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "job_id", None) == job_id]


def test_the_library_adds_only_a_null_handler() -> None:
    handlers = logging.getLogger("glidemq").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
    assert all(isinstance(h, logging.NullHandler) for h in handlers)


async def test_a_completed_job_is_logged_at_debug_with_its_id(
    queue: glidemq.Queue, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="glidemq")
    job = await _run(queue, url, "good")
    (record,) = _records(caplog, job.id)
    assert record.name == "glidemq.worker"
    assert record.levelno == logging.DEBUG
    assert record.queue == queue.name  # type: ignore[attr-defined]
    assert record.job_name == "work"  # type: ignore[attr-defined]
    assert "completed" in record.getMessage()


async def test_failed_attempts_are_warnings_that_say_whether_it_was_the_last(
    queue: glidemq.Queue, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="glidemq")
    job = await _run(queue, url, "bad", attempts=2)
    records = _records(caplog, job.id)
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert [r.attempts_made for r in records] == [1, 2]  # type: ignore[attr-defined]
    assert [r.final for r in records] == [False, True]  # type: ignore[attr-defined]
    assert all("broken input" in r.getMessage() for r in records)
    assert "will retry" in records[0].getMessage() and "will retry" not in records[1].getMessage()


async def test_worker_start_and_close_are_logged_with_its_id(
    queue: glidemq.Queue, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="glidemq")
    async with glidemq.Worker(queue.name, lambda job: None, connection=url) as worker:
        pass
    mine = [r for r in caplog.records if getattr(r, "worker_id", None) == worker.id]
    assert [r.name for r in mine] == ["glidemq.worker", "glidemq.worker"]
    assert "started" in mine[0].getMessage() and "closed" in mine[1].getMessage()
    assert all(r.queue == queue.name for r in mine)  # type: ignore[attr-defined]


async def test_nothing_below_warning_is_emitted_at_the_default_level(
    queue: glidemq.Queue, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await _run(queue, url, "good")
    assert [r for r in caplog.records if r.name.startswith("glidemq")] == []


def test_an_unconfigured_application_sees_no_log_output(url: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, glidemq

        async def main():
            async with glidemq.Queue("silent", connection={url!r}) as q:
                job = await q.add("x", "bad")
                def fail(job):
                    raise RuntimeError("boom")
                async with glidemq.Worker("silent", fail, connection={url!r}):
                    try:
                        await job.wait_until_finished(timeout=10)
                    except glidemq.JobFailedError:
                        print("failed as expected")
                await q.obliterate(force=True)

        asyncio.run(main())
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "failed as expected\n"
    assert result.stderr == ""
