"""taskiq with taskiq-redis' ``RedisStreamBroker`` (a stream and a consumer group per queue).

Adds are ``task.kiq(i)`` (no bulk API). The worker is what ``taskiq worker`` runs, in this
process: ``Receiver(broker, max_async_tasks=C)`` with the CLI's defaults otherwise (thread
pool executor, no extra prefetch, ack when saved); completions are counted by a middleware's
``post_save`` hook (the dummy result backend, as by default).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from _common import Driver, Tally, main, stamp
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.receiver import Receiver
from taskiq_redis import RedisStreamBroker


class CountCompletions(TaskiqMiddleware):
    def __init__(self) -> None:
        super().__init__()
        self.tally: Tally | None = None

    def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if self.tally is not None:
            self.tally.hit()


class TaskiqDriver(Driver):
    packages = ("taskiq", "taskiq-redis", "redis")

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.counter = CountCompletions()
        self.broker = RedisStreamBroker(self.url, queue_name=self.queue, consumer_group_name=self.queue)
        self.broker.add_middlewares(self.counter)

        @self.broker.task(task_name="noop")
        async def noop(i: Any) -> None:
            stamp(i)

        self.task = noop

    async def connect(self) -> None:
        await self.broker.startup()  # also creates the consumer group, before any job is added

    async def add_one(self, i: Any) -> None:
        await self.task.kiq(i)

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        self.counter.tally = tally
        return self._listen(concurrency)

    async def _listen(self, concurrency: int) -> None:
        self.broker.is_worker_process = True
        await self.broker.startup()
        with ThreadPoolExecutor() as pool:
            receiver = Receiver(self.broker, executor=pool, max_async_tasks=concurrency)
            await receiver.listen(asyncio.Event())




if __name__ == "__main__":
    main(TaskiqDriver)
