"""saq on Redis: ``Queue.enqueue`` (no bulk API); ``Worker(queue, concurrency=C)``.

Defaults otherwise; completions are counted by the worker's ``after_process`` hook.
"""

from __future__ import annotations

from typing import Any

from _common import Driver, Tally, main, stamp
from saq import Queue, Worker


async def noop(ctx: dict[str, Any], *, i: Any) -> None:
    stamp(i)


class SaqDriver(Driver):
    packages = ("saq", "redis")

    async def connect(self) -> None:
        self.q = Queue.from_url(self.url, name=self.queue)
        await self.q.connect()

    async def add_one(self, i: Any) -> None:
        await self.q.enqueue("noop", i=i)

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        async def after_process(ctx: dict[str, Any]) -> None:
            tally.hit()

        async def run() -> None:
            queue = Queue.from_url(self.url, name=self.queue)
            worker = Worker(queue, functions=[noop], concurrency=concurrency, after_process=after_process)
            await worker.start()

        return run()


if __name__ == "__main__":
    main(SaqDriver)
