"""The synchronous twin of ``glidemq.Queue``."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from ..connection import Connection
from ..durability import Durability
from ..options import Backoff
from ..queue import Queue as AsyncQueue
from ._job import Job, blocking, wrap_jobs
from ._portal import portal

T = TypeVar("T")


async def _build(name: str, options: dict[str, Any]) -> AsyncQueue:
    return AsyncQueue(name, **options)  # created on the portal's loop, where it will be used


class Queue:
    """A named queue, for synchronous code: the same arguments, methods and options as
    ``glidemq.Queue``, with methods that block instead of being awaited.

    One instance may be shared by many threads. Usable as ``with Queue("emails") as q:``;
    without it, the connection opens on first use and ``close()`` releases it.
    """

    def __init__(
        self, name: str, *, connection: Connection | str | None = None, prefix: str = "glidemq", **options: Any
    ) -> None:
        self._options: dict[str, Any] = {"connection": connection, "prefix": prefix, **options}
        self._portal = portal()
        self._queue = self._portal.run(_build(name, self._options))
        self._pid = os.getpid()
        self.name = self._queue.name
        self.prefix = self._queue.prefix

    def __repr__(self) -> str:
        return f"<sync Queue {self.name!r} on {self._queue._ctx.connection.url}>"

    def __enter__(self) -> Queue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def async_queue(self) -> AsyncQueue:
        """The ``glidemq.Queue`` this one drives (to be used on glidemq's loop only)."""
        return self._target()

    def _target(self) -> AsyncQueue:
        if self._pid != os.getpid():  # a forked child: the parent's loop and connections are not here
            self._portal = portal()
            self._queue = self._portal.run(_build(self.name, self._options))
            self._pid = os.getpid()
        return self._queue

    def _run(self, call: Callable[[AsyncQueue], Coroutine[Any, Any, T]]) -> T:
        queue = self._target()
        return self._portal.run(call(queue))

    def close(self) -> None:
        """Releases the queue's connections; a later call connects again."""
        self._run(lambda q: q.close())

    def add(
        self,
        name: str,
        data: Any = None,
        *,
        job_id: str | None = None,
        delay: float | timedelta = 0,
        priority: int = 0,
        attempts: int = 1,
        backoff: Backoff | float | None = None,
        timeout: float | None = None,
        lifo: bool = False,
        remove_on_complete: bool | int = False,
        remove_on_fail: bool | int = False,
        durability: Durability | None = None,
        **options: Any,
    ) -> Job:
        """Adds one job (see ``glidemq.Queue.add``); bad input raises here and writes nothing."""
        job = self._run(lambda q: q.add(
            name, data, job_id=job_id, delay=delay, priority=priority, attempts=attempts, backoff=backoff,
            timeout=timeout, lifo=lifo, remove_on_complete=remove_on_complete, remove_on_fail=remove_on_fail,
            durability=durability, **options,
        ))
        return Job(job, self._portal)

    def add_bulk(
        self,
        jobs: Iterable[tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]],
        *,
        durability: Durability | None = None,
    ) -> list[Job]:
        """Adds many jobs in few server calls; every job is checked before anything is written."""
        items = list(jobs)  # read here: a generator must not run on the loop's thread
        added = self._run(lambda q: q.add_bulk(items, durability=durability))
        return [Job(job, self._portal) for job in added]

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        job = self._run(lambda q: q.get_job(job_id))
        return None if job is None else Job(job, self._portal)

    def get_jobs(self, states: str | Sequence[str], start: int = 0, end: int = -1) -> list[Job]:
        """Jobs in the given states, ranks start..end inclusive over the states in order."""
        return [Job(job, self._portal) for job in self._run(lambda q: q.get_jobs(states, start, end))]

    def get_job_counts(self) -> dict[str, int]:
        """Jobs per state: waiting, active, delayed, completed, failed, waiting-children, paused."""
        return self._run(lambda q: q.get_job_counts())

    def count(self) -> int:
        """Jobs not yet started: waiting plus delayed."""
        return self._run(lambda q: q.count())

    def pause(self) -> None:
        """Stops every worker of the queue from starting new jobs."""
        self._run(lambda q: q.pause())

    def resume(self) -> None:
        """Lets workers start jobs again."""
        self._run(lambda q: q.resume())

    def is_paused(self) -> bool:
        """True while the queue is paused."""
        return self._run(lambda q: q.is_paused())

    def drain(self, *, delayed: bool = False) -> int:
        """Removes waiting (and, with ``delayed``, delayed) jobs; returns how many."""
        return self._run(lambda q: q.drain(delayed=delayed))

    def clean(self, grace: float | timedelta, limit: int = 1000, state: str = "completed") -> list[str]:
        """Removes up to ``limit`` jobs of ``state`` older than ``grace`` seconds; returns their ids."""
        return self._run(lambda q: q.clean(grace, limit, state))

    def retry_jobs(self, state: str = "failed", count: int | None = None) -> int:
        """Moves failed (or completed) jobs back to waiting; returns how many moved."""
        return self._run(lambda q: q.retry_jobs(state, count))

    def remove(self, job_id: str) -> bool:
        """Deletes a job that is not active; True if it was removed."""
        return self._run(lambda q: q.remove(job_id))

    def obliterate(self, *, force: bool = False) -> None:
        """Deletes the queue and all its jobs; refuses while jobs are active unless ``force``."""
        self._run(lambda q: q.obliterate(force=force))

    def __getattr__(self, attr: str) -> Any:
        # any other public member of the async queue: coroutine methods become blocking ones
        if attr.startswith("_"):
            raise AttributeError(attr)
        return blocking(getattr(self._target(), attr), self._portal)


__all__ = ["Job", "Queue", "wrap_jobs"]
