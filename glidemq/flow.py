"""Flows: trees of jobs in which a parent runs only after all its children completed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType

from . import _validate as check
from ._context import QueueContext
from ._flow_outbox import CLAIM_MS, deliver_outbox
from ._flow_plan import FlowJob, Planned, batches, by_queue, encode_rows, plan
from .connection import Connection, resolve
from .errors import InvalidArgumentError
from .job import Job

__all__ = ["FlowJob", "FlowProducer", "JobNode"]


@dataclass
class JobNode:
    """A job of a flow as written, with the nodes of its children."""

    job: Job
    children: list[JobNode] = field(default_factory=list)


class FlowProducer:
    """Adds flows: a parent job waits in "waiting-children" until every child completed.

    All jobs of a flow that live in one queue are written by one server call, parents'
    queues first; every job of every flow is checked and encoded before the first write.
    """

    def __init__(
        self,
        *,
        connection: Connection | str | None = None,
        prefix: str = "glidemq",
        max_payload_size: int = check.DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.prefix = check.prefix(prefix)
        self.max_payload_size = check.integer(max_payload_size, "max_payload_size", minimum=1)
        self.connection = resolve(connection)
        self._contexts: dict[str, QueueContext] = {}

    def __repr__(self) -> str:
        return f"<FlowProducer prefix={self.prefix!r} on {self.connection.url}>"

    async def __aenter__(self) -> FlowProducer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Releases the connections."""
        contexts, self._contexts = self._contexts, {}
        for ctx in contexts.values():
            await ctx.close()

    async def add(self, flow: FlowJob) -> JobNode:
        """Adds one tree of jobs; returns its root's node."""
        if not isinstance(flow, FlowJob):
            raise InvalidArgumentError(f"add takes a FlowJob, got {type(flow).__name__}")
        (node,) = await self.add_bulk([flow])
        return node

    async def add_bulk(self, flows: Iterable[FlowJob]) -> list[JobNode]:
        """Adds several trees; nothing is written unless every job of every tree is valid."""
        roots = plan(flows, self.prefix, self.max_payload_size)
        jobs: dict[int, Job] = {}
        for batch in batches(roots):
            for queue, planned in by_queue(batch).items():
                jobs.update(await self._write(queue, planned))
        return [self._node(root, jobs) for root in roots]

    async def _write(self, queue: str, planned: list[Planned]) -> dict[int, Job]:
        ctx = self._context(queue)
        reply = await ctx.call("flow_add", [encode_rows(planned, self.prefix)])
        now_ms, notified, created = reply[0], reply[1], reply[2:]
        if notified:  # existing jobs adopted as children, already finished
            await deliver_outbox(ctx.client, ctx.base, CLAIM_MS)
        out: dict[int, Job] = {}
        for job, was_created in zip(planned, created, strict=True):
            existing = None if was_created else await self._existing(ctx, job.job_id)
            out[id(job)] = existing or _new_job(ctx, job, now_ms)
        return out

    async def _existing(self, ctx: QueueContext, job_id: str) -> Job | None:
        (flat,) = await ctx.call("jobs", [job_id])
        return Job.from_hash(ctx, job_id, flat) if flat else None

    def _context(self, queue: str) -> QueueContext:
        ctx = self._contexts.get(queue)
        if ctx is None:
            ctx = QueueContext(
                queue, connection=self.connection, prefix=self.prefix, max_payload_size=self.max_payload_size,
                client_name="glidemq-flow",
            )
            self._contexts[queue] = ctx
        return ctx

    def _node(self, root: Planned, jobs: dict[int, Job]) -> JobNode:
        top = JobNode(jobs[id(root)])
        stack = [(root, top)]
        while stack:
            planned, node = stack.pop()
            for child in planned.children:
                child_node = JobNode(jobs[id(child)])
                node.children.append(child_node)
                stack.append((child, child_node))
        return top


def _new_job(ctx: QueueContext, planned: Planned, now_ms: int) -> Job:
    fields = planned.encoded
    job = Job(ctx, planned.job_id, fields[1], planned.data)
    job.timestamp = now_ms / 1000.0
    job.delay, job.priority, job.attempts = fields[3] / 1000.0, fields[4], fields[5]
    job.backoff, job.timeout = fields[6], (fields[7] / 1000.0 if fields[7] else None)
    return job
