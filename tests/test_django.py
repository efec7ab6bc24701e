"""glidemq.contrib.django: Django's tasks framework on glidemq, with a minimal project (no database)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import django
import pytest
from django.utils import timezone

import glidemq
from glidemq.contrib.django import process
from glidemq.sync import Queue, Worker
from glidemq.testing import EmbeddedValkey

try:
    from django.tasks.exceptions import InvalidTask as InvalidTaskError
    from django.tasks.exceptions import TaskResultDoesNotExist
except ImportError:
    from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the project is imported as tests.django_project (after the installed glidemq)
    sys.path.append(str(ROOT))
QUEUE = "dj" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def tasks(server: EmbeddedValkey) -> Iterator[ModuleType]:
    env = {"DJANGO_SETTINGS_MODULE": "tests.django_project.settings", "DJANGO_TEST_QUEUE": QUEUE,
           "GLIDEMQ_URL": server.url}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    django.setup()
    from tests.django_project import tasks as module

    yield module
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def worker(tasks: ModuleType, url: str) -> Iterator[Worker]:
    with Worker(QUEUE, process, connection=url, concurrency=2) as running:
        yield running


@pytest.fixture
def queue_(url: str) -> Iterator[Queue]:
    with Queue(QUEUE, connection=url) as q:
        yield q
        q.obliterate(force=True)


def test_enqueue_writes_a_job_with_the_task_path(tasks: ModuleType, queue_: Queue) -> None:
    result = tasks.add.enqueue(2, 3)
    assert result.status == "READY" and result.args == [2, 3] and result.backend == "default"
    queue_name, _, job_id = result.id.partition(":")
    assert queue_name == QUEUE
    job = queue_.get_job(job_id)
    assert job is not None and job.name == "add"
    assert job.data == {"task": "tests.django_project.tasks.add", "args": [2, 3], "kwargs": {}, "backend": "default"}
    fetched = tasks.add.get_result(result.id)
    assert fetched.status == "READY" and fetched.enqueued_at is not None


def test_the_worker_runs_tasks_and_results_come_back(tasks: ModuleType, worker: Worker, queue_: Queue) -> None:
    results = [tasks.add.enqueue(2, 3), tasks.greet.enqueue("ada", punctuation="?"), tasks.async_double.enqueue(21)]
    for result in results:
        queue_.get_job(result.id.partition(":")[2]).wait_until_finished(timeout=15)
        result.refresh()
        assert result.status == "SUCCESSFUL" and result.is_finished and result.finished_at is not None
    assert [r.return_value for r in results] == [5, "hello ada?", 42]
    assert results[0].attempts == 1


def test_a_failing_task_reports_its_exception(tasks: ModuleType, worker: Worker, queue_: Queue) -> None:
    result = tasks.explode.enqueue("boom")
    with pytest.raises(glidemq.JobFailedError):
        queue_.get_job(result.id.partition(":")[2]).wait_until_finished(timeout=15)
    result.refresh()
    assert result.status == "FAILED"
    assert result.errors[0].exception_class is ValueError
    assert "explode" in result.errors[0].traceback and "boom" in result.errors[0].traceback


def test_context_tasks_get_their_result(tasks: ModuleType, worker: Worker, queue_: Queue) -> None:
    result = tasks.with_context.enqueue("t1")
    value = queue_.get_job(result.id.partition(":")[2]).wait_until_finished(timeout=15)
    assert value == {"tag": "t1", "attempt": 1, "result_id": result.id}


def test_priority_and_run_after_map_to_job_options(tasks: ModuleType, queue_: Queue) -> None:
    plain = tasks.add.enqueue(1, 1)
    urgent = tasks.greet.enqueue("x")  # priority 50 in Django: runs before priority 0
    later = tasks.add.using(run_after=timezone.now() + timedelta(minutes=5)).enqueue(1, 2)
    jobs = {r.id: queue_.get_job(r.id.partition(":")[2]) for r in (plain, urgent, later)}
    assert jobs[urgent.id].priority < jobs[plain.id].priority
    assert [j.id for j in queue_.get_jobs("waiting")] == [jobs[urgent.id].id, jobs[plain.id].id]
    assert jobs[later.id].get_state() == "delayed" and 290 < jobs[later.id].delay <= 300


def test_threads_share_one_queue_per_name(tasks: ModuleType, queue_: Queue) -> None:
    from glidemq.contrib.django import GlideMQBackend

    backends: list[GlideMQBackend] = []

    def enqueue() -> None:
        backends.append(tasks.add.get_backend())
        tasks.add.enqueue(1, 1)

    threads = [threading.Thread(target=enqueue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(b.queue(QUEUE)) for b in backends}) == 1
    assert queue_.count() == 4


def test_bad_calls(tasks: ModuleType, queue_: Queue) -> None:
    with pytest.raises(InvalidTaskError):
        tasks.add.using(queue_name="not-configured").enqueue(1, 2)
    with pytest.raises(glidemq.SerializationError):
        tasks.add.enqueue({1: "int key"}, 2)
    assert queue_.count() == 0
    for missing in ("nonsense", f"{QUEUE}:999999", "other:1"):
        with pytest.raises(TaskResultDoesNotExist):
            tasks.add.get_result(missing)


async def test_aenqueue_from_async_code(tasks: ModuleType, queue_: Queue) -> None:
    result = await tasks.add.aenqueue(5, 6)
    job = queue_.get_job(result.id.partition(":")[2])
    assert job is not None and job.data["args"] == [5, 6]
    assert (await tasks.add.aget_result(result.id)).status == "READY"


def test_the_cli_runs_django_tasks(tasks: ModuleType, url: str, queue_: Queue) -> None:
    result = tasks.add.enqueue(40, 2)
    args = ["worker", "glidemq.contrib.django:process", "--queue", QUEUE, "--url", url, "--burst"]
    program = f"import sys; sys.path.append({str(ROOT)!r}); from glidemq.cli import main; sys.exit(main({args!r}))"
    run = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT / "tests", capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert tasks.add.get_result(result.id).return_value == 42


