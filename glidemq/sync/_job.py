"""The synchronous twin of ``glidemq.Job``."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Generic, TypeVar, overload

from ..job import Job as AsyncJob
from ._portal import Portal

T = TypeVar("T")


class _Field(Generic[T]):
    """A read-only attribute that mirrors the wrapped async job's field of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Field[T]: ...
    @overload
    def __get__(self, obj: Job, owner: type) -> T: ...
    def __get__(self, obj: Job | None, owner: type) -> _Field[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj._job, self.name)
        return value


class Job:
    """A job of a queue, for synchronous code: the same fields and methods as ``glidemq.Job``,
    with methods that block instead of being awaited."""

    __slots__ = ("_job", "_portal")

    id = _Field[str]()
    name = _Field[str]()
    queue_name = _Field[str]()
    data = _Field[Any]()
    attempts = _Field[int]()
    attempts_made = _Field[int]()
    priority = _Field[int]()
    delay = _Field[float]()
    progress = _Field[Any]()
    return_value = _Field[Any]()
    failed_reason = _Field["str | None"]()
    stacktrace = _Field["list[str]"]()
    timestamp = _Field[float]()
    processed_on = _Field["float | None"]()
    finished_on = _Field["float | None"]()
    timeout = _Field["float | None"]()
    backoff = _Field[str]()

    def __init__(self, job: AsyncJob, portal: Portal) -> None:
        self._job = job
        self._portal = portal

    def __repr__(self) -> str:
        return f"<sync Job {self.queue_name}/{self.id} {self.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Job) and other._job is self._job

    def __hash__(self) -> int:
        return hash(self._job)

    @property
    def async_job(self) -> AsyncJob:
        """The ``glidemq.Job`` this one wraps (to be used on glidemq's loop only)."""
        return self._job

    def get_state(self) -> str:
        """"waiting", "delayed", "active", "completed", "failed", "waiting-children" or "unknown"."""
        return self._portal.run(self._job.get_state())

    def update_progress(self, value: int | float | dict[str, Any]) -> None:
        """Stores the job's progress and publishes a ``progress`` event."""
        self._portal.run(self._job.update_progress(value))

    def log(self, message: str) -> None:
        """Appends a line to the job's log."""
        self._portal.run(self._job.log(message))

    def get_logs(self) -> list[str]:
        """The job's log lines, oldest first."""
        return self._portal.run(self._job.get_logs())

    def remove(self) -> bool:
        """Deletes the job (not while it is active); False if it does not exist or is active."""
        return self._portal.run(self._job.remove())

    def retry(self) -> None:
        """Moves a failed or completed job back to waiting, with its attempts reset."""
        self._portal.run(self._job.retry())

    def promote(self) -> None:
        """Moves a delayed job to waiting now."""
        self._portal.run(self._job.promote())

    def refresh(self) -> bool:
        """Reloads every field from the server; False if the job no longer exists."""
        return self._portal.run(self._job.refresh())

    def wait_until_finished(self, timeout: float | None = None) -> Any:
        """Blocks until the job completes (returns its return value) or fails.

        Raises JobFailedError (``.failed_reason``) if it failed, TimeoutError when
        ``timeout`` seconds pass first.
        """
        return self._portal.run(self._job.wait_until_finished(timeout))

    def __getattr__(self, attr: str) -> Any:
        # any other public member of the async job: coroutine methods become blocking ones
        if attr.startswith("_"):
            raise AttributeError(attr)
        return blocking(getattr(self._job, attr), self._portal)


def blocking(member: Any, portal: Portal) -> Any:
    """``member`` itself, or for a coroutine method a function that runs it on the portal and
    returns its result with async jobs turned into sync ones."""
    if not callable(member):
        return member

    def call(*args: Any, **kwargs: Any) -> Any:
        result = member(*args, **kwargs)
        if isinstance(result, Coroutine):
            result = portal.run(result)
        return wrap_jobs(result, portal)

    call.__name__ = getattr(member, "__name__", "call")
    call.__doc__ = getattr(member, "__doc__", None)
    return call


def wrap_jobs(value: Any, portal: Portal) -> Any:
    """Async jobs (alone or in a list) as sync jobs; anything else unchanged."""
    if isinstance(value, AsyncJob):
        return Job(value, portal)
    if isinstance(value, list) and value and all(isinstance(v, AsyncJob) for v in value):
        return [Job(v, portal) for v in value]
    return value


