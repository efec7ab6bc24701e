"""The waiting side of bench/pickup_floor.py: blocks on ``BLPOP`` until each value arrives.

    python bench/_floor_consumer.py --client raw|glide --port PORT --key KEY --jobs N

Prints ``ready`` once connected, then, after N values (each the ``time.time()`` of its push),
one JSON line with the seconds from each push to the moment its value was in hand.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from glide import GlideClient, GlideClientConfiguration, NodeAddress

from glidemq._loop import run as run_loop


async def raw_pops(port: int, key: str, jobs: int) -> list[float]:
    """A plain asyncio stream: the cheapest client Python has."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"*3\r\n$5\r\nBLPOP\r\n${len(key)}\r\n{key}\r\n$1\r\n0\r\n".encode()
    print("ready", flush=True)
    latencies = []
    for _ in range(jobs):
        writer.write(request)
        for _ in range(4):  # *2, $<len>, key, $<len>
            await reader.readline()
        value = await reader.readline()
        latencies.append(time.time() - float(value))
    writer.close()
    return latencies


async def glide_pops(port: int, key: str, jobs: int) -> list[float]:
    """valkey-glide, the client glidemq uses."""
    config = GlideClientConfiguration([NodeAddress("127.0.0.1", port)], request_timeout=60_000)
    client = await GlideClient.create(config)
    print("ready", flush=True)
    latencies = []
    for _ in range(jobs):
        popped = await client.blpop([key], 0)
        assert popped is not None
        latencies.append(time.time() - float(popped[1]))
    await client.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", choices=("raw", "glide"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    args = parser.parse_args()
    pops = raw_pops if args.client == "raw" else glide_pops
    latencies = run_loop(pops(args.port, args.key, args.jobs))
    print(json.dumps({"latencies": latencies}), flush=True)


if __name__ == "__main__":
    main()
