"""Flows: a parent job runs after all its children, in any queues, to any depth."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from glide import GlideClient

import glidemq
from glidemq import FlowJob, FlowProducer
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster

from .conftest import keyspace
from .test_cluster import base_of, qname_on
from .worker_helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent


def new_queue() -> str:
    return "q" + uuid.uuid4().hex[:12]


def key(queue: str, job: glidemq.Job) -> str:
    return f"glidemq:{queue}:{job.id}"


async def echo(job: glidemq.Job) -> Any:
    return job.data


async def collect(job: glidemq.Job) -> dict[str, Any]:
    """A parent's processor: what its children left."""
    return {"values": await job.get_children_values(), "failed": await job.get_failed_children()}


@pytest.fixture
async def flow(url: str) -> AsyncIterator[FlowProducer]:
    async with FlowProducer(connection=url) as producer:
        yield producer


class Workers:
    """Starts workers that are all closed when the test ends."""

    def __init__(self, stack: AsyncExitStack, url: str) -> None:
        self._stack = stack
        self._url = url

    async def start(self, queue: str, processor: Callable[[glidemq.Job], Any], **options: Any) -> glidemq.Worker:
        worker = glidemq.Worker(queue, processor, connection=self._url, **options)
        return await self._stack.enter_async_context(worker)


@pytest.fixture
async def workers(url: str) -> AsyncIterator[Workers]:
    async with AsyncExitStack() as stack:
        yield Workers(stack, url)


# --- the basics ------------------------------------------------------------------------------


async def test_parent_runs_after_all_children_and_sees_their_values(
    flow: FlowProducer, workers: Workers, qname: str
) -> None:
    ran: list[str] = []

    async def processor(job: glidemq.Job) -> Any:
        ran.append(job.name)
        if job.name == "parent":
            return await job.get_children_values()
        await asyncio.sleep(0.01 * job.data)
        return job.data * 10

    node = await flow.add(FlowJob("parent", qname, children=[FlowJob(f"c{i}", qname, i) for i in range(4)]))
    assert isinstance(node, glidemq.JobNode) and isinstance(node.job, glidemq.Job)
    assert [c.job.data for c in node.children] == [0, 1, 2, 3]
    assert all(c.children == [] for c in node.children)
    assert await node.job.get_state() == "waiting-children"
    await workers.start(qname, processor, concurrency=4)
    values = await node.job.wait_until_finished(timeout=10)
    assert ran[-1] == "parent" and sorted(ran[:-1]) == ["c0", "c1", "c2", "c3"]
    assert values == {key(qname, c.job): c.job.data * 10 for c in node.children}


async def test_children_values_outside_the_processor(flow: FlowProducer, workers: Workers, url: str) -> None:
    parent_q, child_q = new_queue(), new_queue()
    node = await flow.add(
        FlowJob("p", parent_q, children=[FlowJob("a", child_q, "x"), FlowJob("b", child_q, {"y": [1, 2]})])
    )
    assert await node.job.get_children_values() == {}
    await workers.start(child_q, echo)
    await workers.start(parent_q, echo)
    await node.job.wait_until_finished(timeout=10)
    expected = {key(child_q, node.children[0].job): "x", key(child_q, node.children[1].job): {"y": [1, 2]}}
    assert await node.job.get_children_values() == expected
    assert await node.job.get_failed_children() == {}
    async with glidemq.Queue(parent_q, connection=url) as queue:
        fetched = await queue.get_job(node.job.id)
        assert fetched is not None and await fetched.get_children_values() == expected


async def test_depth_three(flow: FlowProducer, workers: Workers) -> None:
    top, middle, bottom = new_queue(), new_queue(), new_queue()
    order: list[str] = []

    async def processor(job: glidemq.Job) -> Any:
        order.append(job.name)
        values = await job.get_children_values()
        return job.data + sum(values.values())

    node = await flow.add(
        FlowJob("root", top, 100, children=[
            FlowJob("mid", middle, 10, children=[FlowJob("leaf1", bottom, 1), FlowJob("leaf2", bottom, 2)]),
            FlowJob("mid2", middle, 20),
        ])
    )
    assert [await c.job.get_state() for c in node.children] == ["waiting-children", "waiting"]
    assert [c.job.name for c in node.children[0].children] == ["leaf1", "leaf2"]
    for queue in (top, middle, bottom):
        await workers.start(queue, processor, concurrency=2)
    assert await node.job.wait_until_finished(timeout=10) == 133
    assert order.index("root") > order.index("mid") > max(order.index("leaf1"), order.index("leaf2"))


async def test_a_chain_forty_deep_across_two_queues(flow: FlowProducer, workers: Workers) -> None:
    queues = (new_queue(), new_queue())
    chain = FlowJob("link", queues[0], 0)
    for depth in range(1, 40):
        chain = FlowJob("link", queues[depth % 2], depth, children=[chain])

    async def add_up(job: glidemq.Job) -> int:
        return int(job.data) + sum((await job.get_children_values()).values())

    node = await flow.add(chain)
    for queue in queues:
        await workers.start(queue, add_up)
    assert await node.job.wait_until_finished(timeout=20) == sum(range(40))


async def test_children_in_other_queues_and_back(flow: FlowProducer, workers: Workers) -> None:
    """A tree that goes q1 -> q2 -> q1: q1 is written first, so its leaf may finish before
    its parent in q2 exists; the parent still counts it."""
    q1, q2, q3 = new_queue(), new_queue(), new_queue()
    for queue in (q1, q2, q3):
        await workers.start(queue, collect_or_echo, concurrency=3)
    nodes = await flow.add_bulk([
        FlowJob("root", q1, children=[
            FlowJob("mid", q2, children=[FlowJob("leaf", q1, "from q1"), FlowJob("leaf", q3, "from q3")]),
        ])
        for _ in range(5)
    ])
    for node in nodes:
        result = await node.job.wait_until_finished(timeout=10)
        mid = node.children[0]
        assert list(result["values"]) == [key(q2, mid.job)]
        leaves = result["values"][key(q2, mid.job)]["values"]
        assert leaves == {key(q1, mid.children[0].job): "from q1", key(q3, mid.children[1].job): "from q3"}


async def collect_or_echo(job: glidemq.Job) -> Any:
    return await collect(job) if job.name in ("root", "mid", "parent") else job.data


@pytest.mark.parametrize("policy", ["ignore", "fail"])
async def test_children_that_finish_before_their_parent_is_written_still_count(
    flow: FlowProducer, workers: Workers, qname: str, raw: GlideClient, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    """Forces the order that a tree going from queue A to B and back to A can produce: the
    children's queue written first, and its jobs finished before the parent exists."""
    child_q = new_queue()
    await workers.start(child_q, failing, concurrency=2)
    await workers.start(qname, collect)
    by_queue, write = glidemq.flow.by_queue, FlowProducer._write
    monkeypatch.setattr(glidemq.flow, "by_queue", lambda batch: dict(reversed(by_queue(batch).items())))

    async def write_then_finish(producer: FlowProducer, queue: str, planned: list[Any]) -> dict[int, glidemq.Job]:
        written = await write(producer, queue, planned)
        if queue == child_q:
            for job in written.values():
                await wait_until(lambda job=job: _finished(job), timeout=10)
            # and their outcomes delivered to the parent's queue, where no parent is yet
            await wait_until(lambda: _outbox_empty(raw, child_q), timeout=10)
            assert await raw.exists([f"glidemq:{{{qname}}}:pre:{node_id[0]}"]) == 1
        return written

    monkeypatch.setattr(FlowProducer, "_write", write_then_finish)
    node_id: list[str] = []
    planner = glidemq.flow.plan

    def plan_and_note(*args: Any) -> Any:
        roots = planner(*args)
        node_id.append(roots[0].job_id)
        return roots

    monkeypatch.setattr(glidemq.flow, "plan", plan_and_note)
    node = await flow.add(FlowJob("parent", qname, on_child_failure=policy, children=[
        FlowJob("good", child_q, "early"), FlowJob("bad", child_q, {"fail": True}),
    ]))
    good, bad = (c.job for c in node.children)
    if policy == "ignore":
        result = await node.job.wait_until_finished(timeout=10)
        assert result == {"values": {key(child_q, good): "early"}, "failed": {key(child_q, bad): "boom bad"}}
    else:
        with pytest.raises(glidemq.JobFailedError, match=key(child_q, bad)):
            await node.job.wait_until_finished(timeout=10)
        assert await node.job.get_children_values() == {key(child_q, good): "early"}


async def _outbox_empty(raw: GlideClient, queue: str) -> bool:
    return await raw.zcard(f"glidemq:{{{queue}}}:ob") == 0


async def _finished(job: glidemq.Job) -> bool:
    return await job.get_state() in ("completed", "failed")


# --- child failures --------------------------------------------------------------------------


async def failing(job: glidemq.Job) -> Any:
    if isinstance(job.data, dict) and job.data.get("fail"):
        raise RuntimeError(f"boom {job.name}")
    return await collect_or_echo(job)


async def test_failed_child_fails_the_parent_at_once(flow: FlowProducer, workers: Workers, qname: str) -> None:
    child_q = new_queue()
    node = await flow.add(
        FlowJob("parent", qname, children=[FlowJob("bad", child_q, {"fail": True}), FlowJob("slow", child_q, None)])
    )
    await workers.start(child_q, failing)  # concurrency 1: "bad" runs first, "slow" waits
    with pytest.raises(glidemq.JobFailedError) as failed:
        await node.job.wait_until_finished(timeout=10)
    bad = node.children[0].job
    assert key(child_q, bad) in failed.value.failed_reason and "boom bad" in failed.value.failed_reason
    assert await node.job.get_state() == "failed"
    assert await node.job.get_failed_children() == {key(child_q, bad): "boom bad"}


async def test_ignored_child_failure_lets_the_parent_run(flow: FlowProducer, workers: Workers, qname: str) -> None:
    node = await flow.add(
        FlowJob("parent", qname, on_child_failure="ignore",
                children=[FlowJob("bad", qname, {"fail": True}), FlowJob("good", qname, "ok")])
    )
    await workers.start(qname, failing, concurrency=2)
    result = await node.job.wait_until_finished(timeout=10)
    bad, good = node.children[0].job, node.children[1].job
    assert result == {"values": {key(qname, good): "ok"}, "failed": {key(qname, bad): "boom bad"}}
    assert await bad.get_state() == "failed"


async def test_child_with_retries_fails_the_parent_only_after_its_last_attempt(
    flow: FlowProducer, workers: Workers, qname: str, url: str
) -> None:
    parent_states: list[str] = []
    parent_id: list[str] = []

    async def processor(job: glidemq.Job) -> Any:
        async with glidemq.Queue(qname, connection=url) as queue:
            parent = await queue.get_job(parent_id[0])
            assert parent is not None
            parent_states.append(await parent.get_state())
        raise RuntimeError(f"attempt {job.attempts_made + 1}")

    child_q = new_queue()
    node = await flow.add(FlowJob("parent", qname, children=[FlowJob("flaky", child_q, attempts=3)]))
    parent_id.append(node.job.id)
    await workers.start(child_q, processor)
    with pytest.raises(glidemq.JobFailedError, match="attempt 3"):
        await node.job.wait_until_finished(timeout=10)
    assert parent_states == ["waiting-children"] * 3
    assert (await node.job.get_failed_children()) == {key(child_q, node.children[0].job): "attempt 3"}


async def test_a_failure_travels_up_the_tree(flow: FlowProducer, workers: Workers) -> None:
    """Only the leaf's queue has a worker: the failed middle job fails the root too."""
    top, middle, bottom = new_queue(), new_queue(), new_queue()
    node = await flow.add(
        FlowJob("root", top, children=[FlowJob("mid", middle, children=[FlowJob("leaf", bottom, {"fail": True})])])
    )
    await workers.start(bottom, failing)
    with pytest.raises(glidemq.JobFailedError) as failed:
        await node.job.wait_until_finished(timeout=10)
    mid = node.children[0].job
    assert key(middle, mid) in failed.value.failed_reason
    assert await mid.get_state() == "failed"


async def test_removing_a_pending_child_lets_the_parent_run(
    flow: FlowProducer, workers: Workers, qname: str, url: str
) -> None:
    child_q = new_queue()
    node = await flow.add(
        FlowJob("parent", qname, children=[FlowJob("gone", child_q, delay=60), FlowJob("kept", child_q, 7)])
    )
    await workers.start(child_q, echo)  # delivers every 30 s by itself (stalled_interval)
    await workers.start(qname, collect)
    await wait_until(lambda: _completed(node.children[1].job), timeout=10)
    assert await node.job.get_state() == "waiting-children"
    async with glidemq.Queue(child_q, connection=url) as queue:
        assert await queue.remove(node.children[0].job.id)
    result = await node.job.wait_until_finished(timeout=5)  # told at once, not at the next pass
    assert result == {"values": {key(child_q, node.children[1].job): 7}, "failed": {}}


# --- many at once, exactly once -------------------------------------------------------------


async def test_fifty_children_ten_workers_parent_runs_once_with_every_value(
    flow: FlowProducer, workers: Workers, qname: str
) -> None:
    child_q = new_queue()
    parent_runs: list[dict[str, Any]] = []

    async def parent(job: glidemq.Job) -> int:
        parent_runs.append(await job.get_children_values())
        return len(parent_runs)

    node = await flow.add(FlowJob("parent", qname, children=[FlowJob("c", child_q, i) for i in range(50)]))
    for _ in range(10):
        await workers.start(child_q, echo, concurrency=5)
    await workers.start(qname, parent, concurrency=2)
    assert await node.job.wait_until_finished(timeout=20) == 1
    await asyncio.sleep(0.2)
    assert len(parent_runs) == 1
    assert parent_runs[0] == {key(child_q, c.job): c.job.data for c in node.children}


async def test_one_server_call_per_queue(server: EmbeddedValkey, flow: FlowProducer) -> None:
    def fcalls() -> int:
        stats = server.command("INFO", "commandstats").decode()
        line = next(x for x in stats.splitlines() if x.startswith("cmdstat_fcall:"))
        return int(line.split("calls=")[1].split(",")[0])

    queues = [new_queue() for _ in range(3)]
    tree = FlowJob("root", queues[0], children=[
        FlowJob("a", queues[1], children=[FlowJob("x", queues[2]), FlowJob("y", queues[0])]),
        FlowJob("b", queues[2], children=[FlowJob("z", queues[1])]),
    ])
    await flow.add(FlowJob("warm-up", queues[0], children=[FlowJob("w", q) for q in queues[1:]]))
    before = fcalls()
    node = await flow.add(tree)
    assert fcalls() - before == 3
    assert node.children[1].children[0].job.name == "z"


# --- nothing written on bad input -------------------------------------------------------------


class Unencodable:
    pass


BAD_ITEMS: dict[str, tuple[Callable[[str], FlowJob], type[Exception]]] = {
    "empty name": (lambda q: FlowJob("", q), glidemq.InvalidArgumentError),
    "bad queue name": (lambda q: FlowJob("x", "bad:name"), glidemq.InvalidArgumentError),
    "unknown option": (lambda q: FlowJob("x", q, colour="red"), glidemq.InvalidArgumentError),
    "bad attempts": (lambda q: FlowJob("x", q, attempts=0), glidemq.InvalidArgumentError),
    "numeric job_id": (lambda q: FlowJob("x", q, job_id="123"), glidemq.InvalidArgumentError),
    "unencodable data": (lambda q: FlowJob("x", q, Unencodable()), glidemq.SerializationError),
    "bad on_child_failure": (lambda q: FlowJob("x", q, on_child_failure="retry"), glidemq.InvalidArgumentError),
    "children not FlowJobs": (lambda q: FlowJob("x", q, children=["nope"]), glidemq.InvalidArgumentError),  # type: ignore[list-item]
    "oversized data": (lambda q: FlowJob("x", q, b"x" * (2 * 1024 * 1024)), glidemq.InvalidArgumentError),
}


@pytest.mark.parametrize("bad", list(BAD_ITEMS))
async def test_a_bad_item_anywhere_writes_nothing_anywhere(flow: FlowProducer, raw: GlideClient, bad: str) -> None:
    make_bad, error = BAD_ITEMS[bad]
    queues = [new_queue() for _ in range(3)]
    async with glidemq.Queue(queues[0], connection=flow.connection) as queue:
        await queue.add("existing", 1)  # a queue that already holds something
    before = {q: await keyspace(raw, q) for q in queues}
    good = FlowJob("root", queues[0], children=[FlowJob("a", queues[1]), FlowJob("b", queues[2])])
    deep_bad = FlowJob("root", queues[0], children=[
        FlowJob("a", queues[1], children=[FlowJob("b", queues[2]), make_bad(queues[2])]),
    ])
    with pytest.raises(error):
        await flow.add(deep_bad)
    with pytest.raises(error):
        await flow.add_bulk([good, FlowJob("other", queues[1]), make_bad(queues[0])])
    assert {q: await keyspace(raw, q) for q in queues} == before


async def test_duplicate_ids_and_shapes_are_rejected(flow: FlowProducer, raw: GlideClient, qname: str) -> None:
    child = FlowJob("c", qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await flow.add(FlowJob("p", qname, children=[child, child]))
    with pytest.raises(glidemq.InvalidArgumentError):
        await flow.add(FlowJob("p", qname, job_id="same", children=[FlowJob("c", qname, job_id="same")]))
    with pytest.raises(glidemq.InvalidArgumentError):
        await flow.add("not a flow")  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await flow.add_bulk(FlowJob("p", qname))  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        FlowProducer(prefix="a{b}")
    assert await keyspace(raw, qname) == {}


# --- states and counts -----------------------------------------------------------------------


async def test_waiting_children_counts_jobs_and_state(flow: FlowProducer, url: str, qname: str) -> None:
    nodes = await flow.add_bulk([FlowJob(f"p{i}", qname, i, children=[FlowJob("c", qname)]) for i in range(3)])
    async with glidemq.Queue(qname, connection=url) as queue:
        counts = await queue.get_job_counts()
        assert counts["waiting-children"] == 3 and counts["waiting"] == 3
        assert await queue.count() == 3
        assert [j.id for j in await queue.get_jobs("waiting-children")] == [n.job.id for n in nodes]
        assert [j.name for j in await queue.get_jobs("waiting-children", 1, 1)] == ["p1"]
        assert len(await queue.get_jobs(["waiting", "waiting-children"])) == 6
        assert {await n.job.get_state() for n in nodes} == {"waiting-children"}
        # a parent waiting for children can be removed; its count goes with it
        assert await queue.remove(nodes[0].job.id)
        assert (await queue.get_job_counts())["waiting-children"] == 2
        await queue.obliterate()
        assert (await queue.get_job_counts())["waiting-children"] == 0


async def test_options_and_delay_of_a_parent(flow: FlowProducer, workers: Workers, qname: str) -> None:
    node = await flow.add(
        FlowJob("p", qname, {"d": 1}, priority=3, attempts=2, delay=0.2, children=[FlowJob("c", qname, job_id="kid")])
    )
    assert (node.job.priority, node.job.attempts, node.job.delay) == (3, 2, 0.2)
    assert node.children[0].job.id == "kid"
    await workers.start(qname, echo)
    assert await node.job.wait_until_finished(timeout=10) == {"d": 1}


async def test_existing_job_becomes_a_child(flow: FlowProducer, workers: Workers, url: str, qname: str) -> None:
    """A custom child id that exists: the job is kept; finished, it reports at once."""
    child_q = new_queue()
    async with glidemq.Queue(child_q, connection=url) as queue:
        done = await queue.add("done", "earlier", job_id="done-before")
        async with glidemq.Worker(child_q, echo, connection=url):
            await done.wait_until_finished(timeout=10)
    node = await flow.add(FlowJob("p", qname, children=[FlowJob("ignored", child_q, "new", job_id="done-before")]))
    assert node.children[0].job.data == "earlier"
    await workers.start(qname, collect)
    result = await node.job.wait_until_finished(timeout=10)
    assert result["values"] == {f"glidemq:{child_q}:done-before": "earlier"}


async def test_children_removed_on_complete_still_report(flow: FlowProducer, workers: Workers, qname: str) -> None:
    node = await flow.add(
        FlowJob("parent", qname, children=[FlowJob("c", qname, i, remove_on_complete=True) for i in range(3)])
    )
    await workers.start(qname, collect_or_echo)
    result = await node.job.wait_until_finished(timeout=10)
    assert sorted(result["values"].values()) == [0, 1, 2]
    assert await node.children[0].job.get_state() == "unknown"


# --- a worker dies between finishing a child and delivering its outcome ---------------------------


async def test_worker_killed_before_delivery_still_lets_the_parent_run(
    flow: FlowProducer, workers: Workers, url: str, qname: str
) -> None:
    child_q = new_queue()
    node = await flow.add(FlowJob("parent", qname, children=[FlowJob("c", child_q, "v")]))
    child = node.children[0].job
    process = subprocess.Popen([sys.executable, "-m", "tests.flow_worker", url, child_q], cwd=ROOT)
    try:
        await wait_until(lambda: _completed(child), timeout=20)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    await workers.start(qname, collect)
    await asyncio.sleep(0.3)
    assert await node.job.get_state() == "waiting-children"  # the notification is still in the outbox
    await workers.start(child_q, echo)  # any worker of the child's queue delivers it
    result = await node.job.wait_until_finished(timeout=10)
    assert result["values"] == {key(child_q, child): "v"}


async def _completed(job: glidemq.Job) -> bool:
    return await job.get_state() == "completed"


async def test_a_child_failed_by_the_stall_check_fails_its_parent(
    flow: FlowProducer, workers: Workers, url: str, qname: str
) -> None:
    child_q = new_queue()
    node = await flow.add(FlowJob("parent", qname, children=[FlowJob("stuck", child_q, {"sleep": 60})]))
    child = node.children[0].job
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_worker", url, child_q, "--lock-duration", "1", "--max-stalled-count", "0"],
        cwd=ROOT,
    )
    try:
        await wait_until(lambda: _active(child), timeout=20)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    await workers.start(child_q, echo, lock_duration=1, stalled_interval=0.3, max_stalled_count=0)
    with pytest.raises(glidemq.JobFailedError, match="stalled") as failed:
        await node.job.wait_until_finished(timeout=10)
    assert key(child_q, child) in failed.value.failed_reason


async def _active(job: glidemq.Job) -> bool:
    return await job.get_state() == "active"


# --- a Valkey Cluster ----------------------------------------------------------------------------


async def test_flow_across_primaries_of_a_cluster(cluster: EmbeddedValkeyCluster) -> None:
    url = cluster.url
    parent_q = qname_on(cluster)
    parent_node = cluster.node_for_key(base_of(parent_q))
    while True:
        child_q = new_queue()
        if cluster.node_for_key(base_of(child_q)).port != parent_node.port:
            break
    async with FlowProducer(connection=url) as producer, AsyncExitStack() as stack:
        node = await producer.add(
            FlowJob("parent", parent_q, on_child_failure="ignore", children=[
                FlowJob("mid", child_q, children=[FlowJob("leaf", parent_q, "back home")]),
                FlowJob("c", child_q, 1),
                FlowJob("bad", child_q, {"fail": True}),
            ])
        )
        async with glidemq.Queue(parent_q, connection=url) as queue:
            assert (await queue.get_job_counts())["waiting-children"] == 1
        runner = Workers(stack, url)
        await runner.start(parent_q, failing, concurrency=2)
        await runner.start(child_q, failing, concurrency=2)
        result = await node.job.wait_until_finished(timeout=20)
    mid, c, bad = (n.job for n in node.children)
    leaf = node.children[0].children[0].job
    assert result["failed"] == {key(child_q, bad): "boom bad"}
    assert result["values"] == {
        key(child_q, mid): {"values": {key(parent_q, leaf): "back home"}, "failed": {}},
        key(child_q, c): 1,
    }


# --- the docs -------------------------------------------------------------------------------------


def test_the_examples_of_docs_flows_run() -> None:
    text = (ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    examples = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "asyncio.run(" in block]
    assert len(examples) == 2
    for example in examples:
        output = subprocess.run(
            [sys.executable, "-c", example], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
        ).stdout
        assert output.strip().splitlines()[-1] in (
            "['intro.mp4 at 1080p', 'intro.mp4 at 360p', 'intro.mp4 at 720p']", "{'ok': 2, 'failed': 1}"
        )
