"""Prometheus metrics (``pip install "glidemq[metrics]"``).

Two sources, one set of stable names:

- ``QueueCollector`` reads what the server knows, at scrape time: jobs by state
  (``glidemq_jobs{queue,state}``), jobs completed and failed for good
  (``glidemq_jobs_completed_total{queue}``, ``glidemq_jobs_failed_total{queue}``, counted by
  the function library as jobs finish) and live workers (``glidemq_workers{queue}``). The
  ``glidemq metrics`` command serves it.
- ``WorkerMetrics`` (``Worker(..., metrics=True)``) observes the jobs a worker finishes:
  ``glidemq_job_duration_seconds{queue}`` (processed to finished) and
  ``glidemq_pickup_latency_seconds{queue}`` (ready to processed, first attempts).
  It counts in plain lists, once per finished batch, and builds the histograms only when
  scraped, so the worker's hot path pays well under a microsecond per job.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import _validate as check
from ._client import Client
from ._figures import QueueFigures, read_figures
from .connection import Connection, resolve
from .discover import queue_names_with
from .errors import InvalidArgumentError
from .queue import Queue

DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
PICKUP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
STATUS_COMPLETED, STATUS_FAILED, STATUS_RETRYING = 1, 2, 3  # as ``take`` reports them

__all__ = [
    "DURATION_BUCKETS",
    "PICKUP_BUCKETS",
    "MetricsServer",
    "QueueCollector",
    "QueueFigures",
    "WorkerMetrics",
    "serve_metrics",
]


class QueueCollector(Collector):
    """Collects the server-side metrics of some queues (``queues=None``: every queue under ``prefix``).

    ``collect()`` is called by prometheus_client from its own thread; it runs the reads on
    ``loop`` (the event loop the collector was created on, by default) and waits for them.
    Use it from ``serve_metrics`` or register it in a registry served by a running loop.
    """

    def __init__(
        self,
        connection: Connection | str | None = None,
        *,
        prefix: str = "glidemq",
        queues: Sequence[str] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._connection = resolve(connection)
        self._prefix = check.prefix(prefix)
        self._names = None if queues is None else [check.queue_name(q) for q in queues]
        self._queues: dict[str, Queue] = {}
        self._client = Client(self._connection, name="glidemq-metrics")
        self._loop = loop
        self._lock = threading.Lock()

    async def read(self) -> list[QueueFigures]:
        """The figures of every watched queue, read now."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        names = self._names if self._names is not None else await queue_names_with(self._client, self._prefix)
        return [await self._read_one(name) for name in names]

    async def _read_one(self, name: str) -> QueueFigures:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = Queue(name, connection=self._connection, prefix=self._prefix)
        return await read_figures(queue)

    async def close(self) -> None:
        """Releases the connections."""
        queues, self._queues = self._queues, {}
        for queue in queues.values():
            await queue.close()
        await self._client.close()

    def describe(self) -> Iterable[Metric]:
        return []  # nothing read when registered; names are known only at scrape time

    def collect(self) -> Iterable[Metric]:
        loop = self._loop
        if loop is None or not loop.is_running() or _on_loop(loop):
            raise RuntimeError("QueueCollector is scraped from the thread of its event loop or without one")
        with self._lock:
            future = asyncio.run_coroutine_threadsafe(self.read(), loop)
            figures = future.result(self._connection.request_timeout * 2 + 5)
        return families(figures)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def families(figures: Sequence[QueueFigures]) -> list[Metric]:
    """The metric families of some queue figures."""
    jobs = GaugeMetricFamily("glidemq_jobs", "Jobs of a queue by state.", labels=["queue", "state"])
    completed = CounterMetricFamily("glidemq_jobs_completed", "Jobs completed.", labels=["queue"])
    failed = CounterMetricFamily("glidemq_jobs_failed", "Jobs failed for good (attempts used up).", labels=["queue"])
    workers = GaugeMetricFamily("glidemq_workers", "Live workers of a queue.", labels=["queue"])
    for f in figures:
        for state, count in f.counts.items():
            jobs.add_metric([f.queue, state], count)
        completed.add_metric([f.queue], f.completed_total)
        failed.add_metric([f.queue], f.failed_total)
        workers.add_metric([f.queue], f.workers)
    return [jobs, completed, failed, workers]


class _Buckets:
    """A histogram kept as plain counts; cumulative only when exported."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return out


class WorkerMetrics(Collector):
    """The histograms of the jobs finished by the workers of this process, per queue.

    One instance per registry (``WorkerMetrics.of(registry)``); every worker using that
    registry records into it.
    """

    _instances: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, WorkerMetrics]] = weakref.WeakKeyDictionary()
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, tuple[_Buckets, _Buckets]] = {}

    @classmethod
    def of(cls, registry: CollectorRegistry) -> WorkerMetrics:
        """The instance registered in ``registry`` (registered on first use)."""
        with cls._instances_lock:
            found = cls._instances.get(registry)
            if found is None:
                found = cls._instances[registry] = cls()
                registry.register(found)
            return found

    def observe(self, queue: str, outcomes: Sequence[tuple[Any, ...]], statuses: Sequence[int], now_ms: int) -> None:
        """Records one finished batch: ``outcomes`` are ``(job, ...)``, ``statuses`` what ``take`` said."""
        now = now_ms / 1000.0
        pair = self._queues.get(queue)
        if pair is None:
            pair = self._queues.setdefault(queue, (_Buckets(DURATION_BUCKETS), _Buckets(PICKUP_BUCKETS)))
        duration, pickup = pair
        d_bounds, d_counts, p_bounds, p_counts = duration.bounds, duration.counts, pickup.bounds, pickup.counts
        d_sum = p_sum = 0.0
        with self._lock:
            for outcome, status in zip(outcomes, statuses):  # noqa: B905 - same length by construction
                if status < STATUS_COMPLETED or status > STATUS_RETRYING:
                    continue  # lost lock or handed back: no run to measure
                job = outcome[0]
                started = job.processed_on
                if started is None:
                    continue
                seconds = now - started
                if seconds < 0.0:
                    seconds = 0.0
                d_counts[bisect_left(d_bounds, seconds)] += 1
                d_sum += seconds
                if job.attempts_made == 1:
                    waited = started - job.timestamp - job.delay
                    if waited < 0.0:
                        waited = 0.0
                    p_counts[bisect_left(p_bounds, waited)] += 1
                    p_sum += waited
            duration.total += d_sum
            pickup.total += p_sum

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        duration = HistogramMetricFamily(
            "glidemq_job_duration_seconds", "Seconds from a job's start to its end.", labels=["queue"]
        )
        pickup = HistogramMetricFamily(
            "glidemq_pickup_latency_seconds", "Seconds from a job being ready to a worker starting it.",
            labels=["queue"],
        )
        with self._lock:
            for queue, (d, p) in self._queues.items():
                duration.add_metric([queue], d.cumulative(), d.total)
                pickup.add_metric([queue], p.cumulative(), p.total)
        yield duration
        yield pickup


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint; ``await close()`` stops it."""

    def __init__(self, registry: CollectorRegistry, port: int, addr: str, collector: QueueCollector) -> None:
        self.registry = registry
        self._collector = collector
        self._httpd, self._thread = start_http_server(port, addr=addr, registry=registry)
        self.port: int = self._httpd.server_port

    async def close(self) -> None:
        """Stops serving and releases the connections."""
        await asyncio.to_thread(self._httpd.shutdown)
        self._httpd.server_close()
        self.registry.unregister(self._collector)
        await self._collector.close()


async def serve_metrics(
    port: int,
    *,
    connection: Connection | str | None = None,
    prefix: str = "glidemq",
    queues: Sequence[str] | None = None,
    addr: str = "0.0.0.0",
    registry: CollectorRegistry | None = None,
) -> MetricsServer:
    """Serves the metrics of ``queues`` (None: every queue) on ``http://addr:port/metrics``.

    Runs in the background of the current event loop until ``close()``. ``port=0`` picks a
    free port (see ``.port``). Histograms of workers in this process that record into
    ``registry`` are served as well.
    """
    port = check.integer(port, "port", minimum=0, maximum=65535)
    registry = registry if registry is not None else CollectorRegistry()
    collector = QueueCollector(connection, prefix=prefix, queues=queues, loop=asyncio.get_running_loop())
    registry.register(collector)
    try:
        return MetricsServer(registry, port, addr, collector)
    except BaseException:
        registry.unregister(collector)
        await collector.close()
        raise


def registry_for(metrics: Any) -> CollectorRegistry:
    """The registry a worker records into for its ``metrics`` option: the given one,
    prometheus_client's default for True, a private one for False (served by ``metrics_port``)."""
    if isinstance(metrics, CollectorRegistry):
        return metrics
    if metrics is None:
        return CollectorRegistry()
    if not isinstance(metrics, bool):
        raise InvalidArgumentError("metrics must be a bool or a prometheus_client CollectorRegistry")
    return REGISTRY if metrics else CollectorRegistry()
