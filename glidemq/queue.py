"""Queue: the producer side and the administration of one queue."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from . import _validate as check
from ._adds import AddBatcher, Written, chunks, write
from ._client import Client
from ._codec import encode_jobs
from ._context import QueueContext
from ._flow_outbox import remove_job
from ._tracing import traced_add
from .connection import Connection
from .durability import Durability, check_durability, durable_client, verdict, wait_for
from .errors import GlideMQError, InvalidArgumentError
from .job import Job
from .options import JOB_OPTIONS, Backoff, Dedup, RateLimit, encode_item, encode_job
from .registry import WorkerInfo, list_workers
from .schedulers import SchedulerInfo, list_schedulers, remove_scheduler, scheduler_args, upsert_scheduler

STATES = ("waiting", "active", "delayed", "completed", "failed", "waiting-children")
CLEANABLE = ("completed", "failed", "delayed", "waiting")
MAINTENANCE_CHUNK = 1000
class Queue:
    """A named queue on a Valkey server: add jobs, inspect and administer them.

    Usable as ``async with Queue("emails") as q:``; without it, the connection opens on
    first use and ``close()`` releases it.
    """

    def __init__(
        self,
        name: str,
        *,
        connection: Connection | str | None = None,
        prefix: str = "glidemq",
        max_payload_size: int = check.DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self._ctx = QueueContext(name, connection=connection, prefix=prefix, max_payload_size=max_payload_size)
        self._batcher = AddBatcher(self._ctx)
        self._durable: dict[float, Client] = {}  # by request timeout: durable adds' own clients
        self.name = self._ctx.name
        self.prefix = self._ctx.prefix

    def __repr__(self) -> str:
        return f"<Queue {self.name!r} on {self._ctx.connection.url}>"

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Releases the queue's connections."""
        durable, self._durable = self._durable, {}
        for client in durable.values():
            await client.close()
        await self._ctx.close()

    @traced_add
    async def add(
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
        deduplication: Dedup | None = None,
        durability: Durability | None = None,
    ) -> Job:
        """Adds one job. With ``job_id``, adding an existing id returns that job and writes nothing.

        ``deduplication``: see ``glidemq.Dedup``; a skipped add returns the existing job.

        ``durability``: wait until the write reached that many replicas and/or the append-only
        file; ``DurabilityError`` (with ``.achieved`` and ``.jobs``) when it did not in time.
        """
        check_durability(durability)
        options = {
            "job_id": job_id, "delay": delay, "priority": priority, "attempts": attempts, "backoff": backoff,
            "timeout": timeout, "lifo": lifo, "remove_on_complete": remove_on_complete,
            "remove_on_fail": remove_on_fail, "deduplication": deduplication,
        }
        encoded = encode_job(name, data, options, self._ctx.max_payload_size)
        if durability is not None:
            (job,) = await self._add_durable([encoded], [data], durability)
            return job
        (job,) = await self._jobs([encoded], [data], [await self._batcher.add(encoded)])
        return job

    async def add_and_wait(self, name: str, data: Any = None, *, timeout: float | timedelta, **job_options: Any) -> Any:
        """Adds a job and waits for its outcome: returns its return value.

        Raises JobFailedError if it failed, TimeoutError if it did not finish within
        ``timeout`` seconds (counted from the call; the job stays queued). Waits share the
        queue's one event listener: no connection per call.
        """
        seconds = check.seconds(timeout, "timeout", positive=True)
        unknown = set(job_options) - JOB_OPTIONS - {"durability"}
        if unknown:
            raise InvalidArgumentError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        deadline = time.monotonic() + seconds
        job = await self.add(name, data, **job_options)
        return await job.wait_until_finished(timeout=max(0.0, deadline - time.monotonic()))

    @traced_add
    async def add_bulk(
        self,
        jobs: Iterable[tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]],
        *,
        durability: Durability | None = None,
    ) -> list[Job]:
        """Adds many jobs in few server calls; every job is checked before anything is written.

        ``durability`` (for the whole call, not per job): as for ``add``, waited for once at the end.
        """
        check_durability(durability)
        encoded, datas = encode_jobs(jobs, self._ctx.max_payload_size, encode_item)
        if durability is not None:
            return await self._add_durable(encoded, datas, durability)
        # the next chunk is on its way while the reply to the previous one is turned into jobs
        out: list[Job] = []
        sent: list[tuple[asyncio.Future[list[Written]], int, int]] = []
        try:
            for start, end in chunks(encoded):
                sent.append((asyncio.ensure_future(write(self._ctx, encoded[start:end])), start, end))
                if len(sent) > 1:
                    out += await self._collect(encoded, datas, *sent.pop(0))
            while sent:
                out += await self._collect(encoded, datas, *sent.pop(0))
        finally:
            for future, _, _ in sent:  # after a failed chunk: wait for the one in flight
                with contextlib.suppress(Exception):
                    await future
        return out

    async def _collect(
        self, encoded: list[tuple[Any, ...]], datas: list[Any], future: asyncio.Future[list[Written]],
        start: int, end: int,
    ) -> list[Job]:
        return await self._jobs(encoded[start:end], datas[start:end], await future)

    async def _add_durable(self, encoded: list[tuple[Any, ...]], datas: list[Any], durability: Durability) -> list[Job]:
        # a client of its own: the write and its WAIT share one connection, and WAIT blocking
        # that connection does not hold up the queue's other calls
        client = durable_client(self._ctx.client, durability)
        client = self._durable.setdefault(client.connection.request_timeout, client)
        written: list[Written] = []
        for start, end in chunks(encoded):
            written += await write(self._ctx, encoded[start:end], client)
        achieved = await wait_for(client, self._ctx.base, durability)
        jobs = await self._jobs(encoded, datas, written)
        verdict(durability, achieved, jobs)
        return jobs

    async def _jobs(self, encoded: list[tuple[Any, ...]], datas: list[Any], written: list[Written]) -> list[Job]:
        jobs: list[Job] = []
        for i, fields in enumerate(encoded):
            job_id, created, now_ms = written[i]
            if not created:
                existing = await self.get_job(job_id)
                if existing is not None:
                    jobs.append(existing)
                    continue
            job = Job(self._ctx, job_id, fields[1], datas[i])
            job.timestamp = now_ms / 1000.0
            job.delay, job.priority, job.attempts = fields[3] / 1000.0, fields[4], fields[5]
            job.backoff, job.timeout = fields[6], (fields[7] / 1000.0 if fields[7] else None)
            jobs.append(job)
        return jobs

    async def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        if not isinstance(job_id, str) or not job_id:
            raise InvalidArgumentError("job_id must be a non-empty str")
        (flat,) = await self._ctx.call("jobs", [job_id])
        return Job.from_hash(self._ctx, job_id, flat) if flat else None

    async def get_jobs(self, states: str | Sequence[str], start: int = 0, end: int = -1) -> list[Job]:
        """Jobs in the given states, ranks start..end inclusive over the states in order.

        Waiting jobs come in run order, delayed by due time, completed/failed newest first.
        """
        names = [states] if isinstance(states, str) else list(states)
        for state in names:
            check.state(state, STATES)
        check.integer(start, "start", minimum=-(2**62))
        check.integer(end, "end", minimum=-(2**62))
        if len(names) == 1:
            reply = await self._ctx.call("get_ids", [names[0], start, end])
            selected = [i.decode() for i in reply]
        else:
            ids: list[str] = []
            for state in names:
                ids += [i.decode() for i in await self._ctx.call("get_ids", [state, 0, -1])]
            first = start if start >= 0 else max(len(ids) + start, 0)
            last = end if end >= 0 else len(ids) + end
            selected = ids[first : last + 1]
        if not selected:
            return []
        records = await self._ctx.call("jobs", selected)
        return [Job.from_hash(self._ctx, i, flat) for i, flat in zip(selected, records, strict=True) if flat]

    async def get_job_counts(self) -> dict[str, int]:
        """Jobs per state: waiting, active, delayed, completed, failed, waiting-children, paused."""
        waiting, active, delayed, completed, failed, paused, waiting_children = await self._ctx.call("counts", [])
        return {
            "waiting": waiting, "active": active, "delayed": delayed, "completed": completed,
            "failed": failed, "waiting-children": waiting_children, "paused": waiting if paused else 0,
        }

    async def count(self) -> int:
        """Jobs not yet started: waiting plus delayed."""
        counts = await self.get_job_counts()
        return counts["waiting"] + counts["delayed"]

    async def pause(self) -> None:
        """Stops every worker of the queue from starting new jobs."""
        await self._ctx.call("set_paused", ["1"])

    async def resume(self) -> None:
        """Lets workers start jobs again."""
        await self._ctx.call("set_paused", ["0"])

    async def is_paused(self) -> bool:
        """True while the queue is paused."""
        return bool((await self._ctx.call("counts", []))[5])

    async def drain(self, *, delayed: bool = False) -> int:
        """Removes waiting (and, with ``delayed``, delayed) jobs; returns how many."""
        total = 0
        while True:
            removed = int(await self._ctx.call("drain", ["1" if delayed else "0", MAINTENANCE_CHUNK]))
            total += removed
            if removed < MAINTENANCE_CHUNK:
                return total

    async def clean(self, grace: float | timedelta, limit: int = 1000, state: str = "completed") -> list[str]:
        """Removes up to ``limit`` jobs of ``state`` older than ``grace`` seconds; returns their ids."""
        grace_ms = round(check.seconds(grace, "grace") * 1000)
        check.integer(limit, "limit", minimum=0)
        check.state(state, CLEANABLE)
        now_ms = await self._server_ms()
        removed: list[str] = []
        cursor = 0
        while cursor >= 0 and len(removed) < limit:
            reply = await self._ctx.call("clean", [state, now_ms - grace_ms, limit - len(removed), cursor])
            cursor = reply[0]
            removed += [i.decode() for i in reply[1:]]
        return removed

    async def retry_jobs(self, state: str = "failed", count: int | None = None) -> int:
        """Moves failed (or completed) jobs back to waiting; returns how many moved."""
        check.state(state, ("failed", "completed"))
        if count is not None:
            check.integer(count, "count", minimum=0)
        moved = 0
        while count is None or moved < count:
            chunk = MAINTENANCE_CHUNK if count is None else min(MAINTENANCE_CHUNK, count - moved)
            n = await self._ctx.call("retry_jobs", [state, chunk])
            moved += n
            if n < chunk:
                break
        return moved

    async def remove(self, job_id: str) -> bool:
        """Deletes a job that is not active; True if it was removed."""
        check.name(job_id, "job_id")
        return await remove_job(self._ctx, job_id)

    async def obliterate(self, *, force: bool = False) -> None:
        """Deletes the queue and all its jobs; refuses while jobs are active unless ``force``."""
        while True:
            left = await self._ctx.call("obliterate", ["1" if force else "0", MAINTENANCE_CHUNK])
            if left == -1:
                raise GlideMQError(f"queue {self.name!r} has active jobs; use force=True to obliterate it")
            if left == 0:
                return

    async def set_rate_limit(self, max: int, duration: float | timedelta) -> None:
        """Lets at most ``max`` jobs start per ``duration`` seconds across all workers of the
        queue; it takes precedence over the workers' own ``limiter``."""
        limit = RateLimit(max, duration)
        await self._ctx.call("set_limits", ["rate", str(limit.max), str(limit.duration_ms)])

    async def remove_rate_limit(self) -> None:
        """Removes the queue's rate limit (workers' own limiters apply again)."""
        await self._ctx.call("set_limits", ["rate"])

    async def set_global_concurrency(self, n: int | None) -> None:
        """At most ``n`` jobs of this queue active at once across all workers; None removes it."""
        if n is None:
            await self._ctx.call("set_limits", ["concurrency"])
            return
        await self._ctx.call("set_limits", ["concurrency", str(check.integer(n, "global concurrency", minimum=1))])

    async def upsert_job_scheduler(
        self,
        scheduler_id: str,
        *,
        every: float | timedelta | None = None,
        cron: str | None = None,
        tz: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
        name: str,
        data: Any = None,
        **job_options: Any,
    ) -> None:
        """Creates or replaces the scheduler ``scheduler_id``: a job ``name`` with ``data`` (and the
        options of ``add``) every ``every`` seconds from ``start``, or on a 5-field ``cron`` in ``tz``.

        ``limit`` caps the number of jobs, ``end`` the last slot; naive datetimes are UTC. The
        replaced scheduler's pending job is dropped. See docs/schedulers.md.
        """
        args = scheduler_args(
            scheduler_id, every=every, cron=cron, tz=tz, start=start, end=end, limit=limit, name=name, data=data,
            job_options=job_options, max_payload=self._ctx.max_payload_size,
        )
        await upsert_scheduler(self._ctx, args)

    async def get_job_schedulers(self) -> list[SchedulerInfo]:
        """The queue's job schedulers, oldest first."""
        return await list_schedulers(self._ctx)

    async def remove_job_scheduler(self, scheduler_id: str) -> bool:
        """Deletes a job scheduler and its pending job; False if there was no such scheduler."""
        return await remove_scheduler(self._ctx, scheduler_id)

    async def get_workers(self) -> list[WorkerInfo]:
        """The live workers of this queue (oldest first); workers that died drop out by themselves."""
        return await list_workers(self._ctx)

    async def _server_ms(self) -> int:
        # the clock of the node that holds the queue: the one its functions compare with
        seconds, micros = await self._ctx.client.command(["TIME"], key=self._ctx.base)
        return int(seconds) * 1000 + int(micros) // 1000
