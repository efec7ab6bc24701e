"""What the dashboard shows, read through the async Queue API: queues, counts, throughput, job pages."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .. import _validate as check
from .._client import Client
from .._waiter import split_entry
from ..connection import Connection, resolve
from ..discover import queue_names_with
from ..errors import InvalidArgumentError
from ..job import Job
from ..queue import STATES, Queue

PAGE_SIZE = 25
SEARCH_CHUNK = 500
SEARCH_LIMIT = 5000           # jobs of one state looked at by a name search
THROUGHPUT_WINDOW_MS = 10_000
THROUGHPUT_MAX_ENTRIES = 200   # events-stream entries read per queue and refresh (bounds the cost)
DISCOVERY_TTL = 10.0           # seconds a SCAN of the keyspace for queue names is reused


@dataclass(frozen=True)
class QueueSummary:
    """One row of the queues page."""

    name: str
    counts: dict[str, int]
    paused: bool
    completed_per_s: float
    failed_per_s: float


@dataclass(frozen=True)
class JobPage:
    """One page of a queue's jobs in one state, optionally filtered by a search text."""

    jobs: list[Job]
    total: int
    page: int
    pages: int
    scanned_all: bool = True  # False when a search looked at the first SEARCH_LIMIT jobs only


async def throughput(
    queue: Queue, window_ms: int = THROUGHPUT_WINDOW_MS, max_entries: int = THROUGHPUT_MAX_ENTRIES
) -> tuple[float, float]:
    """Jobs completed and failed per second over the last ``window_ms``, from the queue's events stream.

    When the window holds more stream entries than ``max_entries``, the rate is taken over the
    span the entries read cover.
    """
    ctx = queue._ctx
    seconds, micros = await ctx.client.command(["TIME"], key=ctx.base)
    now_ms = int(seconds) * 1000 + int(micros) // 1000
    key = ctx.key("events")
    since = now_ms - window_ms
    reply = await ctx.client.command(["XREVRANGE", key, "+", str(since), "COUNT", str(max_entries)], key=key)
    totals = {"completed": 0, "failed": 0}
    oldest = since
    for stream_id, pairs in (reply or {}).items():
        oldest = int(stream_id.split(b"-")[0])
        for event in split_entry(stream_id.decode(), pairs):
            if event.event in totals:
                totals[event.event] += 1
    span_ms = window_ms if len(reply or ()) < max_entries else max(now_ms - oldest, 1)
    return totals["completed"] * 1000 / span_ms, totals["failed"] * 1000 / span_ms


def page_number(text: str | None) -> int:
    """A page number from a query parameter (1 when absent)."""
    if text is None or text == "":
        return 1
    if not text.isdigit() or int(text) < 1:
        raise InvalidArgumentError(f"page must be a whole number of at least 1, got {text!r}")
    return int(text)


def job_state(text: str | None) -> str:
    """A state from a query parameter ("waiting" when absent)."""
    return check.state(text or "waiting", STATES)


class Backend:
    """The queues one dashboard shows, with a Queue object per name kept between requests.

    Every Queue object rides on one client (one multiplexed connection) however many queues
    are shown. Clients belong to the event loop that made them: when requests arrive on
    another loop (a test client that starts one per request), a fresh one is made. Discovered
    queue names are reused for DISCOVERY_TTL seconds: a SCAN walks every key of the server.
    """

    def __init__(self, connection: Connection | str | None, prefix: str, queues: Sequence[str] | None) -> None:
        self.connection = resolve(connection)
        self.prefix = check.prefix(prefix)
        if isinstance(queues, str):
            raise InvalidArgumentError("queues must be a list of queue names, not a str")
        self.fixed = None if queues is None else list(dict.fromkeys(check.queue_name(q) for q in queues))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, Queue] = {}
        self._client = Client(self.connection, name="glidemq-dashboard")
        self._scan_lock = asyncio.Lock()
        self._found: tuple[float, list[str]] | None = None  # (monotonic time, names) of the last SCAN

    def _same_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._queues, self._scan_lock = loop, {}, asyncio.Lock()
            self._client = Client(self.connection, name="glidemq-dashboard")

    def shown(self, name: str) -> bool:
        """True when ``name`` is a queue this dashboard may show."""
        try:
            check.queue_name(name)
        except InvalidArgumentError:
            return False
        return self.fixed is None or name in self.fixed

    def queue(self, name: str) -> Queue:
        """The Queue object of a queue this dashboard shows."""
        self._same_loop()
        if name not in self._queues:
            queue = Queue(name, connection=self.connection, prefix=self.prefix)
            queue._ctx.client = self._client  # its own client was never connected: nothing to close
            self._queues[name] = queue
        return self._queues[name]

    async def names(self) -> list[str]:
        """The queues given to the dashboard, else every queue found under the prefix."""
        if self.fixed is not None:
            return list(self.fixed)
        self._same_loop()
        async with self._scan_lock:
            if self._found is None or time.monotonic() - self._found[0] > DISCOVERY_TTL:
                self._found = (time.monotonic(), await queue_names_with(self._client, self.prefix))
            return list(self._found[1])

    async def summary(self, name: str) -> QueueSummary:
        """Counts, paused flag and throughput of one queue."""
        queue = self.queue(name)
        counts = await queue.get_job_counts()
        paused = await queue.is_paused()
        completed, failed = await throughput(queue)
        return QueueSummary(name, counts, paused, completed, failed)

    async def summaries(self) -> list[QueueSummary]:
        """A summary of every queue shown."""
        names = await self.names()
        return list(await asyncio.gather(*(self.summary(name) for name in names)))

    async def jobs(self, name: str, state: str, page: int, search: str = "") -> JobPage:
        """One page of jobs in ``state``; with ``search``, those whose id equals it or whose name contains it."""
        queue = self.queue(name)
        total = (await queue.get_job_counts()).get(state, 0)
        first = (page - 1) * PAGE_SIZE
        if not search:
            jobs = await queue.get_jobs(state, first, first + PAGE_SIZE - 1) if first < total else []
            return JobPage(jobs, total, page, max(1, math.ceil(total / PAGE_SIZE)))
        needle = search.casefold()
        matches: list[Job] = []
        scanned = 0
        while scanned < min(total, SEARCH_LIMIT):
            batch = await queue.get_jobs(state, scanned, scanned + SEARCH_CHUNK - 1)
            matches += [job for job in batch if job.id == search or needle in job.name.casefold()]
            scanned += SEARCH_CHUNK
        pages = max(1, math.ceil(len(matches) / PAGE_SIZE))
        return JobPage(matches[first : first + PAGE_SIZE], len(matches), page, pages, scanned >= total)

    async def find(self, name: str, job_id: str) -> Job | None:
        """The job with this id, or None (also for text that cannot be a job id)."""
        try:
            check.key_part(job_id, "job id")
        except InvalidArgumentError:
            return None
        return await self.queue(name).get_job(job_id)

    async def close(self) -> None:
        """Closes the dashboard's connection (a later request opens a new one)."""
        client = self._client
        self._queues, self._client = {}, Client(self.connection, name="glidemq-dashboard")
        await client.close()
