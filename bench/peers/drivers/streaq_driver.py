"""streaq: ``task.enqueue(i)`` and ``Worker.enqueue_many`` (one pipeline) for bulk;
``Worker(concurrency=C)`` run with ``run_async``. Completions are counted by a middleware
around the task (it sees the task return, just before streaq records the result).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from _common import Driver, Tally, main, stamp
from streaq import Worker


class StreaqDriver(Driver):
    packages = ("streaq", "coredis")

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.concurrency = args.concurrency
        self.tally: Tally | None = None
        self.worker = Worker(redis_url=self.url, queue_name=self.queue, concurrency=args.concurrency,
                             handle_signals=False)

        @self.worker.task
        async def noop(i: Any) -> None:
            stamp(i)

        @self.worker.middleware
        def count(task: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                result = await task(*args, **kwargs)
                if self.tally is not None:
                    self.tally.hit()
                return result

            return wrapper

        self.task = noop

    async def connect(self) -> None:
        await self.worker.__aenter__()

    async def add_one(self, i: Any) -> None:
        await self.task.enqueue(i)

    async def add_bulk(self, jobs: int) -> None:
        await self.worker.enqueue_many([self.task.enqueue(i) for i in range(jobs)])

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        self.tally = tally
        return self.worker.run_async()


if __name__ == "__main__":
    main(StreaqDriver)
