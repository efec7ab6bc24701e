"""What each feature costs: processing at concurrency 50 with one feature switched on at a time.

    python bench/features.py [--jobs N] [--url URL] [--rounds R] [--no-pin]

Every variant runs against the same server in one run (plain first, then each feature, R rounds
interleaved so a noisy neighbour hits all of them alike) and is reported as jobs/s and as a ratio
to the plain run of its round. Limits are set far above what the run reaches, so the figure is the
cost of checking them, not of being limited.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from _cpus import add_pin_option, pin
from _probe import ServerProbe
from _scenarios import Bench, Result, Variant

import glidemq
from glidemq._loop import run as run_loop
from glidemq.testing import EmbeddedValkey

CONCURRENCY = 50


FLOW_FANOUT = 10


async def add_flows(queue: glidemq.Queue, jobs: int) -> None:
    """``jobs`` children, FLOW_FANOUT per parent; the parents wait in a queue nobody processes."""
    parents = f"{queue.name}-parents"
    trees = [
        glidemq.FlowJob("parent", parents, children=[
            glidemq.FlowJob("noop", queue.name, {"i": i}) for i in range(start, min(start + FLOW_FANOUT, jobs))
        ])
        for start in range(0, jobs, FLOW_FANOUT)
    ]
    async with glidemq.FlowProducer(connection=queue._ctx.connection) as flow:
        for start in range(0, len(trees), 100):
            await flow.add_bulk(trees[start:start + 100])


def variants() -> list[Variant]:
    return [
        Variant("plain", "no options"),
        Variant("priority", "priorities 1..10", job_options=lambda i: {"priority": 1 + i % 10}),
        Variant("delay", "delayed by 1 ms (promoted by the worker)", job_options=lambda i: {"delay": 0.001}),
        Variant("flow", "children of flows (10 per parent, parent in another queue)", fill=add_flows),
        Variant("dedup", "deduplication id per job", job_options=lambda i: {"deduplication": glidemq.Dedup(f"d{i}")}),
        Variant("limiter", "worker rate limit (not reached)", worker_options={"limiter": [10**9, 1]}),
        Variant("queue_limit", "queue rate limit (not reached)", prepare=lambda q: q.set_rate_limit(10**9, 1)),
        Variant("concurrency", "global concurrency 1000", prepare=lambda q: q.set_global_concurrency(1000)),
        Variant("dead_letters", "dead-letter queue configured", worker_options={"dead_letter_queue": "bench-dead"}),
        Variant("no_prefetch", "prefetch=0 (no jobs held beyond concurrency)", worker_options={"prefetch": 0}),
        Variant(
            "remove", "remove_on_complete", job_options=lambda i: {"remove_on_complete": True}, keeps_completed=False
        ),
    ]


async def run(url: str, jobs: int, rounds: int) -> list[tuple[Variant, list[Result], list[float]]]:
    probe = await ServerProbe.connect(glidemq.Connection(url))
    bench = Bench(url, probe)
    table: dict[str, tuple[Variant, list[Result], list[float]]] = {}
    try:
        for _ in range(rounds):
            plain_rate = 0.0
            for variant in variants():
                print(f"running {variant.name} ...", file=sys.stderr, flush=True)
                result = await bench.process(jobs, CONCURRENCY, variant=variant)
                if variant.name == "plain":
                    plain_rate = result.jobs_per_sec
                entry = table.setdefault(variant.name, (variant, [], []))
                entry[1].append(result)
                entry[2].append(result.jobs_per_sec / plain_rate if plain_rate else 0.0)
    finally:
        await probe.close()
    return list(table.values())


def report(rows: list[tuple[Variant, list[Result], list[float]]]) -> str:
    lines = [
        f"| feature (concurrency {CONCURRENCY}) | jobs/s (median) | vs plain | server cmds/job | server µs/job |"
        " worker µs/job |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant, results, ratios in rows:
        rate = statistics.median(r.jobs_per_sec for r in results)
        cmds = statistics.median(r.per_job(r.server.commands) for r in results)
        server = statistics.median(r.per_job(r.server.cpu_seconds) * 1e6 for r in results)
        worker = statistics.median(r.per_job(r.cpu_seconds) * 1e6 for r in results)
        problems = sorted({p for r in results for p in r.problems})
        note = f" ({'; '.join(problems)})" if problems else ""
        lines.append(
            f"| {variant.label}{note} | {rate:,.0f} | {statistics.median(ratios):.2f}x | {cmds:.2f} | {server:.1f} |"
            f" {worker:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--url", default=None)
    add_pin_option(parser)
    args = parser.parse_args(argv)
    server: Any = None
    url = args.url
    if url is None:
        server = EmbeddedValkey().start()
        url = server.url
    print(f"CPU placement: {pin(server.pid if server else None, args.pin)}", file=sys.stderr)
    try:
        rows = run_loop(run(url, args.jobs, args.rounds))
    finally:
        if server is not None:
            server.stop()
    print(report(rows))
    return 1 if any(r.problems for _, results, _ in rows for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
