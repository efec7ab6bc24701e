"""Job: one unit of work and what is known about it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from . import _validate as check
from ._codec import hash_to_dict, pack, unpack
from ._context import QueueContext
from ._flow_outbox import remove_job
from ._flow_read import children_outcomes
from ._waiter import recent_outcome
from .errors import GlideMQError, InvalidArgumentError, JobFailedError

RECHECK_INTERVAL = 1.0
FINISHED = ("completed", "failed")


def _seconds(ms: bytes | int | None) -> float | None:
    if ms is None or ms == b"":
        return None
    return int(ms) / 1000.0


class Job:
    """A job of a queue. Read its fields; ``await`` its methods for fresh server state."""

    __slots__ = (
        "_ctx",
        "_keep_complete",
        "_keep_fail",
        "_on_progress",
        "_token",
        "attempts",
        "attempts_made",
        "backoff",
        "data",
        "delay",
        "failed_reason",
        "finished_on",
        "id",
        "name",
        "priority",
        "processed_on",
        "progress",
        "queue_name",
        "return_value",
        "stacktrace",
        "timeout",
        "timestamp",
    )

    def __init__(self, ctx: QueueContext, job_id: str, name: str, data: Any = None) -> None:
        self._ctx = ctx
        self._token = ""
        self._on_progress: Callable[[Job, Any], None] | None = None
        self._keep_complete = self._keep_fail = -1
        self.id = job_id
        self.name = name
        self.queue_name = ctx.name
        self.data = data
        self.attempts = 1
        self.attempts_made = 0
        self.priority = 0
        self.delay = 0.0
        self.progress: Any = None
        self.return_value: Any = None
        self.failed_reason: str | None = None
        self.stacktrace: list[str] = []
        self.timestamp = 0.0
        self.processed_on: float | None = None
        self.finished_on: float | None = None
        self.timeout: float | None = None
        self.backoff = ""

    @classmethod
    def from_hash(cls, ctx: QueueContext, job_id: str, flat: list[bytes]) -> Job:
        """Builds a job from the flat HGETALL reply of its hash."""
        h = hash_to_dict(flat)
        job = cls(ctx, job_id, h.get("n", b"").decode(), unpack(h.get("d")))
        job.attempts = int(h.get("at", 1))
        job.attempts_made = int(h.get("am", 0))
        job.priority = int(h.get("p", 0))
        job.delay = int(h.get("dl", 0)) / 1000.0
        job.progress = unpack(h.get("pg"))
        job.return_value = unpack(h.get("rv"))
        reason = h.get("fr")
        job.failed_reason = reason.decode() if reason else None
        job.stacktrace = unpack(h.get("st")) or []
        job.timestamp = int(h.get("ts", 0)) / 1000.0
        job.processed_on = _seconds(h.get("po"))
        job.finished_on = _seconds(h.get("fo"))
        timeout_ms = int(h.get("to") or 0)
        job.timeout = timeout_ms / 1000.0 if timeout_ms else None
        job.backoff = h.get("bo", b"").decode()
        return job

    @classmethod
    def from_active(cls, ctx: QueueContext, record: tuple[Any, ...]) -> Job:
        """Builds a job from one record decoded by ``decode_active``."""
        (job_id, token, processed_on, name, data, timestamp, attempts, attempts_made,
         priority, delay, backoff, timeout, progress, keep_complete, keep_fail, _) = record
        job = cls.__new__(cls)  # every field set once, here (a worker builds one per job)
        job._ctx = ctx
        job._token = token
        job._on_progress = None
        job._keep_complete, job._keep_fail = keep_complete, keep_fail
        job.id, job.name, job.queue_name, job.data = job_id, name, ctx.name, data
        job.attempts, job.attempts_made, job.priority = attempts, attempts_made, priority
        job.delay = delay / 1000.0
        job.progress = progress
        job.return_value = job.failed_reason = job.finished_on = None
        job.stacktrace = []
        job.timestamp = timestamp / 1000.0
        job.processed_on = processed_on / 1000.0
        job.timeout = timeout / 1000.0 if timeout else None
        job.backoff = backoff
        return job

    def __repr__(self) -> str:
        return f"<Job {self.queue_name}/{self.id} {self.name!r}>"

    async def get_state(self) -> str:
        """"waiting", "delayed", "active", "completed", "failed", "waiting-children" or "unknown"."""
        state = await self._ctx.call("state_of", [self.id])
        return str(state.decode() if isinstance(state, bytes) else state)

    async def update_progress(self, value: int | float | dict[str, Any]) -> None:
        """Stores the job's progress and publishes a ``progress`` event."""
        if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
            raise InvalidArgumentError("progress must be an int, a float or a dict")
        encoded = check.payload(pack(value), self._ctx.max_payload_size, "progress")
        stored = await self._ctx.call("progress", [self.id, self._token, encoded])
        if not stored:
            raise GlideMQError(f"job {self.id} no longer exists or its lock was lost")
        self.progress = value
        if self._on_progress is not None:
            self._on_progress(self, value)

    async def log(self, message: str) -> None:
        """Appends a line to the job's log."""
        if not isinstance(message, str):
            raise InvalidArgumentError("log message must be a str")
        check.payload(message.encode(), self._ctx.max_payload_size, "log message")
        if await self._ctx.call("log", [self.id, message]) == -1:
            raise GlideMQError(f"job {self.id} does not exist")

    async def get_logs(self) -> list[str]:
        """The job's log lines, oldest first."""
        key = self._ctx.key(f"l:{self.id}")
        lines = await self._ctx.client.command(["LRANGE", key, "0", "-1"], key=key)
        return [line.decode() for line in lines or []]

    async def remove(self) -> bool:
        """Deletes the job (not while it is active); False if it does not exist or is active."""
        return await remove_job(self._ctx, self.id)

    async def retry(self) -> None:
        """Moves a failed or completed job back to waiting, with its attempts reset."""
        result = await self._ctx.call("retry", [self.id])
        if result != 1:
            raise GlideMQError(f"job {self.id} is {'missing' if result == 0 else 'not failed or completed'}")

    async def promote(self) -> None:
        """Moves a delayed job to waiting now."""
        result = await self._ctx.call("promote", [self.id])
        if result != 1:
            raise GlideMQError(f"job {self.id} is {'missing' if result == 0 else 'not delayed'}")

    async def get_children_values(self) -> dict[str, Any]:
        """Return values of this job's completed children, by child key ``"<prefix>:<queue>:<id>"``."""
        return (await children_outcomes(self._ctx, self.id))[0]

    async def get_failed_children(self) -> dict[str, str]:
        """Failure reasons of this job's children that failed for good, by child key."""
        return (await children_outcomes(self._ctx, self.id))[1]

    async def refresh(self) -> bool:
        """Reloads every field from the server; False if the job no longer exists."""
        (flat,) = await self._ctx.call("jobs", [self.id])
        if not flat:
            return False
        fresh = Job.from_hash(self._ctx, self.id, flat)
        for slot in Job.__slots__:
            if not slot.startswith("_"):
                setattr(self, slot, getattr(fresh, slot))
        return True

    async def wait_until_finished(self, timeout: float | None = None) -> Any:
        """Waits until the job completes (returns its return value) or fails.

        Raises JobFailedError (``.failed_reason``) if it failed, TimeoutError when
        ``timeout`` seconds pass first.
        """
        if timeout is not None:
            check.seconds(timeout, "timeout")
        deadline = None if timeout is None else time.monotonic() + timeout
        waiter = self._ctx.waiter()
        future = await waiter.watch(self.id)
        try:
            while True:
                outcome = await self._finished_outcome()
                if outcome is not None:
                    return self._settle(*outcome)
                wait = RECHECK_INTERVAL
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        raise TimeoutError(f"job {self.id} did not finish within {timeout}s")
                done, _ = await asyncio.wait({future}, timeout=wait)
                if done:
                    kind, payload = future.result()
                    return self._settle(kind, payload)
        finally:
            waiter.unwatch(self.id, future)

    async def _finished_outcome(self) -> tuple[str, bytes] | None:
        (flat,) = await self._ctx.call("jobs", [self.id])
        if not flat:  # gone: maybe it finished and was removed before we watched
            return await recent_outcome(self._ctx.client, self._ctx.key("events"), self.id)
        h = hash_to_dict(flat)
        state = h.get("s", b"").decode()
        if state == "completed":
            return state, h.get("rv", b"")
        if state == "failed":
            return state, h.get("fr", b"")
        return None

    def _settle(self, kind: str, payload: bytes) -> Any:
        if kind == "completed":
            self.return_value = unpack(payload)
            return self.return_value
        self.failed_reason = payload.decode()
        raise JobFailedError(self.id, self.failed_reason)
