"""How fast can any pickup be on this machine? The floor under glidemq's pickup latency.

    python bench/pickup_floor.py [--seconds 5] [--rounds 3] [--no-pin]

On one embedded Valkey (placed on the CPUs as bench/run.py places it), each round measures,
at the pickup scenario's pace (500 values or jobs per second, each carrying its
``time.time()``), the time from the moment a producer is about to send until a waiting
consumer in another process holds the value:

- ``LPUSH`` → ``BLPOP`` with each side a plain asyncio stream (raw) or valkey-glide: no queue
  logic at all, one server command each way, so the floor for any client on this machine;
- glidemq itself: ``Queue.add`` → an idle ``Worker`` of concurrency 10 (bench/run.py's
  ``latency`` scenario, the processor's start as the end).

Rounds interleave the setups, so each round's figures share the machine's mood.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from _cpus import add_pin_option, pin
from _probe import ServerProbe
from _scenarios import Bench, percentile
from glide import GlideClient, GlideClientConfiguration, NodeAddress

import glidemq
from glidemq._loop import run as run_loop
from glidemq.testing import EmbeddedValkey

RATE = 500.0
CONSUMER = Path(__file__).with_name("_floor_consumer.py")
PAIRS = (("raw", "raw"), ("glide", "raw"), ("raw", "glide"), ("glide", "glide"))


class RawPusher:
    """LPUSH over a plain asyncio stream."""

    async def open(self, port: int) -> None:
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)

    async def push(self, key: str, value: str) -> None:
        self._writer.write(f"*3\r\n$5\r\nLPUSH\r\n${len(key)}\r\n{key}\r\n${len(value)}\r\n{value}\r\n".encode())
        await self._reader.readline()

    async def close(self) -> None:
        self._writer.close()


class GlidePusher:
    """LPUSH through valkey-glide."""

    async def open(self, port: int) -> None:
        self._client = await GlideClient.create(GlideClientConfiguration([NodeAddress("127.0.0.1", port)]))

    async def push(self, key: str, value: str) -> None:
        await self._client.lpush(key, [value])

    async def close(self) -> None:
        await self._client.close()


async def floor(port: int, producer: str, consumer: str, jobs: int) -> list[float]:
    """Latencies of ``jobs`` paced pushes from ``producer`` to a ``consumer`` in another process."""
    key = f"floor-{producer}-{consumer}-{time.monotonic_ns()}"
    waiting = await asyncio.create_subprocess_exec(
        sys.executable, str(CONSUMER), "--client", consumer, "--port", str(port), "--key", key, "--jobs", str(jobs),
        stdout=asyncio.subprocess.PIPE,
    )
    assert waiting.stdout is not None
    if (await waiting.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the consumer did not start")
    pusher = RawPusher() if producer == "raw" else GlidePusher()
    await pusher.open(port)
    await asyncio.sleep(0.5)  # the consumer's BLPOP is waiting
    start = time.perf_counter()
    for i in range(jobs):
        wait = start + i / RATE - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        await pusher.push(key, repr(time.time()))
    await pusher.close()
    report = json.loads(await waiting.stdout.readline())
    await waiting.wait()
    latencies: list[float] = report["latencies"]
    return latencies


def summary(latencies: list[float]) -> dict[str, float]:
    return {f"p{p}_ms": round(percentile(latencies, p) * 1000, 3) for p in (50, 90, 99)}


async def run(args: argparse.Namespace, url: str, port: int) -> list[dict[str, Any]]:
    jobs = round(RATE * args.seconds)
    probe = await ServerProbe.connect(glidemq.Connection(url))
    bench = Bench(url, probe, None)
    rows: list[dict[str, Any]] = []
    try:
        for round_ in range(1, args.rounds + 1):
            for producer, consumer in PAIRS:
                found = summary(await floor(port, producer, consumer, jobs))
                rows.append({"round": round_, "setup": f"LPUSH ({producer}) -> BLPOP ({consumer})", **found})
                print(rows[-1], file=sys.stderr, flush=True)
            result = await bench.latency(RATE, args.seconds)
            if result.problems:
                raise RuntimeError(f"glidemq's pickup scenario: {result.problems}")
            picked = {key: result.extra[key] for key in ("p50_ms", "p90_ms", "p99_ms")}
            rows.append({"round": round_, "setup": "glidemq: Queue.add -> Worker (concurrency 10)", **picked})
            print(rows[-1], file=sys.stderr, flush=True)
    finally:
        await probe.close()
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    setups = list(dict.fromkeys(row["setup"] for row in rows))
    lines = ["| setup | p50 ms, each round | p90 ms | p99 ms |", "|---|---:|---:|---:|"]
    for setup in setups:
        mine = [row for row in rows if row["setup"] == setup]
        cells = [" / ".join(f"{row[key]:.2f}" for row in mine) for key in ("p50_ms", "p90_ms", "p99_ms")]
        lines.append(f"| {setup} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the floor under a pickup on this machine")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per setup and round (default 5)")
    parser.add_argument("--rounds", type=int, default=3)
    add_pin_option(parser)
    args = parser.parse_args(argv)
    with EmbeddedValkey() as server:
        placement = pin(server.pid, args.pin)
        rows = run_loop(run(args, server.url, server.port))
    print(table(rows))
    print(f"\nCPU placement: {placement}; {RATE:g} per second for {args.seconds:g} s per setup and round")
    return 0


if __name__ == "__main__":
    sys.exit(main())
