"""Faults of a real Valkey Cluster under load: a queue's slot migrated, a graceful failover with
durable adds, a primary SIGKILLed after durable adds.

Every test runs a producer and workers against the shared ``cluster`` fixture while the fault
happens, then checks that every acknowledged add completed exactly once (or, after a SIGKILL,
at least once) and prints its figures. Each test puts the topology back as it found it: slots on
their old primaries, old primaries primaries again, ``cluster_state:ok``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import glidemq
from glidemq.functions import LIBRARY_NAME, library_source
from glidemq.testing import EmbeddedValkeyCluster

from .test_cluster import base_of, has_library, qname_on
from .worker_helpers import wait_until

DURABLE = glidemq.Durability(replicas=1, timeout=2)
PACE = 0.005  # seconds between two adds of a producer


@dataclass
class Traffic:
    """A producer adding jobs without pause and the bookkeeping of what the workers did."""

    queue: glidemq.Queue
    durability: glidemq.Durability | None = None
    acknowledged: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)  # DurabilityError: written, not confirmed
    failed_adds: list[BaseException] = field(default_factory=list)
    add_times: list[float] = field(default_factory=list)
    runs: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    completed_times: list[float] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def produce(self) -> None:
        n = 0
        while not self.stopping.is_set():
            n += 1
            try:
                job = await self.queue.add("load", n, durability=self.durability)
            except glidemq.DurabilityError as exc:
                self.unconfirmed.extend(j.id for j in exc.jobs)
            except glidemq.GlideMQError as exc:
                self.failed_adds.append(exc)
            else:
                self.acknowledged.append(job.id)
                self.add_times.append(time.monotonic())
            await asyncio.sleep(PACE)

    async def process(self, job: glidemq.Job) -> Any:
        self.runs[job.id] += 1
        return job.data

    def on_completed(self, job: glidemq.Job, result: Any) -> None:
        self.completed[job.id] += 1
        self.completed_times.append(time.monotonic())

    def workers(self, url: Any, count: int = 2) -> list[glidemq.Worker]:
        out = []
        for _ in range(count):
            worker = glidemq.Worker(
                self.queue.name, self.process, connection=url, concurrency=2, lock_duration=10, stalled_interval=1
            )
            worker.on("completed", self.on_completed)
            out.append(worker)
        return out

    def all_done(self, ids: list[str]) -> bool:
        return all(self.completed[i] for i in ids)

    def figures(self, ids: list[str], label: str) -> dict[str, Any]:
        lost = [i for i in ids if not self.completed[i]]
        duplicates = sum(c - 1 for c in self.completed.values() if c > 1)
        return {
            "label": label, "acknowledged": len(ids), "lost": len(lost),
            "duplicate terminal states": duplicates, "reruns": sum(c - 1 for c in self.runs.values() if c > 1),
            "longest producer stall s": round(_longest_gap(self.add_times), 2),
            "longest completion gap s": round(_longest_gap(self.completed_times), 2),
        }


def _longest_gap(times: list[float]) -> float:
    ordered = sorted(times)
    return max((b - a for a, b in itertools.pairwise(ordered)), default=0.0)


def _report(figures: dict[str, Any], **more: Any) -> None:
    items = {**figures, **more}
    label = items.pop("label")
    print(f"\nCLUSTER {label}: " + ", ".join(f"{k} {v}" for k, v in items.items()))


@pytest.fixture
def connection(cluster: EmbeddedValkeyCluster) -> glidemq.Connection:
    """Calls ride out the fault instead of raising."""
    return glidemq.Connection(cluster.url, request_timeout=20)


@pytest.fixture
def roles(cluster: EmbeddedValkeyCluster) -> Iterator[None]:
    """Puts every primary of before the test back in place afterwards (and checks it did)."""
    cluster.wait_ok()
    before = cluster.topology()
    yield
    for node in cluster.nodes:
        if not node.running:
            cluster.restart(node)  # rejoins as a replica of the node that took over
    cluster.wait_ok()
    for node in cluster.nodes:
        if before[node.port][0] == "primary" and cluster.topology()[node.port][0] != "primary":
            cluster.failover(node)
    cluster.wait_ok()
    assert cluster.topology() == before


# --- slot migration ------------------------------------------------------------------------------


@pytest.mark.parametrize("atomic", [True, False], ids=["atomic", "classic"])
async def test_slot_migration_under_load(
    cluster: EmbeddedValkeyCluster, connection: glidemq.Connection, roles: None, atomic: bool
) -> None:
    qname = qname_on(cluster)
    base = base_of(qname)
    slot = cluster.slot_of(base)
    owner = cluster.node_for_key(base)
    target = next(n for n in cluster.primaries() if n.port not in (owner.port, cluster.port))
    if has_library(target):
        target.command("FUNCTION", "DELETE", LIBRARY_NAME)  # the migration does not bring it
    try:
        async with glidemq.Queue(qname, connection=connection) as queue:
            traffic = Traffic(queue)
            workers = traffic.workers(connection)
            for worker in workers:
                await worker.__aenter__()
            producer = asyncio.create_task(traffic.produce())
            try:
                await wait_until(lambda: len(traffic.completed) >= 50, timeout=10)
                started = time.monotonic()
                method = await asyncio.to_thread(cluster.migrate_slot, slot, target, atomic=atomic)
                migrated = time.monotonic() - started
                assert method == ("atomic" if atomic else "classic")
                added_before = len(traffic.acknowledged)
                await wait_until(lambda: len(traffic.acknowledged) >= added_before + 100, timeout=15)
                traffic.stopping.set()
                await producer
                ids = list(traffic.acknowledged)
                await wait_until(lambda: traffic.all_done(ids), timeout=20)
            finally:
                traffic.stopping.set()
                await producer
                for worker in workers:
                    await worker.close()
            counts = await queue.get_job_counts()
            figures = traffic.figures(ids, f"{method} slot migration under load")
            _report(figures, **{"migration s": round(migrated, 2)})
            assert cluster.node_for_key(base).port == target.port
            assert has_library(target), "loaded on the new owner by the first call there"
            assert traffic.failed_adds == [] and traffic.unconfirmed == []
            assert figures["lost"] == 0 and figures["duplicate terminal states"] == 0
            assert set(traffic.runs.values()) == {1}, "no job ran twice"
            assert counts["completed"] == len(ids) and counts["waiting"] == counts["active"] == 0
            await queue.obliterate(force=True)
    finally:
        if cluster.node_for_key(base).port != owner.port:
            cluster.migrate_slot(slot, owner)
        cluster.wait_ok()


async def test_calls_wait_while_a_slot_is_half_way_through_a_classic_migration(
    cluster: EmbeddedValkeyCluster, connection: glidemq.Connection, roles: None
) -> None:
    """The functions derive their keys from the key base; a node must not run one while part of
    the queue's keys has moved: the call waits (TRYAGAIN) until the slot has moved."""
    qname = qname_on(cluster)
    base = base_of(qname)
    slot = cluster.slot_of(base)
    owner = cluster.node_for_key(base)
    target = next(n for n in cluster.primaries() if n.port not in (owner.port, cluster.port))
    if not has_library(target):
        target.command("FUNCTION", "LOAD", library_source())  # so a call there could run at all
    async with glidemq.Queue(qname, connection=connection) as queue:
        first = await queue.add_bulk([("before", i) for i in range(3)])
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", cluster.node_id(owner))
        owner.command("CLUSTER", "SETSLOT", slot, "MIGRATING", cluster.node_id(target))
        held = [asyncio.ensure_future(queue.add("during", 1)), asyncio.ensure_future(queue.get_job_counts())]
        try:
            await asyncio.sleep(0.3)
            assert not any(call.done() for call in held), "nothing runs on the importing node's empty keyspace"
            assert target.command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
            owner.command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", base + "wait", base + "id")
            await asyncio.sleep(0.3)
            assert not any(call.done() for call in held), "nor on the part of the keys either node holds"
        finally:
            # finish the move: the rest of the keys, then the slot (REPLACE only matters if a call ran on the target)
            while keys := owner.command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
                owner.command("MIGRATE", target.host, target.port, "", 0, 5000, "REPLACE", "KEYS", *keys)
            for node in cluster.primaries():
                node.command("CLUSTER", "SETSLOT", slot, "NODE", cluster.node_id(target))
            cluster.wait_ok()
            during = await held[0]
            await held[1]
        assert cluster.node_for_key(base).port == target.port
        assert during.id not in {job.id for job in first}
        assert (await queue.get_job_counts())["waiting"] == 4
        await queue.obliterate(force=True)
    cluster.migrate_slot(slot, owner)
    cluster.wait_ok()


def test_migrate_slot_refuses_a_replica_and_leaves_the_slot_alone(cluster: EmbeddedValkeyCluster) -> None:
    base = base_of(qname_on(cluster))
    slot = cluster.slot_of(base)
    owner = cluster.node_for_key(base)
    elsewhere = next(r for p in cluster.primaries() if p.port != owner.port for r in cluster.replicas_of(p))
    with pytest.raises(glidemq.GlideMQError, match="failed"):
        cluster.migrate_slot(slot, elsewhere)  # not a primary
    assert cluster.migrate_slot(slot, owner) == "none"
    cluster.wait_ok()
    assert cluster.node_for_key(base).port == owner.port


# --- failover ------------------------------------------------------------------------------------


async def test_graceful_failover_under_load_with_durable_adds(
    cluster: EmbeddedValkeyCluster, connection: glidemq.Connection, roles: None
) -> None:
    qname = qname_on(cluster)
    base = base_of(qname)
    owner = cluster.node_for_key(base)
    (replica,) = cluster.replicas_of(owner)
    async with glidemq.Queue(qname, connection=connection) as queue:
        traffic = Traffic(queue, durability=DURABLE)
        workers = traffic.workers(connection)
        for worker in workers:
            await worker.__aenter__()
        producer = asyncio.create_task(traffic.produce())
        try:
            await wait_until(lambda: len(traffic.completed) >= 50, timeout=10)
            started = time.monotonic()
            await asyncio.to_thread(cluster.failover, replica)
            promoted = time.monotonic() - started
            added_before = len(traffic.acknowledged)
            await wait_until(lambda: len(traffic.acknowledged) >= added_before + 100, timeout=15)
            traffic.stopping.set()
            await producer
            ids = list(traffic.acknowledged)
            await wait_until(lambda: traffic.all_done(ids), timeout=20)
        finally:
            traffic.stopping.set()
            await producer
            for worker in workers:
                await worker.close()
        figures = traffic.figures(ids, "graceful failover (CLUSTER FAILOVER), durable adds")
        _report(figures, **{"unconfirmed adds": len(traffic.unconfirmed), "failover s": round(promoted, 2)})
        assert cluster.node_for_key(base).port == replica.port
        assert traffic.failed_adds == []
        assert figures["lost"] == 0 and figures["duplicate terminal states"] == 0
        assert set(traffic.runs.values()) == {1}, "no job ran twice"
        written = set(ids) | set(traffic.unconfirmed)
        assert set(traffic.completed) == written, "every job written, confirmed or not, completed once"
        await queue.obliterate(force=True)


async def test_primary_killed_after_durable_adds(cluster: EmbeddedValkeyCluster, roles: None) -> None:
    """Adds acknowledged with replicas=1 are on the replica that takes over; plain adds are
    counted alongside (replication is asynchronous: they may be lost, on loopback rarely are).
    An add in flight at the kill may raise after request_timeout: it was not acknowledged."""
    connection = glidemq.Connection(cluster.url, request_timeout=10)
    qname = qname_on(cluster)
    base = base_of(qname)
    owner = cluster.node_for_key(base)
    (replica,) = cluster.replicas_of(owner)
    async with glidemq.Queue(qname, connection=connection) as queue:
        durable = Traffic(queue, durability=DURABLE)
        plain = Traffic(queue)
        producers = [asyncio.create_task(durable.produce()), asyncio.create_task(plain.produce())]
        try:
            await wait_until(lambda: len(durable.acknowledged) >= 100 and len(plain.acknowledged) >= 100)
            cluster.kill(owner)
            killed = time.monotonic()
            for traffic in (durable, plain):
                traffic.stopping.set()
            while True:  # an add issued after the kill, retried until the replica took over
                try:
                    await queue.add("after the kill", 0)
                    break
                except glidemq.ConnectionFailedError:
                    continue
            recovered = time.monotonic() - killed
        finally:
            for traffic in (durable, plain):
                traffic.stopping.set()
            await asyncio.gather(*producers)
        assert cluster.node_for_key(base).port == replica.port
        durable_ids, plain_ids = list(durable.acknowledged), list(plain.acknowledged)
        missing = [i for i in durable_ids if await queue.get_job(i) is None]
        plain_missing = [i for i in plain_ids if await queue.get_job(i) is None]
        workers = durable.workers(connection)
        for worker in workers:
            worker.on("completed", plain.on_completed)
            await worker.__aenter__()
        try:
            await wait_until(lambda: durable.all_done(durable_ids), timeout=20)
            present = [i for i in plain_ids if i not in plain_missing]
            await wait_until(lambda: plain.all_done(present), timeout=20)
        finally:
            for worker in workers:
                await worker.close()
        figures = durable.figures(durable_ids, "primary SIGKILLed, durable adds (replicas=1)")
        _report(
            figures,
            **{
                "missing on the promoted replica": len(missing), "unconfirmed adds": len(durable.unconfirmed),
                "durable adds that raised": len(durable.failed_adds), "plain adds that raised": len(plain.failed_adds),
                "plain adds acknowledged": len(plain_ids), "plain adds lost": len(plain_missing),
                "first add after the kill s": round(recovered, 2),
            },
        )
        assert missing == [], "every add acknowledged by a replica is on the promoted replica"
        assert figures["lost"] == 0 and figures["duplicate terminal states"] == 0
        assert all(isinstance(e, glidemq.ConnectionFailedError) for e in durable.failed_adds + plain.failed_adds)
        await queue.obliterate(force=True)
