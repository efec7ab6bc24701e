"""Add latency with and without ``Durability(replicas=1)`` (and ``fsync=True``) on loopback.

Starts a primary (appendonly yes, appendfsync everysec) and one replica with EmbeddedValkey,
then times sequential adds and prints the medians. ``python bench/durability_latency.py [N]``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import glidemq
from glidemq.testing import EmbeddedValkey


async def timed(queue: glidemq.Queue, count: int, durability: glidemq.Durability | None) -> list[float]:
    samples = []
    for i in range(count):
        started = time.perf_counter()
        await queue.add("job", {"i": i}, durability=durability)
        samples.append(time.perf_counter() - started)
    return samples


async def main(count: int) -> None:
    primary = EmbeddedValkey(appendonly=True, extra_args=["--appendfsync", "everysec"])
    with primary, EmbeddedValkey() as replica:
        replica.command("REPLICAOF", primary.host, primary.port)
        while b"master_link_status:up" not in replica.command("INFO", "replication"):
            await asyncio.sleep(0.05)
        async with glidemq.Queue("latency", connection=primary.url) as queue:
            await timed(queue, 50, glidemq.Durability(replicas=1))  # warm up both clients
            await timed(queue, 50, None)
            cases = {
                "plain add": None,
                "replicas=1": glidemq.Durability(replicas=1),
                "fsync=True": glidemq.Durability(fsync=True),
                "replicas=1, fsync=True": glidemq.Durability(replicas=1, fsync=True),
            }
            for label, durability in cases.items():
                samples = await timed(queue, count, durability)
                print(f"{label:24} median {statistics.median(samples) * 1e6:7.0f} µs  "
                      f"p99 {sorted(samples)[int(len(samples) * 0.99)] * 1e6:7.0f} µs  ({count} adds)")
            await queue.obliterate(force=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
