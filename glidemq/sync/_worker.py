"""The synchronous Worker: plain-function processors in a thread pool or a process pool."""

from __future__ import annotations

import asyncio
import inspect
import logging
import pickle
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import FrameType, TracebackType
from typing import Any

from .. import _validate as check
from ..connection import Connection
from ..errors import InvalidArgumentError
from ..job import Job as AsyncJob
from ..worker import Worker as AsyncWorker
from ._job import Job, wrap_jobs
from ._portal import portal, result_of
from ._processes import JobSnapshot, ProcessSlots

log = logging.getLogger("glidemq")

DEFAULT_THREADS = 8
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Worker:
    """Runs a plain-function processor over the jobs of one queue.

    Threads (default): ``processor(job)`` gets a sync ``Job`` and runs in a pool of
    ``concurrency`` threads. ``processes=N``: it runs in N child processes and gets a
    picklable ``JobSnapshot``; it must be a module-level function. Leases, heartbeats and
    stall checks stay in this process either way. The other keyword arguments are those of
    ``glidemq.Worker`` (lock_duration, stalled_interval, max_stalled_count, ...).
    """

    def __init__(
        self,
        queue_name: str,
        processor: Callable[[Any], Any],
        *,
        concurrency: int | None = None,
        processes: int | None = None,
        start_method: str | None = None,
        connection: Connection | str | None = None,
        prefix: str = "glidemq",
        **options: Any,
    ) -> None:
        if not callable(processor):
            raise InvalidArgumentError("processor must be callable")
        if inspect.iscoroutinefunction(processor):
            raise InvalidArgumentError("processor is an async def function: run it with glidemq.Worker")
        if processes is not None:
            check.integer(processes, "processes", minimum=1)
            try:
                pickle.dumps(processor)
            except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
                raise InvalidArgumentError(
                    f"with processes, the processor must be a module-level function (it is pickled): {exc}"
                ) from None
        if concurrency is None:
            concurrency = processes or DEFAULT_THREADS
        check.integer(concurrency, "concurrency", minimum=1)
        self.processes = processes
        self._processor = processor
        self._slots = ProcessSlots(processes, processor, start_method) if processes is not None else None
        self._threads: ThreadPoolExecutor | None = None
        self._portal = portal()
        self._worker: AsyncWorker = self._portal.run(_build(
            queue_name, self._process, concurrency=concurrency, connection=connection, prefix=prefix, **options
        ))
        self.name = self._worker.name
        self.concurrency = self._worker.concurrency
        self._running: Future[None] | None = None
        self._signals = 0

    def __repr__(self) -> str:
        mode = f"processes={self.processes}" if self.processes else f"threads={self.concurrency}"
        return f"<sync Worker {self.name!r} {mode}>"

    @property
    def async_worker(self) -> AsyncWorker:
        """The ``glidemq.Worker`` that fetches, leases and completes the jobs."""
        return self._worker

    @property
    def running(self) -> bool:
        """True between run() starting and its graceful end."""
        return self._worker.running

    async def _process(self, job: AsyncJob) -> Any:
        if self._slots is not None:
            return await self._slots.run(JobSnapshot.of(job))
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"glidemq-{self.name}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._threads, self._processor, Job(job, self._portal))

    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        """Registers ``callback`` for ``event`` (as ``glidemq.Worker.on``); without one, a decorator.

        Callbacks get sync jobs and run in a thread, so they may call the sync API.
        """
        if callback is None:
            def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
                self.on(event, fn)
                return fn
            return decorator
        if not callable(callback):
            raise InvalidArgumentError("callback must be callable")

        def in_thread(*args: Any) -> asyncio.Future[Any]:
            converted = [wrap_jobs(arg, self._portal) for arg in args]
            return asyncio.get_running_loop().run_in_executor(None, lambda: callback(*converted))

        self._worker.on(event, in_thread)
        return callback

    def start(self) -> None:
        """Starts processing in the background (on glidemq's loop); ``close()`` stops it."""
        if self._running is None or self._running.done():
            self._running = self._portal.submit(self._run())

    async def _run(self) -> None:
        if self._slots is not None:
            self._slots.start()
        try:
            await self._worker.run()
        finally:
            self._shutdown_pools()

    def _shutdown_pools(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        if self._slots is not None:
            self._slots.shutdown()

    def run(self) -> None:
        """Processes jobs until ``close()`` (from another thread) or SIGTERM/SIGINT.

        On the main thread, the first SIGTERM/SIGINT closes gracefully (active jobs finish),
        a second one cancels active jobs, which go back to waiting.
        """
        on_main = threading.current_thread() is threading.main_thread()
        previous = {s: signal.signal(s, self._on_signal) for s in SHUTDOWN_SIGNALS} if on_main else {}
        try:
            self.start()
            assert self._running is not None
            result_of(self._running)  # wakes now and then, so a signal is handled (see result_of)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            log.info("%s: finishing active jobs, then exiting (send it again to force)", name)
            self._portal.submit(self._worker.close())
        else:
            log.warning("%s again: cancelling active jobs; they go back to waiting", name)
            self._portal.submit(self._worker.close(timeout=0))

    @property
    def forced(self) -> bool:
        """True when a second signal cancelled active jobs."""
        return self._signals > 1

    def close(self, timeout: float | None = None) -> None:
        """Stops fetching and lets active jobs finish; blocks until the worker has stopped.

        Jobs still running after ``timeout`` seconds are cancelled and put back to waiting
        without using an attempt.
        """
        self._portal.run(self._worker.close(timeout=timeout))
        if self._running is not None:
            self._running.result()
        self._shutdown_pools()

    def pause(self) -> None:
        """Stops this worker from starting new jobs; active ones finish."""
        self._portal.run(self._worker.pause())

    def resume(self) -> None:
        """Lets this worker start jobs again."""
        self._portal.run(self._worker.resume())

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def _build(queue_name: str, processor: Callable[[AsyncJob], Any], **options: Any) -> AsyncWorker:
    return AsyncWorker(queue_name, processor, **options)  # created on the loop that will run it
