"""Celery with its Redis broker: ``task.delay(i)`` (blocking client, no bulk API).

One worker process with the thread pool: ``app.Worker(pool="threads", concurrency=C)``, the
default prefetch multiplier (4), results ignored (``task_ignore_result``), no heartbeat, mingle
or gossip; completions are counted with the ``task_success`` signal.
"""

from __future__ import annotations

from typing import Any

from _common import Driver, Tally, main, stamp
from celery import Celery
from celery.signals import task_success


class CeleryDriver(Driver):
    packages = ("celery", "kombu", "redis")

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.app = Celery("bench", broker=self.url)
        self.app.conf.update(
            task_default_queue=self.queue, task_ignore_result=True, broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False, worker_redirect_stdouts=False,  # keeps stdout for the report
        )

        @self.app.task(name="noop")
        def noop(i: Any) -> None:
            stamp(i)

        self.task = noop

    def add_one_sync(self, i: Any) -> None:
        self.task.delay(i)

    def start_worker(self, concurrency: int, tally: Tally) -> None:
        task_success.connect(tally.hit, weak=False)
        self.app.Worker(pool="threads", concurrency=concurrency, loglevel="WARNING", quiet=True,
                        without_heartbeat=True, without_mingle=True, without_gossip=True).start()


if __name__ == "__main__":
    main(CeleryDriver)
