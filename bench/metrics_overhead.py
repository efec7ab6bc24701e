"""What recording Prometheus metrics costs a worker: processing at concurrency 50, with and
without ``Worker(metrics=True)``, in alternating rounds on one embedded Valkey.

    python bench/metrics_overhead.py [--jobs 20000] [--rounds 3]

Prints jobs/s and worker CPU µs per job of every run and the median of each side. Worker
CPU per job is the steadier figure on a shared machine; jobs/s moves with the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys

from _probe import ServerProbe
from _scenarios import Bench, Result

import glidemq
from glidemq.testing import EmbeddedValkey

CONCURRENCY = 50


async def one(bench: Bench, jobs: int, metrics: bool) -> Result:
    os.environ["GLIDEMQ_BENCH_METRICS"] = "1" if metrics else "0"  # read by the worker process
    result = await bench.process(jobs, CONCURRENCY)
    if result.problems:
        raise SystemExit(f"problems: {result.problems}")
    return result


async def main(args: argparse.Namespace) -> None:
    with EmbeddedValkey() as server:
        probe = await ServerProbe.connect(glidemq.Connection(server.url))
        bench = Bench(server.url, probe)
        runs: dict[bool, list[Result]] = {False: [], True: []}
        try:
            for _ in range(args.rounds):
                for metrics in (False, True):
                    r = await one(bench, args.jobs, metrics)
                    runs[metrics].append(r)
                    cpu = r.per_job(r.cpu_seconds) * 1e6
                    print(f"metrics={'on ' if metrics else 'off'}  {r.jobs_per_sec:9,.0f} jobs/s  "
                          f"worker CPU {cpu:5.1f} µs/job", flush=True)
        finally:
            await probe.close()
    for metrics in (False, True):
        rate = statistics.median(r.jobs_per_sec for r in runs[metrics])
        cpu = statistics.median(r.per_job(r.cpu_seconds) * 1e6 for r in runs[metrics])
        print(f"median metrics={'on ' if metrics else 'off'}  {rate:9,.0f} jobs/s  worker CPU {cpu:5.1f} µs/job")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
