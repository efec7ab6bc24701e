"""The BullMQ Python port (``bullmq`` on PyPI): ``Queue.add`` / ``Queue.addBulk``;
``Worker(..., {"concurrency": C})`` counting its ``completed`` events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _common import Driver, Tally, main, stamp
from bullmq import Queue, Worker


async def noop(job: Any, token: Any) -> None:
    stamp(job.data["i"])


class BullmqPyDriver(Driver):
    packages = ("bullmq", "redis")

    async def connect(self) -> None:
        self.q = Queue(self.queue, {"connection": self.url})

    async def add_one(self, i: Any) -> None:
        await self.q.add("noop", {"i": i})

    async def add_bulk(self, jobs: int) -> None:
        await self.q.addBulk([{"name": "noop", "data": {"i": i}} for i in range(jobs)])

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        async def run() -> None:  # the Worker starts its loop on construction
            worker = Worker(self.queue, noop, {"connection": self.url, "concurrency": concurrency})
            worker.on("completed", tally.hit)
            await tally_wait(tally)

        return run()


async def tally_wait(tally: Tally) -> None:
    while not tally.done.is_set():
        await asyncio.sleep(0.1)


if __name__ == "__main__":
    main(BullmqPyDriver)
