"""glidemq benchmark: producer rates, processing rates, pickup latency and cost per job.

    python bench/run.py [--jobs 20000] [--url URL] [--quick] [--no-pin] [--prefetch N] [--output PATH]

Without ``--url`` it starts an embedded Valkey (glidemq.testing.EmbeddedValkey). Every
scenario uses a fresh queue, so a shared server is never flushed. Workers run in a
subprocess of their own (bench/_worker.py). Prints a table and writes JSON
(bench/results/latest.json by default). Exits 1 if a scenario failed or saw errors.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any

from _cpus import add_pin_option, pin
from _probe import ServerProbe
from _report import table, write_json
from _scenarios import Bench, Result

import glidemq
from glidemq._loop import loop_name
from glidemq._loop import run as run_loop
from glidemq.testing import EmbeddedValkey

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "latest.json"
DEFAULT_JOBS, QUICK_JOBS = 20_000, 500
LATENCY_RATE = 500.0
LATENCY_SECONDS, QUICK_LATENCY_SECONDS = 5.0, 1.0
CONCURRENCIES = (1, 10, 50)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="glidemq benchmark")
    parser.add_argument("--jobs", type=int, default=None, help=f"jobs per scenario (default {DEFAULT_JOBS})")
    parser.add_argument("--url", default=None, help="a Valkey server to use instead of an embedded one")
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_JOBS} jobs, 1 s of latency")
    parser.add_argument("--prefetch", type=int, default=None,
                        help="the workers' prefetch (default: the Worker's own, which adapts to the jobs)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    add_pin_option(parser)
    args = parser.parse_args(argv)
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else DEFAULT_JOBS
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the tree the benchmark runs from, if it is a checkout."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


async def run_meta(probe: ServerProbe, server_name: str, cpus: dict[str, Any]) -> dict[str, Any]:
    """What a benchmark run's JSON records about where and how it ran."""
    return {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "server": server_name,
        "valkey_version": await probe.version(),
        "glidemq_version": glidemq.__version__,
        "git_revision": git_revision(),
        "compiled_codec": glidemq.USE_EXTENSIONS,
        "event_loop": loop_name(),  # of this process and the worker process (GLIDEMQ_LOOP picks it)
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu_placement": cpus,
        "load_average_before": load(),
    }


async def run(args: argparse.Namespace, url: str, server_name: str) -> int:
    probe = await ServerProbe.connect(glidemq.Connection(url))
    bench = Bench(url, probe, None if args.prefetch is None else {"prefetch": args.prefetch})
    latency_seconds = QUICK_LATENCY_SECONDS if args.quick else LATENCY_SECONDS
    meta: dict[str, Any] = {
        **await run_meta(probe, server_name, args.cpus),
        "jobs": args.jobs,
        "quick": args.quick,
        "worker": "separate process (bench/_worker.py), no-op async processor",
        "worker_prefetch": "auto" if args.prefetch is None else args.prefetch,
    }
    steps: list[tuple[str, Callable[[], Awaitable[Result]]]] = [
        ("add_sequential", partial(bench.add_sequential, args.jobs)),
        ("add_concurrent", partial(bench.add_concurrent, args.jobs)),
        ("add_bulk", partial(bench.add_bulk, args.jobs)),
        *((f"process_c{c}", partial(bench.process, args.jobs, c)) for c in CONCURRENCIES),
        ("latency", partial(bench.latency, LATENCY_RATE, latency_seconds)),
    ]
    results: list[Result] = []
    errors: list[str] = []
    try:
        for name, step in steps:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                results.append(await step())
            except Exception as exc:  # noqa: BLE001 - one broken scenario must not hide the others
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        await probe.close()
    meta["load_average_after"] = load()
    print(table(results), flush=True)
    for error in errors:
        print(f"error in {error}")
    write_json(args.output, meta, results, errors)
    print(f"\nwrote {args.output}")
    return 1 if errors or any(r.problems for r in results) else 0


def on_server(args: argparse.Namespace, run: Callable[[argparse.Namespace, str, str], Coroutine[Any, Any, int]]) -> int:
    """Runs ``run(args, url, server name)`` against ``--url``, or an embedded Valkey without it."""
    if args.url is not None:
        args.cpus = pin(None)
        return run_loop(run(args, args.url, glidemq.Connection(args.url).url))
    with EmbeddedValkey() as server:
        args.cpus = pin(server.pid, args.pin)
        return run_loop(run(args, server.url, "embedded"))


def main(argv: list[str] | None = None) -> int:
    return on_server(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
