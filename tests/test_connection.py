"""Connection: URL forms, defaults, secrecy of passwords, unreachable servers, ACL and cluster."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest
from glide import GlideClient, GlideClientConfiguration, NodeAddress

import glidemq
from glidemq.testing import EmbeddedValkey, free_port

from .conftest import keyspace

SECRET = "s3cr3t-Pa55word"


# --- URL parsing ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("url", "tls"),
    [
        ("valkey://example.org:7000", False),
        ("redis://example.org:7000", False),
        ("valkeys://example.org:7000", True),
        ("rediss://example.org:7000", True),
    ],
)
def test_url_schemes(url: str, tls: bool) -> None:
    conn = glidemq.Connection(url)
    assert conn.host == "example.org"
    assert conn.port == 7000
    assert conn.tls is tls
    assert conn.cluster is False
    assert conn.db == 0


def test_url_with_every_part() -> None:
    conn = glidemq.Connection(f"valkey://alice:{SECRET}@cache.local:6380/3")
    assert (conn.host, conn.port, conn.db) == ("cache.local", 6380, 3)
    assert conn.username == "alice"
    assert conn.password == SECRET


def test_url_password_only_and_percent_encoding() -> None:
    conn = glidemq.Connection("redis://:p%40ss%3Aword@h:1")
    assert conn.password == "p@ss:word"
    assert not conn.username


def test_url_defaults() -> None:
    conn = glidemq.Connection("valkey://somehost")
    assert conn.host == "somehost"
    assert conn.port == 6379
    assert conn.db == 0
    assert conn.username is None and conn.password is None
    assert conn.request_timeout == 5.0


@pytest.mark.parametrize("query", ["?cluster=true", "?cluster=True", "?cluster=1"])
def test_url_cluster_flag(query: str) -> None:
    assert glidemq.Connection("valkey://h:7000" + query).cluster is True


def test_url_cluster_false_and_keyword() -> None:
    assert glidemq.Connection("valkey://h:7000?cluster=false").cluster is False
    assert glidemq.Connection("valkey://h:7000", cluster=True).cluster is True


def test_keywords_without_url() -> None:
    conn = glidemq.Connection(
        host="10.0.0.1", port=7001, tls=True, username="u", password=SECRET, db=5, request_timeout=1.5
    )
    assert (conn.host, conn.port, conn.tls, conn.username, conn.password, conn.db, conn.request_timeout) == (
        "10.0.0.1", 7001, True, "u", SECRET, 5, 1.5,
    )


def test_keywords_override_url() -> None:
    conn = glidemq.Connection("valkey://a:b@h1:1000/1", host="h2", port=2000, password="other", db=4)
    assert (conn.host, conn.port, conn.password, conn.db, conn.username) == ("h2", 2000, "other", 4, "a")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "tcp://localhost:6379",
        "unix:///tmp/valkey.sock",
        "localhost:6379",
        "",
        "valkey://localhost:notaport",
        "valkey://localhost:6379/notadb",
    ],
)
def test_bad_urls_rejected(url: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Connection(url)


def test_bad_url_scheme_rejected_by_components(qname: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Queue(qname, connection="http://127.0.0.1:6379")
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, connection="memcached://127.0.0.1:6379")
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.QueueEvents(qname, connection="ftp://127.0.0.1:6379")


@pytest.mark.parametrize("connection", [6379, 1.5, object(), b"valkey://127.0.0.1:6379"])
def test_connection_of_wrong_type_rejected(qname: str, connection: object) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Queue(qname, connection=connection)  # type: ignore[arg-type]


# --- passwords never shown -----------------------------------------------------------------

def test_password_not_in_repr_or_str() -> None:
    conn = glidemq.Connection(f"valkey://alice:{SECRET}@h:6379/2")
    assert SECRET not in repr(conn)
    assert SECRET not in str(conn)
    assert SECRET not in conn.url
    keyword = glidemq.Connection(host="h", password=SECRET)
    assert SECRET not in repr(keyword)
    assert SECRET not in str(keyword)


async def test_password_not_in_component_reprs(qname: str) -> None:
    url = f"valkey://alice:{SECRET}@127.0.0.1:6379"
    conn = glidemq.Connection(url)
    for component in (
        glidemq.Queue(qname, connection=url),
        glidemq.Queue(qname, connection=conn),
        glidemq.Worker(qname, lambda job: None, connection=url),
        glidemq.QueueEvents(qname, connection=conn),
    ):
        assert SECRET not in repr(component)
        assert SECRET not in str(component)
        await component.close()


def _no_secret_anywhere(exc: BaseException) -> None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        assert SECRET not in str(current)
        assert SECRET not in repr(current)
        for arg in current.args:
            assert SECRET not in str(arg)
        current = current.__cause__ or current.__context__


async def test_unreachable_server_raises_connection_failed() -> None:
    port = free_port()
    conn = glidemq.Connection(f"valkey://bob:{SECRET}@127.0.0.1:{port}", request_timeout=0.5)
    async with glidemq.Queue("unreachable", connection=conn) as queue:
        started = time.monotonic()
        with pytest.raises(glidemq.ConnectionFailedError) as info:
            await queue.add("job", {"n": 1})
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 5, "waits about request_timeout, not forever and not zero"
    assert isinstance(info.value, glidemq.GlideMQError)
    assert info.value.__cause__ is not None, "the client error is chained with raise ... from"
    assert not isinstance(info.value.__cause__, glidemq.GlideMQError)
    _no_secret_anywhere(info.value)


@pytest.mark.parametrize("call", ["get_job_counts", "count", "get_job", "pause", "drain", "obliterate"])
async def test_every_producer_call_raises_connection_failed(call: str) -> None:
    conn = glidemq.Connection(f"valkey://:{SECRET}@127.0.0.1:{free_port()}", request_timeout=0.5)
    queue = glidemq.Queue("unreachable", connection=conn)
    try:
        with pytest.raises(glidemq.ConnectionFailedError) as info:
            if call == "get_job":
                await queue.get_job("some-id")
            else:
                await getattr(queue, call)()
        assert info.value.__cause__ is not None
        _no_secret_anywhere(info.value)
    finally:
        await queue.close()


async def test_worker_errors_and_logs_hide_password(
    server: EmbeddedValkey, qname: str, acl_user: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = SECRET + "-wrong"
    url = f"valkey://{acl_user}:{wrong}@127.0.0.1:{server.port}"
    errors: list[BaseException] = []
    caplog.set_level(logging.DEBUG)
    worker = glidemq.Worker(qname, lambda job: None, connection=glidemq.Connection(url, request_timeout=0.3))
    worker.on("error", errors.append)
    runner = asyncio.ensure_future(worker.run())
    await asyncio.sleep(1.5)
    await worker.close()
    await asyncio.wait_for(runner, 10)
    assert errors, "the worker reported its connection trouble"
    for exc in errors:
        assert isinstance(exc, glidemq.GlideMQError)
        _no_secret_anywhere(exc)
    assert wrong not in caplog.text and SECRET not in caplog.text
    assert SECRET not in repr(worker)


@pytest.fixture
async def acl_user(raw: GlideClient) -> AsyncIterator[str]:
    """A user 'alice' with password SECRET and every right."""
    await raw.custom_command(["ACL", "SETUSER", "alice", "on", f">{SECRET}", "~*", "&*", "+@all"])
    yield "alice"
    await raw.custom_command(["ACL", "DELUSER", "alice"])


async def test_wrong_password_error_hides_password(server: EmbeddedValkey, qname: str, acl_user: str) -> None:
    wrong = SECRET + "-wrong"
    conn = glidemq.Connection(f"valkey://{acl_user}:{wrong}@127.0.0.1:{server.port}", request_timeout=0.5)
    async with glidemq.Queue(qname, connection=conn) as queue:
        with pytest.raises(glidemq.GlideMQError) as info:
            await queue.add("job")
    assert info.value.__cause__ is not None
    text = "".join(str(e) + repr(e) for e in (info.value, info.value.__cause__))
    assert wrong not in text and SECRET not in text


async def test_username_and_password_from_url_authenticate(
    server: EmbeddedValkey, raw: GlideClient, qname: str, acl_user: str
) -> None:
    url = f"valkey://{acl_user}:{SECRET}@127.0.0.1:{server.port}"
    async with glidemq.Queue(qname, connection=url) as queue:
        job = await queue.add("job", {"a": 1})
        assert (await queue.get_job(job.id)).data == {"a": 1}  # type: ignore[union-attr]
    assert await keyspace(raw, qname)


async def test_url_db_selects_database(server: EmbeddedValkey, raw: GlideClient, qname: str) -> None:
    async with glidemq.Queue(qname, connection=f"{server.url}/3") as queue:
        job = await queue.add("job", "in-db-3")
        assert (await queue.get_job(job.id)).data == "in-db-3"  # type: ignore[union-attr]
    assert await keyspace(raw, qname) == {}, "nothing written to db 0"
    db3 = await GlideClient.create(GlideClientConfiguration([NodeAddress(server.host, server.port)], database_id=3))
    try:
        assert await keyspace(db3, qname)
        async with glidemq.Queue(qname, connection=glidemq.Connection(server.url, db=3)) as same:
            assert (await same.get_job(job.id)).data == "in-db-3"  # type: ignore[union-attr]
            await same.obliterate()
    finally:
        await db3.close()


# --- default connection ----------------------------------------------------------------------

async def test_glidemq_url_environment_default(
    url: str, qname: str, raw: GlideClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLIDEMQ_URL", url)
    async with glidemq.Queue(qname) as queue:
        job = await queue.add("job", 1)
    assert any(f"j:{job.id}".encode() in key for key in await keyspace(raw, qname))

    async def processor(job: glidemq.Job) -> str:
        return "done"

    async with glidemq.Queue(qname) as queue, glidemq.QueueEvents(qname, last_event_id="0") as events:
        fresh = await queue.get_job(job.id)
        assert fresh is not None and fresh.data == 1
        async with glidemq.Worker(qname, processor):
            assert await fresh.wait_until_finished(timeout=10) == "done"
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert first.event == "added" and first.job_id == job.id
        assert await queue.count() == 0


async def test_default_without_environment_is_local_6379(qname: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GLIDEMQ_URL", raising=False)
    queue = glidemq.Queue(qname)
    assert "127.0.0.1:6379" in repr(queue)
    await queue.close()
    monkeypatch.setenv("GLIDEMQ_URL", "redis://10.1.2.3:7777")
    other = glidemq.Queue(qname)
    assert "10.1.2.3:7777" in repr(other)
    await other.close()


async def test_connection_object_and_string_are_equivalent(url: str, qname: str) -> None:
    async with glidemq.Queue(qname, connection=url) as by_url:
        job = await by_url.add("job", [1, 2])
    async with glidemq.Queue(qname, connection=glidemq.Connection(url)) as by_object:
        assert (await by_object.get_job(job.id)).data == [1, 2]  # type: ignore[union-attr]


# --- unreachable, then back ----------------------------------------------------------------

async def test_producer_recovers_after_server_restart_and_reloads_library(qname: str) -> None:
    with EmbeddedValkey() as own:
        conn = glidemq.Connection(own.url, request_timeout=1.0)
        async with glidemq.Queue(qname, connection=conn) as queue:
            await queue.add("before", 1)
            own.kill()
            with pytest.raises(glidemq.ConnectionFailedError) as info:
                await queue.add("while-down", 2)
            assert info.value.__cause__ is not None
            own.start()  # empty: no data, no function library
            job = await queue.add("after", 3)
            assert (await queue.get_job(job.id)).data == 3  # type: ignore[union-attr]
            assert (await queue.get_job_counts())["waiting"] == 1


async def test_producer_waits_for_a_server_that_comes_back_in_time(qname: str) -> None:
    with EmbeddedValkey() as own:
        async with glidemq.Queue(qname, connection=glidemq.Connection(own.url, request_timeout=6.0)) as queue:
            await queue.add("before")
            own.kill()
            asyncio.get_running_loop().call_later(1.0, own.start)
            started = time.monotonic()
            job = await queue.add("during-outage", "kept")
            assert time.monotonic() - started >= 0.9
            assert (await queue.get_job(job.id)).data == "kept"  # type: ignore[union-attr]
        own.kill()
        fresh = glidemq.Queue(qname, connection=glidemq.Connection(own.url, request_timeout=6.0))
        try:
            asyncio.get_running_loop().call_later(1.0, own.start)
            assert await fresh.count() == 0, "a first call waits for the server too"
        finally:
            await fresh.close()


async def test_producer_waits_for_a_briefly_frozen_server(qname: str) -> None:
    with EmbeddedValkey() as own:
        async with glidemq.Queue(qname, connection=glidemq.Connection(own.url, request_timeout=4.0)) as queue:
            await queue.add("warm-up")
            own.pause()
            loop = asyncio.get_running_loop()
            loop.call_later(0.7, own.cont)
            try:
                job = await queue.add("while-frozen", "x")
            finally:
                own.cont()
            assert (await queue.get_job(job.id)).data == "x"  # type: ignore[union-attr]


# --- keys: prefix, ACL, cluster ------------------------------------------------------------

async def test_every_key_starts_with_prefix_and_shares_hash_tag(url: str, raw: GlideClient, qname: str) -> None:
    async def work(job: glidemq.Job) -> int:
        await job.log("line")
        await job.update_progress(50)
        return 1

    async with glidemq.Queue(qname, connection=url, prefix="myapp") as queue:
        done = await queue.add("a", 1)
        await queue.add("b", 2, delay=60)
        await queue.add("c", 3, priority=5)
        async with glidemq.Worker(qname, work, connection=url, prefix="myapp"):
            await done.wait_until_finished(timeout=10)
        await queue.pause()
        keys = await raw.custom_command(["KEYS", f"*{qname}*"])
        assert keys
        for key in keys:
            assert key.startswith(f"myapp:{{{qname}}}".encode()), key
        async with glidemq.Queue(qname, connection=url) as default_prefix:
            assert await default_prefix.get_job(done.id) is None
            assert await default_prefix.count() == 0


async def test_acl_user_limited_to_prefix_and_fcall_works(
    server: EmbeddedValkey, raw: GlideClient, url: str, qname: str
) -> None:
    async with glidemq.Queue(qname, connection=url) as warm:
        await warm.count()  # the library is loaded by a privileged user first
    await raw.custom_command(
        [
            "ACL", "SETUSER", "limited", "on", f">{SECRET}", "resetkeys", "~glidemq*", "resetchannels",
            "-@all", "+@read", "+@write", "+@stream", "+@list", "+@sortedset", "+@hash", "+@string",
            "+@keyspace", "+@connection", "-@dangerous", "-@scripting", "+fcall", "+fcall_ro", "+time",
            "+info", "+client|setname", "+client|setinfo",
        ]
    )
    limited = f"valkey://limited:{SECRET}@127.0.0.1:{server.port}"
    try:
        await raw.custom_command(["ACL", "LOG", "RESET"])

        async def work(job: glidemq.Job) -> dict[str, int]:
            await job.update_progress({"step": 1})
            await job.log("working")
            return {"ok": 1}

        async with glidemq.Queue(qname, connection=limited) as queue:
            async with glidemq.QueueEvents(qname, connection=limited, last_event_id="0") as events:
                job = await queue.add("job", {"x": 1}, attempts=2)
                later = await queue.add("later", None, delay=30)
                async with glidemq.Worker(qname, work, connection=limited, stalled_interval=0.2):
                    assert await job.wait_until_finished(timeout=10) == {"ok": 1}
                assert await job.get_logs() == ["working"]
                await later.promote()
                assert await queue.get_job_counts()
                assert [j.id for j in await queue.get_jobs(["waiting", "completed"])] == [later.id, job.id]
                assert await queue.clean(0, 10) == [job.id]
                assert await queue.retry_jobs() == 0
                await queue.pause()
                await queue.resume()
                assert await queue.drain(delayed=True) == 1
                first = await asyncio.wait_for(events.__anext__(), 5)
                assert first.event == "added"
                await queue.obliterate()
        assert await raw.custom_command(["ACL", "LOG"]) == []
    finally:
        await raw.custom_command(["ACL", "DELUSER", "limited"])


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is valid and free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


async def test_cluster_mode_single_node(qname: str) -> None:
    args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    with EmbeddedValkey(_cluster_port(), extra_args=args) as node:
        admin = await GlideClient.create(GlideClientConfiguration([NodeAddress(node.host, node.port)]))
        try:
            await admin.custom_command(["CLUSTER", "ADDSLOTSRANGE", "0", "16383"])
            for _ in range(100):
                if b"cluster_state:ok" in await admin.custom_command(["CLUSTER", "INFO"]):
                    break
                await asyncio.sleep(0.05)
            url = f"valkey://127.0.0.1:{node.port}?cluster=true"
            assert glidemq.Connection(url).cluster

            async def work(job: glidemq.Job) -> int:
                return int(job.data) + 1

            names = [qname, qname + "b", qname + "c", qname + "d"]
            for name in names:
                async with glidemq.Queue(name, connection=url) as queue:
                    job = await queue.add("job", 41)
                    async with glidemq.Worker(name, work, connection=url):
                        assert await job.wait_until_finished(timeout=10) == 42
                    assert (await queue.get_job_counts())["completed"] == 1
            slots = {}
            for name in names:
                keys = await admin.custom_command(["KEYS", f"*{{{name}}}*"])
                assert len(keys) >= 3
                own = {await admin.custom_command(["CLUSTER", "KEYSLOT", k]) for k in keys}
                assert len(own) == 1, "a queue's keys share one slot"
                slots[name] = own.pop()
            assert len(set(slots.values())) > 1, "different queues spread over slots"
        finally:
            await admin.close()
