"""glidemq.sync.Queue and Job: the async API's behaviour, without await, from any thread."""

from __future__ import annotations

import inspect
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from glide import GlideClient

import glidemq
from glidemq.sync import Job, Queue
from glidemq.sync._portal import portal

from .conftest import keyspace


def test_add_and_inspect(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        job = q.add("send", {"to": "a@b.c"}, priority=2, attempts=3)
        assert isinstance(job, Job) and job.name == "send" and job.data == {"to": "a@b.c"}
        assert job.priority == 2 and job.attempts == 3 and job.queue_name == qname
        assert job.get_state() == "waiting"
        fetched = q.get_job(job.id)
        assert fetched is not None and fetched.data == {"to": "a@b.c"}
        assert q.get_job("missing") is None
        later = q.add("later", delay=60)
        assert later.get_state() == "delayed"
        assert q.count() == 2
        assert q.get_job_counts()["waiting"] == 1 and q.get_job_counts()["delayed"] == 1
        assert [j.id for j in q.get_jobs("waiting")] == [job.id]
        later.promote()
        assert later.get_state() == "waiting"
        job.log("line one")
        assert job.get_logs() == ["line one"]
        assert job.refresh() and job.attempts_made == 0


def test_admin_methods(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        jobs = q.add_bulk([("a", 1), ("b", 2, {"delay": 30})])
        assert [j.name for j in jobs] == ["a", "b"]
        q.pause()
        assert q.is_paused()
        q.resume()
        assert not q.is_paused()
        assert q.remove(jobs[0].id) and not q.remove(jobs[0].id)
        assert q.drain(delayed=True) == 1
        assert q.count() == 0
        assert q.clean(0, state="completed") == []
        assert q.retry_jobs() == 0
        q.add("x")
        q.obliterate()
        assert q.get_job_counts()["waiting"] == 0


async def test_bad_input_raises_here_and_writes_nothing(url: str, qname: str, raw: GlideClient) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        Queue("bad:name", connection=url)
    with Queue(qname, connection=url) as q:
        q.add("seed")
        before = await keyspace(raw, qname)
        for bad in (
            lambda: q.add("x", delay=-1),
            lambda: q.add("x", priority=2**22),
            lambda: q.add("", 1),
            lambda: q.add("x", job_id="12"),
            lambda: q.add_bulk([("ok", 1), ("x", 1, {"attempts": 0})]),
            lambda: q.get_jobs("nonsense"),
            lambda: q.clean(-1),
        ):
            with pytest.raises(glidemq.InvalidArgumentError):
                bad()
        with pytest.raises(glidemq.SerializationError):
            q.add("x", {1: "not a str key"})
        with pytest.raises(glidemq.SerializationError):
            q.add_bulk([("ok", 1), ("x", {object(): 1})])
        assert await keyspace(raw, qname) == before


def test_errors_are_raised_in_the_calling_thread(url: str, qname: str) -> None:
    caught: list[BaseException] = []

    def call() -> None:
        try:
            q.add("x", attempts=0)
        except glidemq.InvalidArgumentError as exc:
            caught.append(exc)

    with Queue(qname, connection=url) as q:
        thread = threading.Thread(target=call)
        thread.start()
        thread.join()
    assert len(caught) == 1


def test_many_threads_share_one_queue(url: str, qname: str) -> None:
    threads, per_thread = 16, 40
    with Queue(qname, connection=url) as q, ThreadPoolExecutor(threads) as pool:
        batches = list(pool.map(lambda n: [q.add("t", {"n": n, "i": i}).id for i in range(per_thread)],
                                range(threads)))
        ids = [job_id for batch in batches for job_id in batch]
        assert len(set(ids)) == threads * per_thread
        assert q.count() == threads * per_thread
        assert q.get_job_counts()["waiting"] == threads * per_thread
        assert {(j.data["n"], j.data["i"]) for j in q.get_jobs("waiting")} == {
            (n, i) for n in range(threads) for i in range(per_thread)
        }


async def test_sync_jobs_are_async_jobs(url: str, qname: str, queue: glidemq.Queue) -> None:
    with Queue(qname, connection=url) as q:
        job = q.add("from-sync", {"x": [1, 2.5, None]}, job_id="shared-1")
        seen = await queue.get_job("shared-1")
        assert seen is not None and seen.data == {"x": [1, 2.5, None]} and seen.name == "from-sync"
        again = q.add("other", job_id="shared-1")  # idempotent across both APIs
        assert again.id == job.id and again.name == "from-sync"
        async_added = await queue.add("from-async", b"\x00bytes")
        mirrored = q.get_job(async_added.id)
        assert mirrored is not None and mirrored.data == b"\x00bytes"


def test_wait_until_finished_outcomes(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        job = q.add("never-run")
        with pytest.raises(TimeoutError):
            job.wait_until_finished(timeout=0.2)
        with pytest.raises(glidemq.InvalidArgumentError):
            job.wait_until_finished(timeout=-1)


def test_a_sync_call_on_the_loop_thread_is_refused(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        async def misuse() -> int:
            return q.count()

        with pytest.raises(glidemq.GlideMQError, match="own event loop"):
            portal().run(misuse())
        assert q.count() == 0  # the loop is still fine


def test_unknown_attribute(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        with pytest.raises(AttributeError):
            q.no_such_method  # noqa: B018


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_loop(url: str, qname: str) -> None:
    with Queue(qname, connection=url) as q:
        q.add("before-fork")
        pid = os.fork()
        if pid == 0:  # the child: the parent's loop thread is gone; the queue reconnects on a new one
            code = 1
            signal.alarm(30)  # a hang in the child fails the test instead of stalling it
            try:
                q.add("from-child", {"pid": os.getpid()})
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert sorted(j.name for j in q.get_jobs("waiting")) == ["before-fork", "from-child"]


@pytest.mark.parametrize(("sync_class", "async_class"), [(Queue, glidemq.Queue), (Job, glidemq.Job)])
def test_every_async_method_has_a_blocking_twin(
    url: str, qname: str, sync_class: type, async_class: type
) -> None:
    with Queue(qname, connection=url) as q:
        instance = q if sync_class is Queue else q.add("probe")
        for name, method in inspect.getmembers(async_class, inspect.iscoroutinefunction):
            if name.startswith("_"):
                continue
            twin = getattr(instance, name)
            assert callable(twin) and not inspect.iscoroutinefunction(twin), name
            own = getattr(sync_class, name, None)
            if own is None:
                continue  # reached through __getattr__: the async method's own signature applies
            sync_params = inspect.signature(own).parameters
            takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sync_params.values())
            for param in inspect.signature(method).parameters.values():
                if param.name == "self" or param.kind is inspect.Parameter.VAR_KEYWORD:
                    continue
                assert param.name in sync_params or (takes_any and param.kind is inspect.Parameter.KEYWORD_ONLY), (
                    f"{sync_class.__name__}.{name} lacks {param.name!r}"
                )
                if param.name in sync_params:
                    assert sync_params[param.name].default == param.default, f"{name}({param.name}=...)"
