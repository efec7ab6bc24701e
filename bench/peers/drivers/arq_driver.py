"""arq: ``ArqRedis.enqueue_job`` (no bulk API); ``Worker(max_jobs=C)`` run with ``async_run``.

Defaults otherwise (results kept for an hour, as arq does); completions are counted by the
worker's ``after_job_end`` hook.
"""

from __future__ import annotations

from typing import Any

from _common import Driver, Tally, main, stamp
from arq import Worker, create_pool
from arq.connections import ArqRedis, RedisSettings


async def noop(ctx: dict[str, Any], i: Any) -> None:
    stamp(i)


class ArqDriver(Driver):
    packages = ("arq", "redis")

    async def connect(self) -> None:
        self.redis: ArqRedis = await create_pool(RedisSettings.from_dsn(self.url))

    async def add_one(self, i: Any) -> None:
        await self.redis.enqueue_job("noop", i, _queue_name=self.queue)

    def start_worker(self, concurrency: int, tally: Tally) -> Any:
        async def after_job_end(ctx: dict[str, Any]) -> None:
            tally.hit()

        async def run() -> None:  # arq's Worker binds the event loop it is created on
            worker = Worker(
                functions=[noop], queue_name=self.queue, redis_settings=RedisSettings.from_dsn(self.url),
                max_jobs=concurrency, after_job_end=after_job_end, handle_signals=False,
            )
            await worker.async_run()

        return run()


if __name__ == "__main__":
    main(ArqDriver)
