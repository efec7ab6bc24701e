"""Worker: runs a processor over the jobs of one queue."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from time import perf_counter
from types import TracebackType
from typing import Any

from . import _tracing as tracing
from . import _validate as check
from ._codec import decode_active, encode_finished, pack
from ._context import QueueContext
from ._dead_letters import deliver
from ._flow_outbox import OutboxPump
from ._heartbeat import Heartbeat
from ._logging import get_logger, job_extra
from ._observe import WorkerObserver
from ._pickup import Pickup, Wakeup, new_claim
from ._prefetch import AutoPrefetch
from ._scheduler_keeper import SchedulerKeeper
from ._worker_events import EVENTS, EventEmitter
from .connection import Connection
from .errors import GlideMQError, InvalidArgumentError, RateLimitError, SerializationError, UnrecoverableError
from .job import Job
from .options import RateLimit, retry_delay_ms
from .queue import Queue
from .registry import Registration, new_worker_id, registry_base

log = get_logger("worker")

Processor = Callable[[Job], Awaitable[Any] | Any]
MAX_BLOCK = 5.0
MIN_BLOCK = 0.01
ERROR_PAUSE_MIN, ERROR_PAUSE_MAX = 0.1, 5.0
DEAD_LETTER_OVERHEAD = 64 * 1024  # room for the envelope around a dead job's data
# Jobs finished and fetched per take call at most: a worker of high concurrency still makes
# short server calls (a call blocks the server while it runs).
MAX_TAKE = 1000
STATUS_STALE, STATUS_COMPLETED, STATUS_FAILED, STATUS_RETRYING, STATUS_RELEASED = range(5)

__all__ = ["EVENTS", "Processor", "Worker"]


PACKED_NONE = pack(None)


class Worker:
    """Processes jobs of one queue with up to ``concurrency`` at a time.

    ``async def`` processors are awaited; plain ``def`` processors run in a thread pool.
    ``async with Worker(...)`` runs it in the background and closes it gracefully on exit.
    ``prefetch=N`` lets the worker hold up to N jobs beyond ``concurrency`` (leased, started
    as processors free up): fewer round trips for short jobs, at the cost of those jobs
    waiting here while another worker may be idle. By default (``None``) the worker holds
    as many as its processors finish during one call to the server: none while jobs take
    longer than a call, up to ``4 * concurrency`` for very short jobs. ``prefetch=0`` never
    holds more jobs than ``concurrency``.
    ``id`` names the worker in ``Queue.get_workers()`` and in its log records.
    ``metrics=True`` (or a prometheus_client ``CollectorRegistry``) records job durations and
    pickup latencies; ``metrics_port=N`` also serves them, with the queue's figures, on
    ``http://0.0.0.0:N/metrics`` while the worker runs (see ``glidemq.metrics``).
    """

    def __init__(
        self,
        queue_name: str,
        processor: Processor,
        *,
        connection: Connection | str | None = None,
        prefix: str = "glidemq",
        concurrency: int = 1,
        lock_duration: float | timedelta = 30,
        stalled_interval: float | timedelta = 30,
        max_stalled_count: int = 1,
        max_payload_size: int = check.DEFAULT_MAX_PAYLOAD,
        prefetch: int | None = None,
        limiter: RateLimit | None = None,
        dead_letter_queue: str | None = None,
        metrics: Any = False,
        metrics_port: int | None = None,
    ) -> None:
        if not callable(processor):
            raise InvalidArgumentError("processor must be callable")
        self._ctx = QueueContext(
            queue_name, connection=connection, prefix=prefix, max_payload_size=max_payload_size,
            client_name="glidemq-worker",
        )
        self.name = self._ctx.name
        self.concurrency = check.integer(concurrency, "concurrency", minimum=1)
        self.lock_duration = check.seconds(lock_duration, "lock_duration", positive=True)
        self.stalled_interval = check.seconds(stalled_interval, "stalled_interval", positive=True)
        self.max_stalled_count = check.integer(max_stalled_count, "max_stalled_count", minimum=0)
        self.prefetch = None if prefetch is None else check.integer(prefetch, "prefetch", minimum=0)
        self._auto = AutoPrefetch(self.concurrency) if prefetch is None else None
        if limiter is not None and not isinstance(limiter, RateLimit):
            raise InvalidArgumentError("limiter must be a glidemq.RateLimit")
        self.limiter = limiter
        self.dead_letter_queue = None if dead_letter_queue is None else check.queue_name(dead_letter_queue)
        if self.dead_letter_queue == self.name:
            raise InvalidArgumentError("dead_letter_queue must be another queue than the worker's own")
        self._take_options = encode_take_options(self.dead_letter_queue is not None, limiter)
        self._dead_letters: Queue | None = None
        self._dead_letter_due: asyncio.Event | None = None
        self._limit_wait = 0.0  # seconds the queue's rate limit holds new jobs back
        self.id = new_worker_id()
        self._observer = WorkerObserver.create(self.name, metrics, metrics_port)
        self._processor = processor
        self._is_async = inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(
            type(processor).__call__
        )
        self._executor: ThreadPoolExecutor | None = None
        self._events = EventEmitter()
        self._schedulers = SchedulerKeeper(self._ctx, lambda exc: self._events.emit_soon("error", exc))
        self._lock_ms = str(max(1, round(self.lock_duration * 1000)))
        self._pickup = Pickup(self._ctx, self._lock_ms, self._take_options)
        self.max_in_flight = 2
        self._active: dict[str, Job] = {}  # every job this worker holds a lease on
        self._ready: deque[Job] = deque()  # prefetched, not started yet
        self._tasks: dict[str, asyncio.Task[None]] = {}  # running processors
        self._leases: dict[str, str] = {}
        self._traces: dict[str, bytes] = {}  # trace contexts of held jobs that carry one
        self._finished: list[tuple[Any, ...]] = []
        self._outcomes: list[tuple[Job, Any, list[str]]] = []  # (job, result or error, stack)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._stopped: asyncio.Event | None = None
        self._outbox: OutboxPump | None = None  # delivers children's outcomes to their parents
        self._last_take: asyncio.Future[None] | None = None  # set once its reply is taken in
        self._running = self._closing = self._paused = self._forced = self._drained = False

    def __repr__(self) -> str:
        return f"<Worker {self.name!r} concurrency={self.concurrency} on {self._ctx.connection.url}>"

    # events -----------------------------------------------------------------------------
    def on(self, event: str, callback: Callable[..., Any] | None = None) -> Any:
        """Registers ``callback`` for ``event``; without a callback, works as a decorator."""
        return self._events.on(event, callback)

    # lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> Worker:
        self._run_task = asyncio.create_task(self.run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def run(self) -> None:
        """Processes jobs until close(); returns after a graceful shutdown."""
        if self._running:
            raise GlideMQError("this worker is already running")
        if self._closing:
            raise GlideMQError("this worker is closed")
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        if not self._is_async:
            self._executor = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"glidemq-{self.name}")
        heartbeat = Heartbeat(
            self._ctx.connection, self._ctx.base, leases=self._leases.copy,
            lock_duration=self.lock_duration, stalled_interval=self.stalled_interval,
            max_stalled_count=self.max_stalled_count, on_stalled=self._stalled_from_thread,
            on_error=self._error_from_thread, dead_letters=self.dead_letter_queue is not None,
            registration=Registration(
                self.id, registry_base(self._ctx.prefix, self.name), concurrency=self.concurrency,
                lock_duration=self.lock_duration, active_jobs=self._active.__len__,
            ),
        )
        heartbeat.start()
        dead_letter_task = self._start_dead_letters()
        self._outbox = OutboxPump(
            self._ctx, interval=self.stalled_interval, claim_ms=int(self._lock_ms),
            on_error=lambda exc: self._events.emit("error", exc),
        )
        self._outbox.start()
        try:
            if self._observer is not None:
                await self._observer.start(self._ctx.connection, self._ctx.prefix, self._events)
            log.info("worker %s started on queue %s, concurrency %d", self.id, self.name, self.concurrency,
                     extra={"worker_id": self.id, "queue": self.name})
            while True:
                try:
                    await self._loop_forever()
                    break
                except Exception as exc:
                    log.exception("glidemq worker loop failed; restarting it")
                    await self._events.emit("error", exc)
                    await self._sleep_or_wake(ERROR_PAUSE_MAX)
        finally:
            await self._outbox.stop()
            heartbeat.stop()
            await asyncio.to_thread(heartbeat.join)
            await self._stop_dead_letters(dead_letter_task)
            await self._schedulers.close()
            if self._observer is not None:
                await self._observer.stop()
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
            await self._pickup.close()
            await self._ctx.close()
            self._running = False
            log.info("worker %s of queue %s closed", self.id, self.name,
                     extra={"worker_id": self.id, "queue": self.name})
            self._stopped.set()
            await self._events.emit("closed")
            await self._events.wait_pending()

    async def close(self, *, timeout: float | None = None) -> None:
        """Stops fetching and lets active jobs finish.

        Jobs still running after ``timeout`` seconds are cancelled and put back to
        waiting without using an attempt.
        """
        if timeout is not None:
            check.seconds(timeout, "timeout")
        self._closing = True
        if not self._running:
            if self._run_task is not None:
                await asyncio.gather(self._run_task, return_exceptions=True)
            else:
                await self._pickup.close()
                await self._ctx.close()
            return
        assert self._wake is not None and self._stopped is not None
        self._wake.set()
        await self._pickup.close()  # ends a wait under way
        try:
            await asyncio.wait_for(asyncio.shield(self._stopped.wait()), timeout)
        except asyncio.TimeoutError:
            self._forced = True
            for task in list(self._tasks.values()):
                task.cancel()
            await self._stopped.wait()
        if self._run_task is not None:
            await asyncio.gather(self._run_task, return_exceptions=True)

    async def pause(self) -> None:
        """Stops this worker from starting new jobs; active ones finish."""
        self._paused = True
        self._release_ready()
        if self._running:
            await self._pickup.interrupt()  # a wait under way must not take jobs any more

    async def resume(self) -> None:
        """Lets this worker start jobs again."""
        self._paused = False
        if self._wake is not None:
            self._wake.set()

    @property
    def running(self) -> bool:
        """True between run() starting and its graceful end."""
        return self._running

    # the loop ---------------------------------------------------------------------------
    async def _loop_forever(self) -> None:
        """Keeps up to ``max_in_flight`` ``take`` calls going, each finishing the jobs done so
        far and fetching jobs for the free slots; waits on the marker when the queue is empty."""
        assert self._wake is not None
        takes: dict[asyncio.Task[tuple[int, int]], tuple[int, list[Any], list[Any]]] = {}
        block: asyncio.Task[Wakeup] | None = None  # waiting: for the marker, or out a rate limit
        block_want = 0  # slots the take behind the marker wait asks for
        wake = self._wake

        def poke(_: asyncio.Future[Any]) -> None:  # a call or a wait ended: the loop looks again
            wake.set()

        reserved = finishing = 0
        empty = False
        backlog = False  # the last call got every job it asked for

        async def fetched_now(fetched: int, want: int, fetching: bool) -> None:
            nonlocal backlog, empty
            if want:
                backlog = fetched == want
            if fetched < want:
                empty = True
                if not self._active and not self._drained and fetching:
                    self._drained = True
                    await self._events.emit("drained")
            elif fetched:
                empty = False

        next_delay = -1
        pause = ERROR_PAUSE_MIN
        auto, prefetch = self._auto, self.prefetch or 0
        while not (self._closing and not self._active and not self._finished and not takes and block is None):
            fetching = not (self._closing or self._paused)
            if self._closing and block is not None and self._limit_wait > 0:
                block.cancel()  # no need to wait out the rate limit
            if not fetching:
                self._release_ready()
            elif auto is not None and len(self._ready) > 2 * auto.extra:
                # jobs turned longer than a call: what is held beyond the new size goes back
                # for idle workers (with the next call), instead of waiting here
                self._release_ready(keep=auto.extra)
            # Calls run in order on one connection: jobs a call under way finishes are free
            # again by the time a later call activates jobs.
            capacity = self.concurrency + (auto.extra if auto is not None else prefetch)
            free = capacity - len(self._active) - reserved + len(self._finished) + finishing if fetching else 0
            # One call at a time while prefetched jobs keep the processors busy, so finished
            # jobs pile up into bigger batches; a second call only when processors would idle.
            starving = len(self._tasks) + len(self._ready) < self.concurrency
            if (not takes or (len(takes) < self.max_in_flight and starving)) and (
                self._finished or (free > 0 and not empty)
            ):
                # When the queue looked empty, still ask once the last active jobs end, so
                # "drained" fires now rather than after the next marker timeout.
                want = max(free, 0) if not empty or len(self._finished) + finishing >= len(self._active) else 0
                want = min(want, MAX_TAKE)
                # A backlog, idle processors and no call under way: send half now and half in a
                # second call, so the worker runs one half's jobs while the server serves the other.
                half = backlog and not takes and starving and not empty and want > 1 and self.max_in_flight > 1
                cut = min((len(self._finished) + 1) // 2 if half else len(self._finished), MAX_TAKE)
                finished, self._finished = self._finished[:cut], self._finished[cut:]
                outcomes, self._outcomes = self._outcomes[:cut], self._outcomes[cut:]
                if half:
                    want = (want + 1) // 2
                task = asyncio.ensure_future(self._take(finished, outcomes, want))
                task.add_done_callback(poke)
                takes[task] = (want, finished, outcomes)
                reserved += want
                finishing += len(finished)
                continue
            # Cleared before looking at what ended: whatever ends from here on sets it again.
            wake.clear()
            # Waits only with a processor idle: a take that fetches while a wait is under way
            # (on the other connection) could be run by the server either side of the wait's,
            # and a worker of concurrency 1 must start jobs in the order the queue gave them.
            if empty and free > 0 and not takes and block is None and len(self._tasks) < self.concurrency:
                if self._limit_wait > 0:
                    block_want = 0
                    block = asyncio.ensure_future(self._hold_back(self._limit_wait))
                else:
                    timeout = MAX_BLOCK if next_delay < 0 else min(MAX_BLOCK, max(MIN_BLOCK, next_delay / 1000))
                    block_want = min(free, MAX_TAKE)
                    block = asyncio.ensure_future(self._wait(timeout, block_want))
                reserved += block_want
                block.add_done_callback(poke)
            if not any(t.done() for t in takes) and not (block is not None and block.done()):
                await wake.wait()
            for task in [t for t in takes if t.done()]:
                want, finished, outcomes = takes.pop(task)
                reserved -= want
                finishing -= len(finished)
                try:
                    fetched, next_delay = task.result()
                except Exception as exc:  # noqa: BLE001 - run() never raises: report, back off, go on
                    self._finished[:0], self._outcomes[:0] = finished, outcomes
                    await self._events.emit("error", exc)
                    await self._sleep_or_wake(pause)
                    pause = min(pause * 2, ERROR_PAUSE_MAX)
                    continue
                pause = ERROR_PAUSE_MIN
                await fetched_now(fetched, want, fetching)
            if block is not None and block.done():
                wakeup = Wakeup() if block.cancelled() else block.result()
                block = None
                reserved -= block_want
                fetched = wakeup.fetched
                if fetched < 0:  # no take ran behind the wait: take the usual way
                    empty = False
                else:
                    next_delay = wakeup.next_delay
                    await fetched_now(fetched, block_want, fetching)
                if wakeup.error is not None and not self._closing:
                    await self._events.emit("error", wakeup.error)
                    await self._sleep_or_wake(pause)
                    pause = min(pause * 2, ERROR_PAUSE_MAX)

    async def _wait(self, timeout: float, want: int) -> Wakeup:
        """Waits for the marker and takes in the jobs of the take behind it at once: their
        processors start before the loop looks again."""
        wakeup = await self._pickup.wait(timeout, want)
        wakeup.fetched = await self._took_after_wait(wakeup)
        return wakeup

    async def _took_after_wait(self, wakeup: Wakeup) -> int:
        """Takes in the jobs the take behind a wait brought; hands them back when its reply was
        lost or unreadable. Returns how many it brought (-1: it did not run, or was lost)."""
        if wakeup.reply is not None:
            try:
                fetched, wakeup.next_delay = self._took(wakeup.reply, [])
                return fetched
            except Exception as exc:  # noqa: BLE001 - leased all the same: hand them back below
                wakeup.error = GlideMQError(f"reading the jobs taken failed: {exc}")
                wakeup.lost = True
        if wakeup.lost and wakeup.claim is not None:
            try:
                released = await self._pickup.release(wakeup.claim)
            except GlideMQError as exc:  # the stall check recovers them once their lease runs out
                await self._events.emit("error", exc)
            else:
                if released:
                    log.info("handed back %d job(s) of %s taken by a wait whose reply was lost", len(released),
                             self.name)
        return -1

    async def _hold_back(self, seconds: float) -> Wakeup:
        """Waits out the rate limit's window (close() ends the loop without waiting for it)."""
        await asyncio.sleep(seconds)
        self._limit_wait = 0.0
        return Wakeup()

    async def _sleep_or_wake(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _take(
        self, finished: list[tuple[Any, ...]], outcomes: list[tuple[Job, Any, list[str]]], free: int
    ) -> tuple[int, int]:
        args = [self._lock_ms, str(free), encode_finished(finished), self._take_options, new_claim()]
        # The server runs a connection's calls in order, but valkey-glide may hand two replies
        # over in the other order: each reply is taken in after the one of the take before,
        # so jobs start in the order they were activated.
        before, mine = self._last_take, asyncio.get_running_loop().create_future()
        self._last_take = mine
        try:
            sent = perf_counter()
            reply = await self._ctx.client.fcall("take", self._ctx.base, args)
            if self._auto is not None:
                self._auto.call_took(perf_counter() - sent)
            if before is not None and not before.done():
                await asyncio.shield(before)
            return self._took(reply, outcomes)
        finally:
            if not mine.done():
                mine.set_result(None)

    def _took(self, reply: Any, outcomes: list[tuple[Job, Any, list[str]]]) -> tuple[int, int]:
        """Reports the outcomes a take finished and holds the jobs it fetched; returns how many
        it fetched and the ms until the next delayed job is due."""
        now_ms, next_delay, statuses, records, limited, notified = reply
        if limited < 0:  # the queue is paused: jobs held but not started go back
            self._release_ready()
            limited = 0
        self._limit_wait = limited / 1000
        if notified and self._outbox is not None:
            self._outbox.kick()
        debug = log.isEnabledFor(logging.DEBUG)
        for (job, value, stack), status in zip(outcomes, statuses, strict=True):
            self._active.pop(job.id, None)
            self._leases.pop(job.id, None)
            self._report(job, status, value, stack, now_ms, debug)
        if STATUS_FAILED in statuses and self._dead_letter_due is not None:
            self._dead_letter_due.set()
        if self._observer is not None and outcomes:
            self._observer.finished(outcomes, statuses, now_ms)
        jobs = []
        for record in decode_active(records, now_ms):
            job = Job.from_active(self._ctx, record)
            jobs.append(job)
            self._active[job.id] = job
            self._leases[job.id] = job._token
            self._ready.append(job)
            if record[15] is not None:  # the trace context it was added in
                self._traces[job.id] = record[15]
        self._schedulers.seen([job.id for job in jobs])
        self._fill()
        if jobs:
            self._drained = False
        return len(jobs), next_delay

    def _report(self, job: Job, status: int, value: Any, stack: list[str], now_ms: int, debug: bool) -> None:
        if status == STATUS_STALE:
            log.warning("job %s of %s finished after its lock was lost; result dropped", job.id, self.name,
                        extra=job_extra(job))
            return
        if status != STATUS_RELEASED:
            job.attempts_made += 1
        if status == STATUS_COMPLETED:
            job.return_value, job.finished_on = value, now_ms / 1000.0
            if debug:
                log.debug("job %s (%s) completed", job.id, job.name, extra=job_extra(job))
            self._events.emit_soon("completed", job, value)
        elif status in (STATUS_FAILED, STATUS_RETRYING):
            job.failed_reason = _reason(value)
            job.stacktrace = stack
            if status == STATUS_FAILED:
                job.finished_on = now_ms / 1000.0
            log.warning(
                "job %s (%s) failed, attempt %d of %d%s: %s", job.id, job.name, job.attempts_made, job.attempts,
                "" if status == STATUS_FAILED else ", will retry", job.failed_reason,
                extra=job_extra(job, attempts_made=job.attempts_made, final=status == STATUS_FAILED),
            )
            self._events.emit_soon("failed", job, value)

    # running one job --------------------------------------------------------------------
    def _fill(self) -> None:
        """Starts fetched jobs while processors are free (and the worker may start jobs).

        A closing worker still starts the jobs a fetch that was under way brought for its free
        processors: they are active on the server already. The loop hands back the rest.
        """
        assert self._loop is not None
        while self._ready and len(self._tasks) < self.concurrency and not (self._paused or self._forced):
            job = self._ready.popleft()
            job._on_progress = self._progress
            self._tasks[job.id] = self._loop.create_task(self._execute(job))

    def _release_ready(self, keep: int = 0) -> None:
        """Hands prefetched jobs but the first ``keep`` back to the queue (no attempt used),
        last first: each goes back to the front, so they keep their order there."""
        while len(self._ready) > keep:
            job = self._ready.pop()
            self._done(job, "r", b"", [], 0, job.attempts_made, None)

    async def _execute(self, job: Job) -> None:
        self._events.emit_soon("active", job)
        started = perf_counter()
        try:
            if job.timeout:
                try:
                    result = await asyncio.wait_for(self._invoke(job), job.timeout)
                except asyncio.TimeoutError:
                    raise _JobTimeout(f"job timed out after {job.timeout:g}s") from None
            elif self._is_async and not self._traces:
                result = await self._processor(job)  # the common case, without two more frames
            else:
                result = await self._invoke(job)
            if result is None:
                payload = PACKED_NONE
            else:
                payload = check.payload(pack(result), self._ctx.max_payload_size, "return value")
        except asyncio.CancelledError:
            self._done(job, "r", b"", [], 0, job.attempts_made, None)
            if not self._forced:
                raise
        except RateLimitError as exc:
            self._done(job, "r", b"", [], round(exc.delay * 1000), job.attempts_made, None)
        except Exception as exc:  # noqa: BLE001 - any processor failure fails the job
            attempts_made = job.attempts_made + 1
            final = attempts_made >= job.attempts or isinstance(exc, (UnrecoverableError, SerializationError))
            retry = -1 if final else retry_delay_ms(job.backoff, attempts_made)
            self._done(job, "f", _reason(exc).encode(), traceback.format_exception(exc), retry, attempts_made, exc)
        else:
            self._done(job, "c", payload, [], 0, job.attempts_made + 1, result)
        if self._auto is not None:
            self._auto.job_ran(perf_counter() - started)

    async def _invoke(self, job: Job) -> Any:
        carrier = self._traces.pop(job.id, None) if self._traces else None
        if carrier is not None and tracing.enabled():
            return await tracing.traced_process(self.name, job, carrier, self._call_processor)
        return await self._call_processor(job)

    async def _call_processor(self, job: Job) -> Any:
        if self._is_async:
            return await self._processor(job)
        assert self._loop is not None and self._executor is not None
        # in the caller's context (as asyncio.to_thread does): context variables, such as the
        # current trace span, are visible to plain-def processors too
        run = contextvars.copy_context().run
        result = await self._loop.run_in_executor(self._executor, run, self._processor, job)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _done(
        self, job: Job, kind: str, payload: bytes, stack: list[str], retry: int, attempts_made: int, value: Any
    ) -> None:
        keep = job._keep_complete if kind == "c" else job._keep_fail
        if self._traces:
            self._traces.pop(job.id, None)
        if kind == "c":  # a completion needs no more than these
            entry: tuple[Any, ...] = (job.id, job._token, kind, payload, str(attempts_made), keep)
        else:
            extra = pack(stack) if stack else b""
            entry = (job.id, job._token, kind, payload, str(attempts_made), keep, extra, retry, job.priority)
        self._finished.append(entry)
        if self._tasks.pop(job.id, None) is not None and self._ready:
            self._fill()
        self._outcomes.append((job, value, stack))
        assert self._wake is not None
        self._wake.set()

    def _progress(self, job: Job, value: Any) -> None:
        self._events.emit_soon("progress", job, value)

    # from the heartbeat thread ----------------------------------------------------------
    def _stalled_from_thread(self, recovered: list[str], failed: list[str]) -> None:
        assert self._loop is not None
        if failed and self._dead_letter_due is not None:
            self._loop.call_soon_threadsafe(self._dead_letter_due.set)
        for job_id in recovered + failed:
            log.warning("job %s of %s stalled (its worker stopped renewing the lock); %s", job_id, self.name,
                        "failed for good" if job_id in failed else "back to waiting",
                        extra={"job_id": job_id, "queue": self.name})
            self._loop.call_soon_threadsafe(self._events.emit_soon, "stalled", job_id)
        if failed and self._outbox is not None:
            self._loop.call_soon_threadsafe(self._outbox.kick)
        if failed and self._events.has("failed"):
            asyncio.run_coroutine_threadsafe(self._report_stall_failures(failed), self._loop)

    async def _report_stall_failures(self, job_ids: list[str]) -> None:
        """Emits ``failed`` for jobs that the stall check failed for good."""
        for job_id in job_ids:
            try:
                (flat,) = await self._ctx.call("jobs", [job_id])
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                await self._events.emit("error", exc)
                continue
            job = Job.from_hash(self._ctx, job_id, flat) if flat else Job(self._ctx, job_id, "")
            reason = job.failed_reason or "job stalled more than allowable limit"
            job.failed_reason = reason
            await self._events.emit("failed", job, GlideMQError(reason))

    # dead letters -----------------------------------------------------------------------
    def _start_dead_letters(self) -> asyncio.Task[None] | None:
        if self.dead_letter_queue is None:
            return None
        self._dead_letters = Queue(
            self.dead_letter_queue, connection=self._ctx.connection, prefix=self._ctx.prefix,
            max_payload_size=self._ctx.max_payload_size + DEAD_LETTER_OVERHEAD,
        )
        self._dead_letter_due = asyncio.Event()
        self._dead_letter_due.set()  # entries a worker that died left behind
        return asyncio.create_task(self._dead_letter_loop())

    async def _dead_letter_loop(self) -> None:
        """Copies final failures to the dead-letter queue when they happen, and every
        stalled_interval (entries a failed copy or another worker's crash left behind)."""
        assert self._dead_letter_due is not None
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dead_letter_due.wait(), self.stalled_interval)
            self._dead_letter_due.clear()
            await self._deliver_dead_letters()

    async def _deliver_dead_letters(self) -> None:
        assert self._dead_letters is not None
        try:
            await deliver(self._ctx, self._dead_letters)
        except Exception as exc:  # noqa: BLE001 - reported; the entries stay for the next round
            await self._events.emit("error", exc)

    async def _stop_dead_letters(self, task: asyncio.Task[None] | None) -> None:
        if task is None or self._dead_letters is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await self._deliver_dead_letters()
        await self._dead_letters.close()

    def _error_from_thread(self, exc: BaseException) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._events.emit_soon, "error", exc)


def encode_take_options(dead_letters: bool, limiter: RateLimit | None) -> bytes:
    """The worker's fixed options for ``take``: dead letters on/off and its own rate limit."""
    limit = ["", ""] if limiter is None else [str(limiter.max), str(limiter.duration_ms)]
    return pack(["1" if dead_letters else "0", *limit])


class _JobTimeout(Exception):
    """A job ran longer than its timeout."""


def _reason(exc: Any) -> str:
    if not isinstance(exc, BaseException):
        return ""
    return str(exc) or type(exc).__name__

