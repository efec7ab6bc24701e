"""Running processors in child processes, one job per process at a time.

Each slot is a single-process ``ProcessPoolExecutor``: a child that dies (``os._exit``,
SIGKILL, a crash in native code) breaks only its own slot, so exactly its job fails (and is
retried if attempts remain) and the slot gets a fresh process. Leases, heartbeats and the
job's completion stay in the parent process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from ..errors import GlideMQError
from ..job import Job as AsyncJob


@dataclass(frozen=True)
class JobSnapshot:
    """What a processor running in a child process gets: a picklable copy of the job's fields.

    It has no methods that reach the server (no progress or log calls from the child).
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

    @classmethod
    def of(cls, job: AsyncJob) -> JobSnapshot:
        """The snapshot of an active job."""
        return cls(
            id=job.id, name=job.name, queue_name=job.queue_name, data=job.data, attempts=job.attempts,
            attempts_made=job.attempts_made, priority=job.priority, delay=job.delay, timestamp=job.timestamp,
            processed_on=job.processed_on, timeout=job.timeout, backoff=job.backoff, progress=job.progress,
            opts={"attempts": job.attempts, "priority": job.priority, "delay": job.delay, "timeout": job.timeout,
                  "backoff": job.backoff},
        )


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
        assert self._free is not None
        slot = await self._free.get()
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
            self._free.put_nowait(slot)

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
