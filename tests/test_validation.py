"""Bad input raises at the call site, before anything is written; the error hierarchy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from glide import GlideClient

import glidemq

from .conftest import keyspace

MIB = 1024 * 1024


@pytest.fixture
async def seeded(queue: glidemq.Queue) -> AsyncIterator[glidemq.Queue]:
    """A queue holding a few jobs, so that an unchanged keyspace means something."""
    await queue.add("seed", {"n": 1})
    await queue.add("seed-delayed", 2, delay=60)
    await queue.add("seed-prio", 3, priority=4)
    yield queue


# --- errors --------------------------------------------------------------------------------

def test_error_hierarchy() -> None:
    for cls in (
        glidemq.InvalidArgumentError,
        glidemq.SerializationError,
        glidemq.JobFailedError,
        glidemq.UnrecoverableError,
        glidemq.ConnectionFailedError,
    ):
        assert issubclass(cls, glidemq.GlideMQError)
    assert issubclass(glidemq.GlideMQError, Exception)
    assert issubclass(glidemq.InvalidArgumentError, ValueError)
    assert issubclass(glidemq.SerializationError, TypeError)
    assert not issubclass(glidemq.InvalidArgumentError, TypeError)
    assert not issubclass(glidemq.SerializationError, ValueError)


def test_job_failed_error_carries_reason() -> None:
    err = glidemq.JobFailedError("42", "it broke")
    assert err.failed_reason == "it broke"
    assert "it broke" in str(err)
    assert isinstance(err, glidemq.GlideMQError)


def test_unrecoverable_error_is_raisable_with_message() -> None:
    with pytest.raises(glidemq.GlideMQError, match="stop now"):
        raise glidemq.UnrecoverableError("stop now")


async def test_server_errors_surface_as_glidemq_errors(url: str, raw: GlideClient, qname: str) -> None:
    await raw.custom_command(["SET", f"glidemq:{{{qname}}}:wait", "not a list"])
    try:
        async with glidemq.Queue(qname, connection=url) as queue:
            with pytest.raises(glidemq.GlideMQError) as info:
                await queue.add("j", 1)
            assert info.value.__cause__ is not None, "the server's reply is chained"
            assert not isinstance(info.value, (glidemq.InvalidArgumentError, glidemq.SerializationError))
            with pytest.raises(glidemq.GlideMQError):
                await queue.get_job_counts()
    finally:
        await raw.custom_command(["DEL", f"glidemq:{{{qname}}}:wait"])


# --- queue names ---------------------------------------------------------------------------

BAD_QUEUE_NAMES: list[Any] = [
    "", "a{b", "a}b", "{all}", "a:b", ":", "line\nbreak", "tab\there", "nul\x00", "del\x7f", "esc\x1b",
    "x" * 257, 123, None, b"bytes", ["list"],
]


@pytest.mark.parametrize("name", BAD_QUEUE_NAMES, ids=repr)
def test_bad_queue_names_rejected_at_construction(name: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Queue(name)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(name, lambda job: None)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.QueueEvents(name)


@pytest.mark.parametrize("name", ["a", "x" * 256, "emails-v2", "with space", "ünïcode✓", "dots.and_under"])
async def test_good_queue_names_work(url: str, raw: GlideClient, name: str) -> None:
    async with glidemq.Queue(name, connection=url) as queue:
        job = await queue.add("j", 1)
        assert (await queue.get_job(job.id)).queue_name == name  # type: ignore[union-attr]
        await queue.obliterate()
    assert await keyspace(raw, name) == {}


# --- job names and ids ---------------------------------------------------------------------

BAD_JOB_NAMES: list[Any] = ["", "new\nline", "\x00", "x" * 257, 1, None, b"name"]


@pytest.mark.parametrize("name", BAD_JOB_NAMES, ids=repr)
async def test_bad_job_names(seeded: glidemq.Queue, raw: GlideClient, qname: str, name: Any) -> None:
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add(name, 1)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("fine", 1), (name, 2)])
    assert await keyspace(raw, qname) == snapshot


async def test_job_names_may_hold_braces_and_colons(queue: glidemq.Queue) -> None:
    job = await queue.add("ns:task{1}", None)
    assert (await queue.get_job(job.id)).name == "ns:task{1}"  # type: ignore[union-attr]
    long = await queue.add("n" * 256)
    assert long.name == "n" * 256


BAD_JOB_IDS: list[Any] = [
    "", "123", "0", "0042", "٣", "a:b", "{id}", "a}", "tab\t", "nl\n", "x" * 257, 123, b"abc", 1.5, True,
]


@pytest.mark.parametrize("job_id", BAD_JOB_IDS, ids=repr)
async def test_bad_job_ids(seeded: glidemq.Queue, raw: GlideClient, qname: str, job_id: Any) -> None:
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add("j", 1, job_id=job_id)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("fine", 1), ("j", 2, {"job_id": job_id})])
    assert await keyspace(raw, qname) == snapshot


@pytest.mark.parametrize("job_id", ["abc", "12a", "a12", "0x1f", "-5", "1.5", "x" * 256, "uuid-like-1b4e28ba"])
async def test_good_custom_job_ids(queue: glidemq.Queue, job_id: str) -> None:
    job = await queue.add("j", 1, job_id=job_id)
    assert job.id == job_id
    assert (await queue.get_job(job_id)).data == 1  # type: ignore[union-attr]


async def test_auto_ids_may_be_numeric(queue: glidemq.Queue) -> None:
    job = await queue.add("auto")
    assert isinstance(job.id, str)
    fetched = await queue.get_job(job.id)
    assert fetched is not None and fetched.id == job.id


# --- job options ---------------------------------------------------------------------------

BAD_OPTIONS: list[dict[str, Any]] = [
    {"attempts": 0},
    {"attempts": -1},
    {"attempts": 1.5},
    {"attempts": True},
    {"attempts": "3"},
    {"remove_on_complete": -1},
    {"remove_on_complete": 1.5},
    {"remove_on_complete": "yes"},
    {"remove_on_fail": -2},
    {"remove_on_fail": None},
    {"delay": -1},
    {"delay": -0.001},
    {"delay": timedelta(seconds=-1)},
    {"delay": "5"},
    {"delay": float("nan")},
    {"delay": float("inf")},
    {"delay": None},
    {"backoff": -1},
    {"backoff": "exponential"},
    {"backoff": float("nan")},
    {"backoff": timedelta(seconds=-3)},
    {"timeout": 0},
    {"timeout": -1},
    {"timeout": timedelta(0)},
    {"timeout": "10"},
    {"priority": -1},
    {"priority": 2**21 + 1},
    {"priority": 1.0},
    {"priority": True},
    {"priority": "1"},
    {"priority": None},
    {"lifo": "yes"},
    {"lifo": 1},
]


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=repr)
async def test_bad_options_rejected(
    seeded: glidemq.Queue, raw: GlideClient, qname: str, options: dict[str, Any]
) -> None:
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add("j", {"x": 1}, **options)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("ok", 1), ("j", {"x": 1}, options), ("ok", 2)])
    assert await keyspace(raw, qname) == snapshot


@pytest.mark.parametrize(
    "make",
    [
        lambda: glidemq.Backoff.fixed(-1),
        lambda: glidemq.Backoff.fixed(timedelta(seconds=-1)),
        lambda: glidemq.Backoff.fixed(float("inf")),
        lambda: glidemq.Backoff.fixed("1"),
        lambda: glidemq.Backoff.exponential(-0.5),
        lambda: glidemq.Backoff.exponential(1, jitter=-0.1),
        lambda: glidemq.Backoff.exponential(1, jitter=1.01),
        lambda: glidemq.Backoff.exponential(1, jitter="half"),
        lambda: glidemq.Backoff.exponential(1, jitter=float("nan")),
    ],
)
def test_bad_backoff_rejected(make: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        make()


@pytest.mark.parametrize("options", [
    {"priority": 0}, {"priority": 2**21}, {"attempts": 1}, {"delay": 0}, {"delay": timedelta(0)},
    {"backoff": 0}, {"backoff": glidemq.Backoff.exponential(1, jitter=0)},
    {"backoff": glidemq.Backoff.exponential(1, jitter=1)}, {"timeout": 0.001}, {"remove_on_complete": 0},
    {"remove_on_fail": 0}, {"remove_on_complete": False}, {"lifo": True},
])
async def test_boundary_options_accepted(queue: glidemq.Queue, options: dict[str, Any]) -> None:
    job = await queue.add("edge", None, **options)
    assert await queue.get_job(job.id) is not None


async def test_unknown_option_in_bulk_rejected(seeded: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("a", 1, {"prio": 1})])
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("a", 1, {"removeOnComplete": True})])
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("a", 1, "not a mapping")])  # type: ignore[list-item]
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("a",)])  # type: ignore[list-item]
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([("a", 1, {}, "extra")])  # type: ignore[list-item]
    assert await keyspace(raw, qname) == snapshot


async def test_add_bulk_with_one_bad_item_writes_nothing(seeded: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    snapshot = await keyspace(raw, qname)
    good = [(f"g{i}", {"i": i}) for i in range(1200)]
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([*good, ("bad", 1, {"delay": -1})])
    with pytest.raises(glidemq.SerializationError):
        await seeded.add_bulk([*good, ("bad", {1: "int key"})])
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add_bulk([*good, ("big", b"x" * (MIB + 1))])
    assert await keyspace(raw, qname) == snapshot


# --- serialization -------------------------------------------------------------------------

class Custom:
    pass


UNSERIALIZABLE: list[Any] = [
    {1: "int key"},
    {(1, 2): "tuple key"},
    {b"bytes": "bytes key"},
    {None: "none key"},
    {"outer": {2: "nested int key"}},
    [{"fine": 1}, {3.5: "float key"}],
    {1, 2, 3},
    frozenset({1}),
    Custom(),
    object(),
    complex(1, 2),
    2**64,
    -(2**63) - 1,
    [1, [2, [3, {4: 5}]]],
    Custom,
    lambda: None,
]


@pytest.mark.parametrize("data", UNSERIALIZABLE, ids=lambda d: type(d).__name__)
async def test_unserializable_data(seeded: glidemq.Queue, raw: GlideClient, qname: str, data: Any) -> None:
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.SerializationError) as info:
        await seeded.add("j", data)
    assert isinstance(info.value, TypeError)
    with pytest.raises(glidemq.SerializationError):
        await seeded.add_bulk([("ok", 1), ("j", data)])
    assert await keyspace(raw, qname) == snapshot


async def test_self_referencing_data_is_rejected(seeded: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    loop: list[Any] = []
    loop.append(loop)
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.SerializationError):
        await seeded.add("j", loop)
    assert await keyspace(raw, qname) == snapshot


# --- payload size ----------------------------------------------------------------------------

async def test_payload_limit_default_one_mib(seeded: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    header = 5  # msgpack bin32 header
    exact = b"x" * (MIB - header)
    job = await seeded.add("exact", exact)
    assert (await seeded.get_job(job.id)).data == exact  # type: ignore[union-attr]
    snapshot = await keyspace(raw, qname)
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add("over", b"x" * (MIB - header + 1))
    with pytest.raises(glidemq.InvalidArgumentError):
        await seeded.add("over", {"text": "y" * MIB})
    assert await keyspace(raw, qname) == snapshot


async def test_payload_limit_configurable_on_queue(url: str, qname: str, raw: GlideClient) -> None:
    async with glidemq.Queue(qname, connection=url, max_payload_size=100) as small:
        await small.add("ok", "a" * 50)
        snapshot = await keyspace(raw, qname)
        with pytest.raises(glidemq.InvalidArgumentError):
            await small.add("too-big", "a" * 200)
        with pytest.raises(glidemq.InvalidArgumentError):
            await small.add_bulk([("ok", 1), ("too-big", "a" * 200)])
        assert await keyspace(raw, qname) == snapshot
    async with glidemq.Queue(qname, connection=url, max_payload_size=3 * MIB) as large:
        data = b"z" * (2 * MIB)
        job = await large.add("big", data)
        assert (await large.get_job(job.id)).data == data  # type: ignore[union-attr]


@pytest.mark.parametrize("size", [0, -1, 1.5, True, "1MiB"])
def test_bad_payload_limit_rejected(qname: str, size: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Queue(qname, max_payload_size=size)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, max_payload_size=size)


# --- other call-site checks ----------------------------------------------------------------

async def test_queue_call_site_checks_write_nothing(seeded: glidemq.Queue, raw: GlideClient, qname: str) -> None:
    snapshot = await keyspace(raw, qname)
    bad_calls = [
        lambda: seeded.get_jobs("unknown"),
        lambda: seeded.get_jobs(["waiting", "done"]),
        lambda: seeded.get_jobs("waiting", "0", 5),
        lambda: seeded.get_jobs("waiting", 0, 1.5),
        lambda: seeded.clean(-0.5),
        lambda: seeded.clean(0, state="nope"),
        lambda: seeded.clean(0, limit=-3),
        lambda: seeded.retry_jobs("waiting"),
        lambda: seeded.retry_jobs("failed", count=-1),
        lambda: seeded.get_job(""),
        lambda: seeded.get_job(5),
        lambda: seeded.remove(""),
    ]
    for call in bad_calls:
        with pytest.raises(glidemq.InvalidArgumentError):
            await call()  # type: ignore[no-untyped-call]
    assert await keyspace(raw, qname) == snapshot


@pytest.mark.parametrize(
    "kwargs",
    [
        {"concurrency": 0},
        {"concurrency": -4},
        {"concurrency": 1.5},
        {"concurrency": True},
        {"lock_duration": 0},
        {"lock_duration": -1},
        {"lock_duration": timedelta(0)},
        {"lock_duration": "30"},
        {"stalled_interval": 0},
        {"stalled_interval": -5},
        {"max_stalled_count": -1},
        {"max_stalled_count": 0.5},
        {"connection": "http://localhost"},
        {"prefix": ""},
        {"prefix": "a{b}"},
    ],
    ids=repr,
)
def test_bad_worker_arguments(qname: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, **kwargs)


def test_worker_processor_must_be_callable(qname: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, "not callable")  # type: ignore[arg-type]


def test_worker_boundary_arguments_accepted(qname: str) -> None:
    glidemq.Worker(qname, lambda job: None, concurrency=1, lock_duration=0.01, stalled_interval=timedelta(seconds=1),
                   max_stalled_count=0)


@pytest.mark.parametrize("prefix", ["", "a{b", "b}", "\n", 5])
def test_bad_prefix(qname: str, prefix: Any) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Queue(qname, prefix=prefix)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.QueueEvents(qname, prefix=prefix)


@pytest.mark.parametrize(
    "kwargs",
    [{"port": 0}, {"port": 70000}, {"port": "6379"}, {"db": -1}, {"request_timeout": 0}, {"request_timeout": -1}],
    ids=repr,
)
def test_bad_connection_keywords(kwargs: dict[str, Any]) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Connection(**kwargs)

