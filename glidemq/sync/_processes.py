"""Running processors in child processes, one job per process at a time.

Each slot is a single-process ``ProcessPoolExecutor``: a child that dies (``os._exit``,
SIGKILL, a crash in native code) breaks only its own slot, so exactly its job fails (and is
retried if attempts remain) and the slot gets a fresh process. Leases, heartbeats and the
job's completion stay in the parent process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..connection import Connection
from ..errors import GlideMQError
from ..job import Job as AsyncJob
from ._queue import Queue


class _Lease(NamedTuple):
    """Where a job lives and the token of its current run: what a child needs to report on it."""

    connection: Connection
    prefix: str
    token: str
    max_payload_size: int


@dataclass(frozen=True)
class JobSnapshot:
    """What a processor running in a child process gets: a picklable copy of the job's fields.

    ``update_progress`` and ``log`` work from the child (over a connection of the child's own,
    fenced by the run's lease token like the parent's calls).
    """

    id: str
    name: str
    queue_name: str
    data: Any
    attempts: int
    attempts_made: int
    priority: int
    delay: float
    timestamp: float
    processed_on: float | None
    timeout: float | None
    backoff: str
    progress: Any = None
    opts: dict[str, Any] = field(default_factory=dict)
    lease: _Lease | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, job: AsyncJob) -> JobSnapshot:
        """The snapshot of an active job."""
        ctx = job._ctx
        return cls(
            id=job.id, name=job.name, queue_name=job.queue_name, data=job.data, attempts=job.attempts,
            attempts_made=job.attempts_made, priority=job.priority, delay=job.delay, timestamp=job.timestamp,
            processed_on=job.processed_on, timeout=job.timeout, backoff=job.backoff, progress=job.progress,
            opts={"attempts": job.attempts, "priority": job.priority, "delay": job.delay, "timeout": job.timeout,
                  "backoff": job.backoff},
            lease=_Lease(ctx.connection, ctx.prefix, job._token, ctx.max_payload_size),
        )

    def update_progress(self, value: int | float | dict[str, Any]) -> None:
        """Stores the job's progress and publishes a ``progress`` event (QueueEvents; the
        worker's own ``progress`` callbacks do not see progress reported from a child)."""
        queue, job = self._job()
        queue._portal.run(job.update_progress(value))

    def log(self, message: str) -> None:
        """Appends a line to the job's log."""
        queue, job = self._job()
        queue._portal.run(job.log(message))

    def _job(self) -> tuple[Queue, AsyncJob]:
        if self.lease is None:
            raise GlideMQError("this snapshot does not belong to a running job")
        queue = _queue_in_child(self.queue_name, self.lease)
        job = AsyncJob(queue.async_queue._ctx, self.id, self.name, self.data)
        job._token = self.lease.token
        return queue, job


_child_queues: dict[tuple[str, Connection, str, int], Queue] = {}
_child_queues_lock = threading.Lock()


def _queue_in_child(name: str, lease: _Lease) -> Queue:
    """One sync Queue per queue in this (child) process, opened on first use."""
    key = (name, lease.connection, lease.prefix, lease.max_payload_size)
    with _child_queues_lock:
        if key not in _child_queues:
            _child_queues[key] = Queue(
                name, connection=lease.connection, prefix=lease.prefix, max_payload_size=lease.max_payload_size
            )
        return _child_queues[key]


class ProcessDiedError(GlideMQError):
    """The child process running a job ended before returning its result."""


def default_start_method() -> str:
    """forkserver where the platform has it (children do not inherit the parent's threads), else spawn."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


class ProcessSlots:
    """``size`` child processes; ``run`` waits for a free one and runs one call in it."""

    def __init__(self, size: int, fn: Callable[[JobSnapshot], Any], start_method: str | None = None) -> None:
        self.size = size
        self._fn = fn
        self._context = multiprocessing.get_context(start_method or default_start_method())
        self._free: asyncio.Queue[ProcessPoolExecutor] | None = None
        self._all: set[ProcessPoolExecutor] = set()

    def start(self) -> None:
        """Starts the children now, so that the first jobs do not wait for their imports."""
        if self._free is None:
            self._free = asyncio.Queue()
            for _ in range(self.size):
                self._free.put_nowait(self._slot())

    def _slot(self) -> ProcessPoolExecutor:
        executor = ProcessPoolExecutor(max_workers=1, mp_context=self._context)
        executor.submit(_warm_up, self._fn)  # the child starts and imports the processor's module
        self._all.add(executor)
        return executor

    async def run(self, snapshot: JobSnapshot) -> Any:
        """The processor called with ``snapshot`` in a child; its result, or its exception re-raised here."""
        self.start()
        free = self._free
        assert free is not None
        slot = await free.get()
        try:
            return await asyncio.wrap_future(slot.submit(self._fn, snapshot))
        except BrokenProcessPool as exc:
            codes = _exit_codes(slot)
            slot = self._replace(slot)
            raise ProcessDiedError(
                f"the process running job {snapshot.id} died (exit code {', '.join(map(str, codes)) or '?'})"
            ) from exc
        except asyncio.CancelledError:
            slot = self._replace(slot)  # timeout or forced close: stop the job's process too
            raise
        finally:
            free.put_nowait(slot)

    def _replace(self, slot: ProcessPoolExecutor) -> ProcessPoolExecutor:
        _kill(slot)
        self._all.discard(slot)
        return self._slot()

    def shutdown(self) -> None:
        """Stops every child; jobs still running in them are the caller's to put back."""
        for executor in self._all:
            _kill(executor)
        self._all.clear()
        self._free = None


def _warm_up(fn: Callable[[JobSnapshot], Any]) -> None:
    """Runs in a new child: unpickling ``fn`` has imported its module; nothing else to do."""


def _processes(executor: ProcessPoolExecutor) -> list[Any]:
    # ProcessPoolExecutor keeps its children here (Python 3.14 adds kill_workers() for this)
    return list((getattr(executor, "_processes", None) or {}).values())


def _exit_codes(executor: ProcessPoolExecutor) -> list[int]:
    codes = []
    for process in _processes(executor):
        process.join(1)
        if process.exitcode is not None:
            codes.append(process.exitcode)
    return codes


def _kill(executor: ProcessPoolExecutor) -> None:
    for process in _processes(executor):
        if process.is_alive():
            process.kill()
    executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["JobSnapshot", "ProcessDiedError", "ProcessSlots", "default_start_method"]
