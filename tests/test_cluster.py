"""glidemq on a real Valkey Cluster (3 primaries, 3 replicas; see ``EmbeddedValkeyCluster``).

The first part runs a selection of the standalone integration tests again, unchanged, with
``url`` (and ``raw``) pointing at the cluster. The second part checks what only a cluster has:
slots, routing, redirections, a node that lost the library, a restarted primary, a failover.
The failover test runs last: it changes which nodes are primaries.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from glide import GlideClusterClient, GlideClusterClientConfiguration, NodeAddress

import glidemq
from glidemq._thread_client import ThreadClient
from glidemq.functions import LIBRARY_NAME
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster

from . import test_events, test_job, test_queue, test_worker, test_worker_lifecycle
from .worker_helpers import wait_until


@pytest.fixture
def url(cluster: EmbeddedValkeyCluster) -> str:
    return cluster.url


@pytest.fixture
async def raw(cluster: EmbeddedValkeyCluster) -> AsyncIterator[GlideClusterClient]:
    """A plain glide cluster client, for looking at keys behind glidemq's back."""
    client = await GlideClusterClient.create(
        GlideClusterClientConfiguration([NodeAddress(cluster.host, cluster.port)])
    )
    yield client
    await client.close()


# --- the standalone tests, again on the cluster ------------------------------------------------

REUSED = {
    test_queue: [
        "test_add_returns_a_job", "test_add_with_every_option", "test_custom_job_id_makes_add_idempotent",
        "test_same_custom_id_twice_in_one_bulk", "test_fifo_by_default", "test_priority_order", "test_lifo",
        "test_delayed_job_waits_then_runs", "test_delayed_jobs_run_in_due_order",
        "test_get_jobs_ranges_are_inclusive", "test_get_jobs_completed_and_failed_newest_first",
        "test_get_jobs_several_states_and_active", "test_get_job_counts_and_count",
        "test_pause_stops_running_worker_and_resume_restarts", "test_drain", "test_drain_leaves_no_job_keys",
        "test_clean_completed_with_grace_and_limit", "test_clean_failed_waiting_delayed",
        "test_retry_jobs_failed_with_count", "test_retry_jobs_completed", "test_remove",
        "test_obliterate_removes_every_key", "test_obliterate_refuses_with_active_job_unless_forced",
        "test_add_bulk_with_options", "test_get_job_of_unknown_id",
    ],
    test_job: [
        "test_fields_of_a_completed_job", "test_fields_of_a_failed_job", "test_get_state_values",
        "test_attempts_and_fixed_backoff", "test_timeout_fails_and_cancels_processor",
        "test_remove_on_complete_keeps_newest", "test_update_progress_inside_processor",
        "test_log_and_get_logs", "test_wait_until_finished_returns_value",
        "test_wait_until_finished_for_already_finished_job", "test_wait_until_finished_timeout",
        "test_wait_until_finished_across_retries", "test_job_remove", "test_job_retry", "test_job_promote",
    ],
    test_worker: [
        "test_async_processor_is_awaited_and_its_value_stored", "test_sync_processor_runs_off_the_event_loop",
        "test_unrecoverable_error_fails_at_once", "test_retry_with_fixed_backoff_goes_delayed_then_runs_again",
        "test_failed_event_fires_on_every_attempt", "test_concurrency_is_respected_and_used",
        "test_events_have_the_documented_arguments", "test_drained_fires_when_the_queue_runs_empty",
    ],
    test_events: [
        "test_job_lifecycle_events", "test_failed_event_data", "test_delayed_events",
        "test_paused_resumed_and_drained_events", "test_default_start_skips_history_and_zero_replays_it",
        "test_resume_from_an_event_id", "test_stalled_event",
    ],
    test_worker_lifecycle: [
        "test_close_of_an_idle_worker_is_quick", "test_close_lets_active_jobs_finish",
        "test_close_with_timeout_requeues_running_jobs_without_using_an_attempt",
        "test_queue_pause_stops_every_worker", "test_heartbeats_keep_the_lease_while_the_event_loop_is_blocked",
    ],
}
for _module, _names in REUSED.items():
    for _name in _names:
        globals()[_name] = getattr(_module, _name)  # collected here, so `url` is the cluster's


# --- helpers -----------------------------------------------------------------------------------


def base_of(qname: str) -> str:
    return f"glidemq:{{{qname}}}:"


def qname_on(cluster: EmbeddedValkeyCluster, *, off_seed: bool = True) -> str:
    """A fresh queue name whose slot is served by a primary other than the seed node of the URL."""
    while True:
        name = "q" + uuid.uuid4().hex[:12]
        if not off_seed or cluster.node_for_key(base_of(name)).port != cluster.port:
            return name


def has_library(node: EmbeddedValkey) -> bool:
    return bool(node.command("FUNCTION", "LIST", "LIBRARYNAME", LIBRARY_NAME))


def client_commands(node: EmbeddedValkey, client_name: str) -> list[str]:
    """The last command of every connection named ``client_name`` on ``node``."""
    lines = node.command("CLIENT", "LIST").decode().splitlines()
    fields = [dict(f.split("=", 1) for f in line.split() if "=" in f) for line in lines]
    return [f.get("cmd", "") for f in fields if f.get("name") == client_name]


async def echo(job: glidemq.Job) -> Any:
    return job.data


# --- slots and routing ---------------------------------------------------------------------------


async def test_each_queue_keeps_its_keys_in_one_slot_and_queues_spread(
    cluster: EmbeddedValkeyCluster, url: str, raw: GlideClusterClient
) -> None:
    names = ["q" + uuid.uuid4().hex[:12] for _ in range(20)]
    queues = [glidemq.Queue(name, connection=url) for name in names]
    first: dict[str, glidemq.Job] = {}
    try:
        for queue in queues:
            job = first[queue.name] = await queue.add("work", {"n": 1}, priority=1)
            await queue.add("later", None, delay=60)
            await job.log("a line")
            await queue.pause()
            await queue.resume()
        # a worker per node, all at once: each waits on its own queue's node
        by_node: dict[int, str] = {}
        for name in names:
            by_node.setdefault(cluster.node_for_key(base_of(name)).port, name)
        assert len(by_node) > 1, "20 queues landed on one node"
        workers = [glidemq.Worker(name, echo, connection=url) for name in by_node.values()]
        for worker in workers:
            await worker.__aenter__()
        try:
            for name in by_node.values():
                assert await first[name].wait_until_finished(timeout=10) == {"n": 1}
        finally:
            for worker in workers:
                await worker.close()
        for name in names:
            keys = await raw.custom_command(["KEYS", f"glidemq:{{{name}}}:*"])
            assert len(keys) >= 5
            slots = {await raw.custom_command(["CLUSTER", "KEYSLOT", k]) for k in keys}
            assert slots == {cluster.slot_of(base_of(name))}, f"keys of {name} span slots {slots}"
    finally:
        for queue in queues:
            await queue.obliterate(force=True)
            await queue.close()


async def test_blocking_reads_wait_on_the_node_of_the_queue(cluster: EmbeddedValkeyCluster, url: str) -> None:
    qname = qname_on(cluster)
    owner = cluster.node_for_key(base_of(qname))
    picked: list[float] = []
    worker = glidemq.Worker(qname, echo, connection=url)
    worker.on("active", lambda job: picked.append(time.monotonic()))
    async with glidemq.Queue(qname, connection=url) as queue, worker:
        async with glidemq.QueueEvents(qname, connection=url) as events:
            pending = asyncio.ensure_future(events.__anext__())

            def blocked() -> bool:
                return "bzpopmin" in client_commands(owner, "glidemq-worker-blocking") and (
                    "xread" in client_commands(owner, "glidemq-events")
                )

            await wait_until(blocked, timeout=10)
            added = time.monotonic()
            job = await queue.add("ping", "pong")
            assert await job.wait_until_finished(timeout=5) == "pong"
            # it blocked just now: a worker that only polled would take the job when its 5 s block ran out
            assert picked[0] - added < 2.5, "the marker woke the worker, no polling"
            first = await asyncio.wait_for(pending, 5)
            assert (first.event, first.job_id) == ("added", job.id)


async def test_job_logs_and_server_time_come_from_the_queue_node(cluster: EmbeddedValkeyCluster, url: str) -> None:
    qname = qname_on(cluster)
    async with glidemq.Queue(qname, connection=url) as queue:
        job = await queue.add("logged", None)
        for i in range(20):  # routed by key every time, never to a random node
            await job.log(f"line {i}")
        assert await job.get_logs() == [f"line {i}" for i in range(20)]
        assert await queue.clean(0, state="waiting") == [job.id]


async def test_heartbeat_client_follows_moved_and_ask(cluster: EmbeddedValkeyCluster) -> None:
    qname = qname_on(cluster)
    base = base_of(qname)
    owner = cluster.node_for_key(base)
    connection = glidemq.Connection(cluster.url)
    client = ThreadClient(connection)
    try:
        # MOVED: the seed node does not serve the queue; the client moves to the owner and stays
        assert list(await client.fcall("counts", base, [])) == [0, 0, 0, 0, 0, 0, 0]
        assert client._address == (owner.host, owner.port)
        # ASK: the slot is being migrated to another primary; the queue's keys are not there
        # yet, so the importing node refuses to run the call (TRYAGAIN) rather than run it on
        # part of the keys; the heartbeat tries again on its next tick
        target = next(n for n in cluster.primaries() if n.port not in (owner.port, cluster.port))
        slot = cluster.slot_of(base)
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", cluster.node_id(owner))
        owner.command("CLUSTER", "SETSLOT", slot, "MIGRATING", cluster.node_id(target))
        try:
            client._disconnect()
            with pytest.raises(glidemq.ServerError, match="TRYAGAIN"):
                await client.fcall("counts", base, [])
            assert client._address == (target.host, target.port), "followed ASK"
        finally:
            for node in (owner, target):
                node.command("CLUSTER", "SETSLOT", slot, "STABLE")
        # back home: the importing node redirects with MOVED
        assert list(await client.fcall("counts", base, [])) == [0, 0, 0, 0, 0, 0, 0]
        assert client._address == (owner.host, owner.port)
    finally:
        await client.close()


async def test_heartbeats_keep_leases_on_a_node_other_than_the_seed(cluster: EmbeddedValkeyCluster, url: str) -> None:
    qname = qname_on(cluster)
    runs: list[str] = []
    stalled: list[str] = []
    errors: list[BaseException] = []

    async def hog(job: glidemq.Job) -> str:
        runs.append(job.id)
        time.sleep(2.5)  # blocks the event loop: only the heartbeat thread renews the lease
        return "hogged"

    worker = glidemq.Worker(qname, hog, connection=url, lock_duration=1, stalled_interval=0.3)
    worker.on("stalled", stalled.append)
    worker.on("error", errors.append)
    async with glidemq.Queue(qname, connection=url) as queue, worker:
        job = await queue.add("blocking", None)
        assert await job.wait_until_finished(timeout=15) == "hogged"
    assert runs == [job.id] and stalled == [] and errors == []


# --- a node without the library, a primary restarted empty, a failover ---------------------------


async def test_library_deleted_on_one_primary_is_loaded_again(cluster: EmbeddedValkeyCluster, url: str) -> None:
    qname = qname_on(cluster, off_seed=False)
    owner = cluster.node_for_key(base_of(qname))
    async with glidemq.Queue(qname, connection=url) as queue:
        await queue.add("before", None)
        others = [n for n in cluster.primaries() if n.port != owner.port]
        had = {n.port: has_library(n) for n in others}
        owner.command("FUNCTION", "DELETE", LIBRARY_NAME)
        assert not has_library(owner)
        job = await queue.add("after", 2)
        async with glidemq.Worker(qname, echo, connection=url):
            assert await job.wait_until_finished(timeout=10) == 2
        assert has_library(owner)
        assert {n.port: has_library(n) for n in others} == had, "only the node that lacked it"
        assert (await queue.get_job_counts())["completed"] == 2


async def test_primary_restarted_empty_producers_and_workers_carry_on(
    cluster: EmbeddedValkeyCluster, url: str
) -> None:
    qname = qname_on(cluster)
    owner = cluster.node_for_key(base_of(qname))
    errors: list[BaseException] = []
    worker = glidemq.Worker(qname, echo, connection=url, lock_duration=2, stalled_interval=0.5)
    worker.on("error", errors.append)
    async with glidemq.Queue(qname, connection=url) as queue, worker:
        first = await queue.add("first", 1)
        assert await first.wait_until_finished(timeout=10) == 1
        cluster.restart(owner)  # same port and node id, no data, no library: still the primary
        assert not has_library(owner)
        started = time.monotonic()
        second = await queue.add("second", 2)  # waits while the node rejoins, reloads, retries
        assert await second.wait_until_finished(timeout=15) == 2
        print(f"\nCLUSTER restart: a primary restarted empty served again after {time.monotonic() - started:.2f}s")
        counts = await queue.get_job_counts()
        assert counts["completed"] == 1, "the restarted node lost its data: only the second job is there"
        assert has_library(owner)
    cluster.wait_ok()
    assert cluster.node_for_key(base_of(qname)).port == owner.port


async def test_failover_loses_no_job_and_keeps_leases(cluster: EmbeddedValkeyCluster, url: str) -> None:
    qname = qname_on(cluster)
    owner = cluster.node_for_key(base_of(qname))
    (replica,) = cluster.replicas_of(owner)
    connection = glidemq.Connection(url, request_timeout=30)
    runs: dict[str, int] = {}
    stalled: list[str] = []

    async def slow(job: glidemq.Job) -> Any:
        runs[job.id] = runs.get(job.id, 0) + 1
        await asyncio.sleep(job.data)
        return job.data

    worker = glidemq.Worker(qname, slow, connection=connection, concurrency=4, lock_duration=10, stalled_interval=1)
    worker.on("stalled", stalled.append)
    try:
        async with glidemq.Queue(qname, connection=connection) as queue, worker:
            long_job = await queue.add("outlives its first lease", 12)
            await wait_until(lambda: runs.get(long_job.id) == 1, timeout=10)
            waiting = await queue.add_bulk([("after", 0.01) for _ in range(20)])
            await asyncio.sleep(0.5)  # replicated to the replica
            cluster.kill(owner)
            killed = time.monotonic()
            late = await queue.add("during the failover", 0.01)  # retried until the replica took over
            print(f"\nCLUSTER failover: an add issued right after the kill returned after "
                  f"{time.monotonic() - killed:.2f}s")
            for job in [*waiting, late]:
                assert await job.wait_until_finished(timeout=30) == 0.01
            assert await long_job.wait_until_finished(timeout=30) == 12
            assert cluster.node_for_key(base_of(qname)).port == replica.port
        assert stalled == [], "the heartbeat renewed the lease on the new primary"
        assert all(count == 1 for count in runs.values()), runs
        assert len(runs) == 22
    finally:
        cluster.restart(owner)  # comes back as a replica of the new primary
        cluster.wait_ok()
