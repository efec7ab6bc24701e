"""What a worker reports about its jobs besides events: Prometheus metrics, when asked for.

prometheus_client is imported only when a worker asks for metrics (extra ``glidemq[metrics]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _validate as check
from ._logging import get_logger
from ._worker_events import EventEmitter
from .connection import Connection
from .errors import GlideMQError

log = get_logger("worker")

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .metrics import MetricsServer, WorkerMetrics


class WorkerObserver:
    """Records a worker's finished jobs into its metrics and serves them when given a port."""

    def __init__(self, queue: str, metrics: Any, port: int | None) -> None:
        try:
            from . import metrics as prometheus  # optional dependency
        except ImportError as exc:
            raise ImportError('Worker metrics need prometheus_client: pip install "glidemq[metrics]"') from exc
        self.queue = queue
        self.port = port
        self.registry: CollectorRegistry = prometheus.registry_for(metrics)
        self.metrics: WorkerMetrics = prometheus.WorkerMetrics.of(self.registry)
        self._server: MetricsServer | None = None

    @classmethod
    def create(cls, queue: str, metrics: Any, port: int | None) -> WorkerObserver | None:
        """An observer for a worker's options, or None when it records nothing."""
        if port is not None:
            check.integer(port, "metrics_port", minimum=0, maximum=65535)
        if (metrics is False or metrics is None) and port is None:
            return None
        return cls(queue, metrics, port)

    def finished(self, outcomes: Sequence[tuple[Any, ...]], statuses: Sequence[int], now_ms: int) -> None:
        """Records a batch of finished jobs."""
        self.metrics.observe(self.queue, outcomes, statuses, now_ms)

    async def start(self, connection: Connection, prefix: str, events: EventEmitter) -> None:
        """Starts the HTTP endpoint, if the worker has a metrics port.

        A port that cannot be served (in use, say) is reported as an ``error`` event and logged;
        the worker runs on without it.
        """
        if self.port is None:
            return
        from .metrics import serve_metrics  # optional dependency

        try:
            self._server = await serve_metrics(
                self.port, connection=connection, prefix=prefix, queues=[self.queue], registry=self.registry
            )
        except OSError as exc:
            log.error("cannot serve metrics of queue %s on port %s: %s", self.queue, self.port, exc,
                      extra={"queue": self.queue})
            await events.emit("error", GlideMQError(f"cannot serve metrics on port {self.port}: {exc}"))

    async def stop(self) -> None:
        """Stops the HTTP endpoint."""
        server, self._server = self._server, None
        if server is not None:
            await server.close()
