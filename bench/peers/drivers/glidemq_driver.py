"""glidemq: ``Queue.add`` / ``Queue.add_bulk``; a ``Worker(concurrency=C)`` counting ``completed`` events."""

from __future__ import annotations

from typing import Any

from _common import Driver, Tally, main, stamp

import glidemq


class GlidemqDriver(Driver):
    packages = ("glidemq", "valkey-glide")

    async def connect(self) -> None:
        self.q = glidemq.Queue(self.queue, connection=self.url)
        await self.q.count()  # connects and loads the function library outside the timing

    async def add_one(self, i: Any) -> None:
        await self.q.add("noop", {"i": i})

    async def add_bulk(self, jobs: int) -> None:
        await self.q.add_bulk([("noop", {"i": i}) for i in range(jobs)])

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        async def noop(job: glidemq.Job) -> None:
            stamp(job.data["i"])

        worker = glidemq.Worker(self.queue, noop, connection=self.url, concurrency=concurrency)
        worker.on("completed", tally.hit)
        return worker.run()


if __name__ == "__main__":
    main(GlidemqDriver)
