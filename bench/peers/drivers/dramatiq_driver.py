"""dramatiq with its ``RedisBroker``: ``actor.send(i)`` (a blocking client, no bulk API).

The worker is what the ``dramatiq`` command starts in each of its processes, here one process:
``Worker(broker, worker_threads=C)`` (C threads, prefetch as the broker sets it by default);
completions are counted by a middleware's ``after_process_message`` hook.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from _common import Driver, Tally, main, stamp
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware


class CountCompletions(Middleware):
    def __init__(self) -> None:
        self.tally: Tally | None = None

    def after_process_message(self, broker: Any, message: Any, *, result: Any = None, exception: Any = None) -> None:
        if self.tally is not None and exception is None:
            self.tally.hit()


class DramatiqDriver(Driver):
    packages = ("dramatiq", "redis")

    def __init__(self, args: Any) -> None:
        super().__init__(args)
        self.counter = CountCompletions()
        self.broker = RedisBroker(url=self.url)
        self.broker.add_middleware(self.counter)
        dramatiq.set_broker(self.broker)

        def noop(i: Any) -> None:
            stamp(i)

        self.actor = dramatiq.actor(noop, queue_name=self.queue, broker=self.broker)

    def add_one_sync(self, i: Any) -> None:
        self.actor.send(i)

    def start_worker(self, concurrency: int, tally: Tally) -> None:
        self.counter.tally = tally
        dramatiq.Worker(self.broker, worker_threads=concurrency).start()


if __name__ == "__main__":
    main(DramatiqDriver)
