"""A worker process that completes jobs but never delivers their notifications to parents.

    python -m tests.flow_worker URL QUEUE

It stands for a worker killed between finishing a child and delivering its outcome: the
test SIGKILLs it once the child is completed. Each job returns ``job.data``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import glidemq
from glidemq import _flow_outbox


async def never_deliver(*args: Any) -> int:
    return 0


async def echo(job: glidemq.Job) -> Any:
    return job.data


async def main(url: str, queue: str) -> None:
    _flow_outbox.deliver_outbox = never_deliver  # type: ignore[assignment]
    async with glidemq.Worker(queue, echo, connection=url):
        await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
