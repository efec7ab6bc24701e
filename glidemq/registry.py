"""The worker registry: which workers of a queue are alive, and what they are doing.

Each running worker keeps an entry (a field of ``prefix:{queue:workers}:info``, indexed by
expiry time in ``prefix:{queue:workers}:index``) that its heartbeat thread refreshes. An entry
not refreshed for a few lock durations is dropped (on the next heartbeat of any worker of the
queue, and on every read), so a worker that was killed drops out by itself; a worker that
closes removes its entry at once.

The registry has a hash tag of its own (all of a queue's registry keys share one slot): the
heartbeats' periodic writes stay out of the queue's keyspace, so they neither change a
snapshot of the queue's keys nor bring an obliterated queue back. ``{queue:workers}`` can
never be a queue's tag, since queue names cannot contain ``:``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._context import QueueContext
from ._thread_client import ThreadClient

TTL_LOCK_DURATIONS = 3  # an entry outlives its last refresh by this many lock durations
MAX_BEAT_INTERVAL = 2.0  # seconds between refreshes at most (keeps active_jobs fresh)

__all__ = ["Registration", "WorkerInfo", "list_workers", "new_worker_id", "registry_base"]


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker of a queue, as ``Queue.get_workers()`` reports it.

    ``started`` is epoch seconds; ``active_jobs`` is how many jobs it held at its last
    heartbeat (at most ``MAX_BEAT_INTERVAL`` seconds ago).
    """

    id: str
    host: str
    pid: int
    started: float
    active_jobs: int
    concurrency: int


def registry_base(prefix: str, queue: str) -> str:
    """The key base of one queue's worker registry."""
    return f"{prefix}:{{{queue}:workers}}:"


def new_worker_id() -> str:
    """A unique worker id: host, pid and a random part (no ``:``, ``{`` or ``}``)."""
    host = socket.gethostname().replace(":", "-").replace("{", "-").replace("}", "-")
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


class Registration:
    """One worker's entry in the registry, kept fresh from its heartbeat thread."""

    def __init__(
        self, worker_id: str, base: str, *, concurrency: int, lock_duration: float, active_jobs: Callable[[], int]
    ) -> None:
        self.worker_id = worker_id
        self.base = base
        self.interval = min(lock_duration / 2, MAX_BEAT_INTERVAL)
        self._ttl_ms = str(max(1, round(TTL_LOCK_DURATIONS * lock_duration * 1000)))
        self._active_jobs = active_jobs
        self._static = {"id": worker_id, "host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                        "concurrency": concurrency}

    async def beat(self, client: ThreadClient) -> None:
        """Registers the worker or refreshes its entry."""
        info = json.dumps({**self._static, "active_jobs": self._active_jobs()})
        await client.fcall("worker_beat", self.base, [self.worker_id, self._ttl_ms, info])

    async def leave(self, client: ThreadClient) -> None:
        """Removes the worker's entry."""
        await client.fcall("worker_leave", self.base, [self.worker_id])


def _info(worker_id: str, entry: dict[str, Any]) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id, host=str(entry.get("host", "")), pid=int(entry.get("pid", 0)),
        started=float(entry.get("started", 0.0)), active_jobs=int(entry.get("active_jobs", 0)),
        concurrency=int(entry.get("concurrency", 0)),
    )


async def list_workers(ctx: QueueContext) -> list[WorkerInfo]:
    """The live workers of one queue, oldest first."""
    reply = await ctx.client.fcall("workers", registry_base(ctx.prefix, ctx.name), [])
    out = []
    for raw in reply:
        entry = json.loads(raw)
        out.append(_info(entry.pop("id", ""), entry))
    return sorted(out, key=lambda info: (info.started, info.id))
