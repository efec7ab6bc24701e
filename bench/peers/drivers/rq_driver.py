"""RQ: ``Queue.enqueue`` (blocking client) and ``Queue.enqueue_many`` (one pipeline) for bulk.

RQ runs one job at a time per worker process. Concurrency 1 is one ``SimpleWorker`` (it runs
jobs in its own process instead of forking a work horse per job, RQ's fastest mode);
concurrency C > 1 is ``WorkerPool(num_workers=C, worker_class=SimpleWorker)``: C processes.
Completions are counted from the queue's finished-job registry, polled every 5 ms.
"""

from __future__ import annotations

import os
import tempfile
import threading
from typing import Any

from _common import Driver, Tally, main
from _rq_tasks import LATENCY_FILE, noop
from redis import Redis
from rq import Queue, SimpleWorker
from rq.worker_pool import WorkerPool

POLL_SECONDS = 0.005
BULK_CHUNK = 1000


class RqDriver(Driver):
    packages = ("rq", "redis")

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.redis = Redis.from_url(self.url)
        self.q = Queue(self.queue, connection=self.redis)
        if args.scenario == "latency_work":  # jobs run in pool processes: they write latencies here
            os.environ[LATENCY_FILE] = tempfile.mkstemp(prefix="rq-latency-")[1]

    def add_one_sync(self, i: Any) -> None:
        self.q.enqueue(noop, i)

    async def add_bulk(self, jobs: int) -> None:
        for first in range(0, jobs, BULK_CHUNK):
            with self.redis.pipeline() as pipe:
                datas = [Queue.prepare_data(noop, (i,)) for i in range(first, min(jobs, first + BULK_CHUNK))]
                self.q.enqueue_many(datas, pipeline=pipe)
                pipe.execute()

    def start_worker(self, concurrency: int, tally: Tally) -> None:
        threading.Thread(target=self._count, args=(tally,), daemon=True).start()
        if concurrency == 1:
            SimpleWorker([self.q], connection=self.redis).work(logging_level="WARNING")
        else:
            WorkerPool([self.queue], connection=self.redis, num_workers=concurrency,
                       worker_class=SimpleWorker).start(logging_level="WARNING")

    def latencies(self) -> list[float]:
        path = os.environ[LATENCY_FILE]
        with open(path) as found:
            samples = [float(line) for line in found if line.strip()]
        os.unlink(path)
        return samples

    def _count(self, tally: Tally) -> None:
        registry = self.q.finished_job_registry
        seen = 0
        while not tally.done.wait(POLL_SECONDS):
            now = registry.count
            tally.add(now - seen)
            seen = now


if __name__ == "__main__":
    main(RqDriver)
