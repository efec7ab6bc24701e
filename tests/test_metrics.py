"""Prometheus metrics, scraped over real HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import glidemq
from glidemq.metrics import QueueCollector, serve_metrics
from glidemq.testing import EmbeddedValkeyCluster, free_port

from .worker_helpers import wait_until

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


async def scrape(port: int) -> Samples:
    """Every sample of the endpoint, by (name, sorted labels)."""
    text = await asyncio.to_thread(_scrape, port)
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def run_jobs(queue: glidemq.Queue, url: str, ok: int, bad: int, **worker_options: Any) -> None:
    """Runs ``ok`` jobs that complete and ``bad`` that fail for good (after 2 attempts each)."""

    async def processor(job: glidemq.Job) -> str:
        if job.data == "bad":
            raise RuntimeError("no")
        return "ok"

    jobs = await queue.add_bulk([("j", "ok") for _ in range(ok)] + [("j", "bad", {"attempts": 2}) for _ in range(bad)])
    async with glidemq.Worker(queue.name, processor, connection=url, concurrency=4, **worker_options):
        for job in jobs:
            try:
                await job.wait_until_finished(timeout=10)
            except glidemq.JobFailedError:
                pass


async def test_the_exporter_serves_counts_totals_and_workers(queue: glidemq.Queue, url: str) -> None:
    await run_jobs(queue, url, ok=5, bad=2)
    await queue.add("later", delay=60)
    await queue.add_bulk([("waiting", i) for i in range(3)])
    server = await serve_metrics(0, connection=url, queues=[queue.name], addr="127.0.0.1")
    try:
        samples = await scrape(server.port)
        counts = await queue.get_job_counts()
        assert counts["completed"] == 5 and counts["failed"] == 2 and counts["waiting"] == 3
        for state, count in counts.items():
            assert value(samples, "glidemq_jobs", queue=queue.name, state=state) == count
        assert value(samples, "glidemq_jobs_completed_total", queue=queue.name) == 5
        assert value(samples, "glidemq_jobs_failed_total", queue=queue.name) == 2  # for good, not per attempt
        assert value(samples, "glidemq_workers", queue=queue.name) == 0
        async with glidemq.Worker(queue.name, lambda job: None, connection=url):
            await wait_until(queue.get_workers)
            samples = await scrape(server.port)
            assert value(samples, "glidemq_workers", queue=queue.name) == 1

            async def all_done() -> bool:
                return (await queue.get_job_counts())["completed"] == 8

            await wait_until(all_done)
        samples = await scrape(server.port)
        assert value(samples, "glidemq_jobs_completed_total", queue=queue.name) == 8
        assert value(samples, "glidemq_jobs", queue=queue.name, state="waiting") == 0
    finally:
        await server.close()


async def test_totals_outlive_removed_jobs(queue: glidemq.Queue, url: str) -> None:
    await run_jobs(queue, url, ok=3, bad=0)
    await queue.clean(0, state="completed")
    server = await serve_metrics(0, connection=url, queues=[queue.name], addr="127.0.0.1")
    try:
        samples = await scrape(server.port)
        assert value(samples, "glidemq_jobs", queue=queue.name, state="completed") == 0
        assert value(samples, "glidemq_jobs_completed_total", queue=queue.name) == 3
    finally:
        await server.close()


async def test_without_queues_every_queue_is_served(url: str, qname: str) -> None:
    names = [qname + "a", qname + "b"]
    for i, name in enumerate(names):
        async with glidemq.Queue(name, connection=url) as q:
            await q.add_bulk([("j", None)] * (i + 1))
    server = await serve_metrics(0, connection=url, addr="127.0.0.1")
    try:
        samples = await scrape(server.port)
        assert value(samples, "glidemq_jobs", queue=names[0], state="waiting") == 1
        assert value(samples, "glidemq_jobs", queue=names[1], state="waiting") == 2
    finally:
        await server.close()


def _histogram(samples: Samples, name: str, queue: str) -> tuple[float, float, dict[str, float]]:
    buckets = {dict(labels)["le"]: v for (n, labels), v in samples.items()
               if n == f"{name}_bucket" and dict(labels)["queue"] == queue}
    return value(samples, f"{name}_count", queue=queue), value(samples, f"{name}_sum", queue=queue), buckets


async def test_a_worker_records_durations_and_pickup_latencies(queue: glidemq.Queue, url: str) -> None:
    registry = CollectorRegistry()
    await run_jobs(queue, url, ok=6, bad=1, metrics=registry)
    text = (await asyncio.to_thread(_generate, registry))
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    count, total, buckets = _histogram(samples, "glidemq_job_duration_seconds", queue.name)
    assert count == 6 + 2  # every run, failed attempts too
    assert buckets["+Inf"] == count and total >= 0
    bounds = sorted((float(le), v) for le, v in buckets.items())
    assert [v for _, v in bounds] == sorted(v for _, v in bounds)  # cumulative
    count, total, buckets = _histogram(samples, "glidemq_pickup_latency_seconds", queue.name)
    assert count == 6 + 1  # first attempts only
    assert buckets["+Inf"] == count


def _generate(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


async def test_a_worker_serves_its_metrics_on_a_port(queue: glidemq.Queue, url: str) -> None:
    port = free_port()
    done = asyncio.Event()

    async def processor(job: glidemq.Job) -> None:
        done.set()

    async with glidemq.Worker(queue.name, processor, connection=url, metrics_port=port):
        await queue.add("one")
        await asyncio.wait_for(done.wait(), 10)

        async def recorded() -> bool:
            samples = await scrape(port)
            key = ("glidemq_job_duration_seconds_count", (("queue", queue.name),))
            return samples.get(key) == 1 and value(samples, "glidemq_jobs_completed_total", queue=queue.name) == 1

        await wait_until(recorded)
        samples = await scrape(port)
        assert value(samples, "glidemq_workers", queue=queue.name) == 1
    with pytest.raises(OSError):
        await asyncio.to_thread(_scrape, port)  # closed with the worker


async def test_a_busy_metrics_port_is_reported_and_the_worker_runs_on(queue: glidemq.Queue, url: str) -> None:
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        errors: list[BaseException] = []
        worker = glidemq.Worker(queue.name, lambda job: "ran", connection=url, metrics_port=busy.getsockname()[1])
        worker.on("error", errors.append)
        async with worker:
            job = await queue.add("x")
            assert await job.wait_until_finished(timeout=10) == "ran"
        assert [str(e) for e in errors if "metrics" in str(e)]


async def test_bad_metrics_options_raise_at_the_call_site(url: str, qname: str) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, connection=url, metrics="yes")
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, connection=url, metrics_port=-1)
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Worker(qname, lambda job: None, connection=url, metrics_port=True)  # type: ignore[arg-type]
    with pytest.raises(glidemq.InvalidArgumentError):
        await serve_metrics(70_000, connection=url)
    with pytest.raises(glidemq.InvalidArgumentError):
        QueueCollector(url, queues=["bad:name"])


def _metrics_command(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "glidemq.cli", "metrics", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


async def test_the_metrics_command_serves_until_sigterm(queue: glidemq.Queue, url: str, qname: str) -> None:
    await run_jobs(queue, url, ok=2, bad=1)
    port = free_port()
    proc = _metrics_command("--port", str(port), "--url", url, "--queue", qname, "--queue", qname + "other",
                            "--host", "127.0.0.1")
    try:

        async def up() -> Samples | None:
            assert proc.poll() is None, proc.communicate()
            try:
                return await scrape(port)
            except OSError:
                return None

        await wait_until(up, timeout=20)
        samples = await scrape(port)
        assert value(samples, "glidemq_jobs_completed_total", queue=qname) == 2
        assert value(samples, "glidemq_jobs_failed_total", queue=qname) == 1
        assert value(samples, "glidemq_jobs", queue=qname + "other", state="waiting") == 0
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=15)
        assert proc.returncode == 0, err
        assert f":{port}/metrics" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.mark.parametrize("args", [["--port", "x"], ["--port", "9108", "--queue", "a:b"], ["--port", "-2"]])
def test_the_metrics_command_rejects_bad_arguments(args: Sequence[str]) -> None:
    proc = _metrics_command(*args)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "error" in err


async def test_the_exporter_works_on_a_cluster(cluster: EmbeddedValkeyCluster) -> None:
    names = [f"met{i}{os.getpid()}" for i in range(3)]  # spread over several slots
    for i, name in enumerate(names):
        async with glidemq.Queue(name, connection=cluster.url) as q:
            await run_jobs(q, cluster.url, ok=i + 1, bad=0)
    server = await serve_metrics(0, connection=cluster.url, addr="127.0.0.1")  # every queue, found by SCAN
    try:
        samples = await scrape(server.port)
        for i, name in enumerate(names):
            assert value(samples, "glidemq_jobs_completed_total", queue=name) == i + 1
            assert value(samples, "glidemq_jobs", queue=name, state="completed") == i + 1
    finally:
        await server.close()
        for name in names:
            async with glidemq.Queue(name, connection=cluster.url) as q:
                await q.obliterate(force=True)


async def test_jobs_failed_by_the_stall_check_count_as_failed(queue: glidemq.Queue, url: str, qname: str) -> None:
    job = await queue.add("long", {"sleep": 60})
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_worker", url, qname, "--lock-duration", "0.5"],
        cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:

        async def started() -> bool:
            assert victim.poll() is None, "the worker process exited"
            return await job.get_state() == "active"

        await wait_until(started, timeout=20)
    finally:
        victim.kill()
        victim.wait(5)
    async with glidemq.Worker(qname, lambda job: None, connection=url, lock_duration=0.5, stalled_interval=0.2,
                              max_stalled_count=0):
        with pytest.raises(glidemq.JobFailedError, match="stalled"):
            await job.wait_until_finished(timeout=10)
    server = await serve_metrics(0, connection=url, queues=[qname], addr="127.0.0.1")
    try:
        samples = await scrape(server.port)
        assert value(samples, "glidemq_jobs_failed_total", queue=qname) == 1
        assert value(samples, "glidemq_jobs_completed_total", queue=qname) == 0
    finally:
        await server.close()
