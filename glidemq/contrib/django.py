"""A task backend for Django's tasks framework (``django.tasks``, Django 6; the ``django-tasks``
package on older Django) that enqueues ``@task`` functions to glidemq.

```python
TASKS = {"default": {
    "BACKEND": "glidemq.contrib.django.GlideMQBackend",
    "QUEUES": ["default"],                       # Django queue names are glidemq queue names
    "OPTIONS": {"CONNECTION": "valkey://127.0.0.1:6379", "PREFIX": "glidemq", "JOB_OPTIONS": {"attempts": 3}},
}}
```
Run the tasks with ``DJANGO_SETTINGS_MODULE=mysite.settings glidemq worker
glidemq.contrib.django:process --queue default`` (add ``--processes N`` for a process pool).
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import django
from django.apps import apps
from django.utils import timezone as django_timezone
from django.utils.module_loading import import_string

try:  # Django 6
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskContext, TaskError, TaskResult, TaskResultStatus
    from django.tasks.exceptions import TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued
except ImportError:  # the django-tasks package: the same framework for Django 4.2 and 5
    from django_tasks.backends.base import BaseTaskBackend
    from django_tasks.base import TaskContext, TaskError, TaskResult, TaskResultStatus
    from django_tasks.exceptions import TaskResultDoesNotExist
    from django_tasks.signals import task_enqueued

from ..sync import Job, JobSnapshot, Queue

DJANGO_MAX_PRIORITY = 100  # Django: -100..100, higher runs first; glidemq: 0.., lower runs first
STATUS_OF_STATE = {
    "waiting": "READY", "delayed": "READY", "waiting-children": "READY", "active": "RUNNING",
    "completed": "SUCCESSFUL", "failed": "FAILED",
}

__all__ = ["GlideMQBackend", "process"]

_queues: dict[tuple[str | None, str, str], Queue] = {}
_queues_lock = threading.Lock()


class GlideMQBackend(BaseTaskBackend):  # type: ignore[misc]
    """Enqueues Django tasks as glidemq jobs; results are read back from the jobs.

    OPTIONS: ``CONNECTION`` (URL, default ``$GLIDEMQ_URL``), ``PREFIX`` (default "glidemq"),
    ``JOB_OPTIONS`` (keyword arguments of ``Queue.add`` for every job, e.g. ``{"attempts": 3}``).
    A result id is ``QUEUE:JOB_ID``.
    """

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.connection: str | None = self.options.get("CONNECTION")
        self.prefix: str = self.options.get("PREFIX", "glidemq")
        self.job_options: dict[str, Any] = dict(self.options.get("JOB_OPTIONS", {}))

    def queue(self, name: str) -> Queue:
        """The glidemq queue behind a Django queue name.

        Django makes a backend per thread; the queues (and their connections) are shared by all.
        """
        key = (self.connection, self.prefix, name)
        with _queues_lock:
            if key not in _queues:
                _queues[key] = Queue(name, connection=self.connection, prefix=self.prefix)
            return _queues[key]

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        """Adds the task as a job: its dotted path, args and kwargs are the job's data."""
        self.validate_task(task)
        delay = 0.0
        if task.run_after is not None:
            delay = max(0.0, (task.run_after - django_timezone.now()).total_seconds())
        data = {"task": task.module_path, "args": list(args), "kwargs": dict(kwargs), "backend": self.alias}
        job = self.queue(task.queue_name).add(
            task.name, data, delay=delay, priority=DJANGO_MAX_PRIORITY - task.priority, **self.job_options
        )
        result = task_result(job, "READY", task=task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        """The task result of a job, read fresh from the server."""
        queue_name, _, job_id = str(result_id).partition(":")
        if not queue_name or not job_id or (self.queues and queue_name not in self.queues):
            raise TaskResultDoesNotExist(result_id)
        job = self.queue(queue_name).get_job(job_id)
        if job is None:
            raise TaskResultDoesNotExist(result_id)
        return task_result(job, STATUS_OF_STATE.get(job.get_state(), "READY"))


def task_result(job: Job | JobSnapshot, status: str, *, task: Any = None) -> Any:
    """A Django TaskResult describing ``job``."""
    data = job.data
    if task is None:
        task = import_string(data["task"]).using(
            queue_name=job.queue_name, priority=DJANGO_MAX_PRIORITY - job.priority, backend=data["backend"]
        )
    finished_on = getattr(job, "finished_on", None)
    stacktrace: list[str] = getattr(job, "stacktrace", [])
    failed_reason = getattr(job, "failed_reason", None)
    errors = []
    if status == "FAILED" or failed_reason:
        errors.append(TaskError(exception_class_path=_exception_path(stacktrace), traceback="".join(stacktrace)))
    attempts = job.attempts_made + (1 if status == "RUNNING" else 0)
    result = TaskResult(
        task=task, id=f"{job.queue_name}:{job.id}", status=TaskResultStatus[status],
        enqueued_at=_datetime(job.timestamp), started_at=_datetime(job.processed_on),
        finished_at=_datetime(finished_on), last_attempted_at=_datetime(job.processed_on),
        args=data["args"], kwargs=data["kwargs"], backend=data["backend"], errors=errors,
        worker_ids=["glidemq"] * attempts,
    )
    if status == "SUCCESSFUL":
        object.__setattr__(result, "_return_value", getattr(job, "return_value", None))
    return result


def process(job: Job | JobSnapshot) -> Any:
    """The glidemq processor that runs Django tasks: ``glidemq worker glidemq.contrib.django:process``.

    Sets Django up (``DJANGO_SETTINGS_MODULE``) on first use; works with threads and processes.
    """
    if not apps.ready:
        django.setup()
    data = job.data
    task = import_string(data["task"])
    args = list(data["args"])
    if task.takes_context:
        args.insert(0, TaskContext(task_result=task_result(job, "RUNNING", task=task)))
    return task.call(*args, **data["kwargs"])


def _datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _exception_path(stacktrace: list[str]) -> str:
    """The dotted path of the exception class named on a formatted traceback's last line."""
    for line in reversed(stacktrace):
        name = line.split(":", 1)[0].strip()
        if name and " " not in name:
            return name if "." in name else f"builtins.{name}"
    return "builtins.Exception"
