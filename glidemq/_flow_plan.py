"""Checking and encoding a forest of flow jobs before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

from . import _validate as check
from .errors import InvalidArgumentError
from .options import encode_job

CHILD_FAILURE_POLICIES = ("fail", "ignore")
BATCH_JOBS = 500
BATCH_BYTES = 4 * 1024 * 1024


class FlowJob:
    """One job of a flow: ``children`` run first; this job runs once they all completed.

    ``on_child_failure``: "fail" (the job fails as soon as a child fails for good) or
    "ignore" (a failed child counts as done). ``job_options`` are those of ``Queue.add``.
    Everything is checked by ``FlowProducer.add``, before anything is written.
    """

    __slots__ = ("children", "data", "name", "on_child_failure", "options", "queue_name")

    def __init__(
        self,
        name: str,
        queue_name: str,
        data: Any = None,
        children: Sequence[FlowJob] = (),
        on_child_failure: str = "fail",
        **job_options: Any,
    ) -> None:
        self.name = name
        self.queue_name = queue_name
        self.data = data
        self.children = children
        self.on_child_failure = on_child_failure
        self.options: Mapping[str, Any] = job_options

    def __repr__(self) -> str:
        return f"<FlowJob {self.queue_name}/{self.name!r} children={len(self.children)}>"


@dataclass
class Planned:
    """One checked and encoded job of a flow, with its place in the tree."""

    queue: str
    encoded: tuple[Any, ...]  # as options.encode_job gives it, with the id filled in
    data: Any
    parent: str  # the parent's key base and id, or ""
    ignore_failures: bool
    children: list[Planned] = field(default_factory=list)

    @property
    def job_id(self) -> str:
        return str(self.encoded[0])

    def row(self, prefix: str) -> list[Any]:
        """The job as flow_add reads it (numbers as decimal strings)."""
        job_id, name, data, delay, priority, attempts, backoff, timeout, lifo, rc, rf, _extras = self.encoded
        child_keys = [f"{prefix}:{child.queue}:{child.job_id}" for child in self.children]
        return [
            job_id, name, data, str(delay), str(priority), str(attempts), backoff, str(timeout),
            "1" if lifo else "0", str(rc), str(rf), self.parent, "1" if self.ignore_failures else "0", *child_keys,
        ]

    def walk(self) -> Iterator[Planned]:
        """This job and its descendants, parents before children."""
        stack = [self]
        while stack:
            job = stack.pop()
            yield job
            stack.extend(reversed(job.children))


def base_of(prefix: str, queue: str) -> str:
    return f"{prefix}:{{{queue}}}:"


def plan(flows: Iterable[FlowJob], prefix: str, max_payload: int) -> list[Planned]:
    """Checks and encodes every job of every flow; raises before anything is written."""
    if isinstance(flows, (str, bytes, FlowJob)) or not isinstance(flows, Iterable):
        raise InvalidArgumentError("flows must be a sequence of FlowJob")
    flows = list(flows)
    seen_objects: set[int] = set()
    seen_ids: set[tuple[str, str]] = set()
    roots: list[Planned] = []
    # (flow job, parent's planned job or None): iterative, so any depth works
    stack: list[tuple[Any, Planned | None]] = [(flow, None) for flow in reversed(flows)]
    while stack:
        flow, parent = stack.pop()
        planned = _plan_one(flow, parent, prefix, max_payload, seen_objects, seen_ids)
        if parent is None:
            roots.append(planned)
        else:
            parent.children.append(planned)
        stack.extend((child, planned) for child in reversed(list(flow.children)))
    return roots


def _plan_one(
    flow: Any, parent: Planned | None, prefix: str, max_payload: int,
    seen_objects: set[int], seen_ids: set[tuple[str, str]],
) -> Planned:
    if not isinstance(flow, FlowJob):
        raise InvalidArgumentError(f"a flow is made of FlowJob objects, got {type(flow).__name__}")
    if id(flow) in seen_objects:
        raise InvalidArgumentError(f"{flow!r} appears twice in the flow")
    seen_objects.add(id(flow))
    queue = check.queue_name(flow.queue_name)
    if flow.on_child_failure not in CHILD_FAILURE_POLICIES:
        raise InvalidArgumentError(f"on_child_failure must be 'fail' or 'ignore', got {flow.on_child_failure!r}")
    if isinstance(flow.children, (str, bytes)) or not isinstance(flow.children, Sequence):
        raise InvalidArgumentError("children must be a sequence of FlowJob")
    if "deduplication" in flow.options:
        raise InvalidArgumentError("deduplication does not apply to the jobs of a flow")
    encoded = encode_job(flow.name, flow.data, flow.options, max_payload)
    if not encoded[0]:
        encoded = (uuid.uuid4().hex, *encoded[1:])
    if (queue, encoded[0]) in seen_ids:
        raise InvalidArgumentError(f"job id {encoded[0]!r} appears twice in queue {queue!r} of the flow")
    seen_ids.add((queue, encoded[0]))
    parent_ref = "" if parent is None else base_of(prefix, parent.queue) + parent.job_id
    return Planned(queue, encoded, flow.data, parent_ref, flow.on_child_failure == "ignore")


def batches(roots: list[Planned]) -> Iterator[list[Planned]]:
    """Whole trees, grouped into batches of about BATCH_JOBS jobs and BATCH_BYTES of data."""
    batch: list[Planned] = []
    jobs = size = 0
    for root in roots:
        tree = list(root.walk())
        tree_size = sum(len(job.encoded[2]) for job in tree)
        if batch and (jobs + len(tree) > BATCH_JOBS or size + tree_size > BATCH_BYTES):
            yield batch
            batch, jobs, size = [], 0, 0
        batch.append(root)
        jobs += len(tree)
        size += tree_size
    if batch:
        yield batch


def by_queue(roots: list[Planned]) -> dict[str, list[Planned]]:
    """The jobs of these trees per queue, queues in the order they are written: by the depth
    at which they first appear, so parents are normally written before their children."""
    depth_of: dict[str, int] = {}
    jobs: dict[str, list[Planned]] = {}
    level = list(roots)
    depth = 0
    while level:
        following: list[Planned] = []
        for job in level:
            depth_of.setdefault(job.queue, depth)
            jobs.setdefault(job.queue, []).append(job)
            following += job.children
        level = following
        depth += 1
    return {queue: jobs[queue] for queue in sorted(jobs, key=lambda q: depth_of[q])}


def encode_rows(jobs: list[Planned], prefix: str) -> bytes:
    """The one argument of flow_add."""
    packed: bytes = msgpack.packb([job.row(prefix) for job in jobs], use_bin_type=False)
    return packed
