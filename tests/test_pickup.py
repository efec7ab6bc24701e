"""An idle worker's wait takes its first jobs in the same trip, and hands them back when the
reply of that wait is lost."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import glidemq
from glidemq._codec import decode_active, encode_finished, pack
from glidemq._pickup import new_claim
from glidemq.testing import EmbeddedValkey

from .tcp_proxy import TcpProxy
from .worker_helpers import replay_events, wait_until


async def connections(raw: Any) -> dict[str, dict[str, str]]:
    """CLIENT LIST by client name (the last connection of each name)."""
    text = (await raw.custom_command(["CLIENT", "LIST"])).decode()
    found: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
        found[fields.get("name", "")] = fields
    return found


async def in_state(job: glidemq.Job, state: str) -> bool:
    return await job.get_state() == state


async def waiting_on_the_marker(raw: Any) -> dict[str, str]:
    """The worker's blocking connection, once it is blocked on the marker."""
    found: dict[str, str] = {}

    async def blocked() -> bool:
        found.update((await connections(raw)).get("glidemq-worker-blocking", {}))
        return found.get("cmd") == "bzpopmin" and "b" in found.get("flags", "")

    await wait_until(blocked, timeout=10)
    return found


class Monitor:
    """The server's MONITOR feed: which connection (address) ran which command."""

    def __init__(self, server: EmbeddedValkey) -> None:
        self.server = server
        self.lines: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Monitor:
        reader, self._writer = await asyncio.open_connection(self.server.host, self.server.port)
        self._writer.write(b"MONITOR\r\n")
        assert await reader.readline() == b"+OK\r\n"

        async def read() -> None:
            while line := await reader.readline():
                self.lines.append(line.decode(errors="replace"))

        self._task = asyncio.create_task(read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._writer.close()
        assert self._task is not None
        self._task.cancel()

    def takes_by(self, addr: str) -> int:
        return sum(1 for line in self.lines if f" {addr}]" in line and '"fcall" "glidemq_' in line.lower()
                   and '_take"' in line)


async def test_a_job_added_to_an_idle_worker_is_taken_behind_the_wait(
    server: EmbeddedValkey, queue: glidemq.Queue, raw: Any, url: str, qname: str
) -> None:
    """No take follows the wake-up: the blocking connection runs it right behind the wait, and
    the worker's other connection only finishes the jobs."""
    async with glidemq.Worker(qname, lambda job: job.data * 2, connection=url, concurrency=4):
        blocking = (await waiting_on_the_marker(raw))["addr"]
        main = (await connections(raw))["glidemq-worker"]["addr"]
        async with Monitor(server) as monitor:
            jobs = []
            for i in range(5):
                jobs.append(await queue.add("double", i))
                await wait_until(lambda: in_state(jobs[-1], "completed"), timeout=10)
                await waiting_on_the_marker(raw)
            await asyncio.sleep(0.1)
    assert [(await queue.get_job(job.id)).return_value for job in jobs] == [0, 2, 4, 6, 8]  # type: ignore[union-attr]
    # each pickup: the take behind the wait (a wait that timed out meanwhile adds one more)
    assert monitor.takes_by(blocking) >= 5
    # the worker's own connection: one take per job, finishing it (none to fetch it)
    assert monitor.takes_by(main) == 5


async def test_release_claim_hands_the_jobs_back_first_and_fences_the_claim(queue: glidemq.Queue) -> None:
    first = await queue.add_bulk([("c", i) for i in range(3)])
    now_ms, _, _, records, _, _ = await queue._ctx.call("take", ["30000", "2", "", "", "cfeed"])
    taken = decode_active(records, now_ms)
    assert [job[0] for job in taken] == [first[0].id, first[1].id]
    assert {job[1] for job in taken} == {"cfeed"}  # leased under the claim
    assert (await queue.get_job_counts())["active"] == 2

    released = await queue._ctx.call("release_claim", ["cfeed"])
    assert sorted(x.decode() for x in released) == sorted([first[0].id, first[1].id])
    counts = await queue.get_job_counts()
    assert (counts["active"], counts["waiting"]) == (0, 3)
    assert await queue._ctx.call("release_claim", ["cfeed"]) == []  # nothing left under it

    # the claim no longer finishes them; no attempt was used; they run first, in their order
    rows = [(job[0], "cfeed", "c", pack(None), "1", -1) for job in taken]
    _, _, statuses, _, _, _ = await queue._ctx.call("take", ["30000", "0", encode_finished(rows), ""])
    assert statuses == [0, 0]
    for job in first[:2]:
        fresh = await queue.get_job(job.id)
        assert fresh is not None and fresh.attempts_made == 0 and await fresh.get_state() == "waiting"
    now_ms, _, _, records, _, _ = await queue._ctx.call("take", ["30000", "3", "", ""])
    assert [job[0] for job in decode_active(records, now_ms)] == [first[0].id, first[1].id, first[2].id]


async def test_a_take_finishes_the_leases_it_holds_and_skips_the_stale_ones(url: str, queue: glidemq.Queue) -> None:
    jobs = await queue.add_bulk([("c", i) for i in range(4)])
    now_ms, _, _, records, _, _ = await queue._ctx.call("take", ["30000", "4", "", "", "tmine"])
    taken = [job[0] for job in decode_active(records, now_ms)]
    assert taken == [job.id for job in jobs]
    rows = [
        (taken[0], "tmine", "c", pack({"v": 0}), "1", -1),
        (taken[1], "tother", "c", pack(1), "1", -1),  # not its lease: stale
        (taken[2], "tmine", "c", pack(None), "1", -1),
        (taken[3], "tmine", "c", pack(3), "1", 0),  # another group: removed on completion
    ]
    _, _, statuses, _, _, _ = await queue._ctx.call("take", ["30000", "0", encode_finished(rows), ""])
    assert statuses == [1, 0, 1, 1]
    states = [await job.get_state() for job in jobs]
    assert states == ["completed", "active", "completed", "unknown"]
    assert await queue._ctx.call("metrics", []) == [3, 0]
    done = [await queue.get_job(job.id) for job in jobs[:3:2]]
    assert [job.return_value for job in done if job] == [{"v": 0}, None]
    assert sorted(job.id for job in await queue.get_jobs("completed")) == sorted([jobs[0].id, jobs[2].id])
    completed = [e for e in await replay_events(url, queue.name) if e.event == "completed"]
    assert [(e.job_id, e.data["return_value"]) for e in completed] == [
        (jobs[0].id, {"v": 0}), (jobs[2].id, None), (jobs[3].id, 3)
    ]


def test_claim_tokens_never_repeat_and_hold_no_colon() -> None:
    mine = [new_claim() for _ in range(5000)]
    assert len(set(mine)) == len(mine)
    assert all(":" not in token and "*" not in token for token in mine)


def test_a_forked_child_makes_claim_tokens_of_its_own() -> None:
    before = new_claim()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: report two tokens, then leave at once
        os.write(write, f"{new_claim()} {new_claim()}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split()
    os.waitpid(child, 0)
    ours = [new_claim(), new_claim()]
    assert len(theirs) == 2 and not set(theirs) & set(ours)
    assert theirs[0][:17] != before[:17] and ours[0][:17] == before[:17], "the child's prefix is new"


async def test_every_take_leases_under_a_token_its_worker_made(url: str, queue: glidemq.Queue, raw: Any) -> None:
    release = asyncio.Event()

    async def hold(job: glidemq.Job) -> None:
        await release.wait()

    await queue.add_bulk([("h", i) for i in range(4)])
    async with (
        glidemq.Worker(queue.name, hold, connection=url, concurrency=2),
        glidemq.Worker(queue.name, hold, connection=url, concurrency=2),
    ):
        await wait_until(lambda: _active_is(queue, 4))
        members = await raw.custom_command(["ZRANGE", f"glidemq:{{{queue.name}}}:active", "0", "-1"])
        tokens = {m.decode().rsplit(":", 1)[1] for m in members} - {"-"}  # "-": the set's anchor
        assert len(tokens) >= 2, "two workers never share a lease token"
        assert all(token.startswith("t") and len(token) > 17 for token in tokens)
        release.set()
        await wait_until(lambda: _counts_are(queue, completed=4))


async def _active_is(queue: glidemq.Queue, n: int) -> bool:
    return (await queue.get_job_counts())["active"] == n


async def _counts_are(queue: glidemq.Queue, completed: int) -> bool:
    return (await queue.get_job_counts())["completed"] == completed


async def test_closing_a_worker_whose_wait_reply_is_lost_hands_the_job_back(
    server: EmbeddedValkey, queue: glidemq.Queue, raw: Any, qname: str
) -> None:
    """The take behind the wait ran (the job is active) but its reply never arrived: closing
    the worker hands the job back at once, rather than leaving it to the stall check."""
    ran: list[str] = []
    with TcpProxy(server.host, server.port) as proxy:
        worker = glidemq.Worker(qname, lambda job: ran.append(job.id), connection=proxy.url, concurrency=2)
        async with worker:
            await waiting_on_the_marker(raw)
            assert proxy.blocking_connections == 1
            proxy.swallow_blocking_replies = True
            job = await queue.add("lost", {"n": 1})
            await wait_until(lambda: in_state(job, "active"), timeout=10)
            await asyncio.sleep(0.2)  # the reply would have arrived by now
            assert ran == []
        # closed: the wait's outcome was unknown, so its claim was released
        assert await job.get_state() == "waiting"
        fresh = await queue.get_job(job.id)
        assert fresh is not None and fresh.attempts_made == 0
        assert (await queue.get_job_counts())["active"] == 0
    async with glidemq.Worker(qname, lambda job: ran.append(job.id), connection=queue._ctx.connection):
        await wait_until(lambda: in_state(job, "completed"), timeout=10)
    assert ran == [job.id]


async def test_pausing_an_idle_worker_ends_its_wait_before_it_can_take_a_job(
    queue: glidemq.Queue, raw: Any, url: str, qname: str
) -> None:
    ran: list[str] = []
    errors: list[BaseException] = []
    worker = glidemq.Worker(qname, lambda job: ran.append(job.id), connection=url)
    worker.on("error", errors.append)
    async with worker:
        await waiting_on_the_marker(raw)
        await worker.pause()
        job = await queue.add("later", None)
        await asyncio.sleep(0.5)
        assert await job.get_state() == "waiting"
        assert not [e for e in await replay_events(url, qname) if e.event == "active"]
        await worker.resume()
        await wait_until(lambda: in_state(job, "completed"), timeout=10)
    assert ran == [job.id]
    assert errors == []  # ending the wait is no error
