"""The ``glidemq`` command line: run a worker, look at a queue, try it out.

```
glidemq worker MODULE:ATTR [--url URL] [--concurrency N] [--burst] [--queue NAME] [--prefix P] [--processes N]
glidemq stats QUEUE [--url URL] [--prefix P]
glidemq demo [--url URL] [--jobs N] [--concurrency N]
glidemq doctor [--url URL]
glidemq load-library [--url URL]
glidemq dashboard [--port 8080] [--host H] [--url URL] [--prefix P] [--queue NAME ...] [--read-only]
glidemq queues | job | retry | remove | clean | pause | resume | workers | watch | metrics ...
```
(the operations commands: see ``glidemq._cli_ops``)
The server is ``--url``, else the ``GLIDEMQ_URL`` environment variable, else
``valkey://127.0.0.1:6379`` (``demo`` starts an embedded Valkey instead of using the default).
Exit codes: 0 success, 1 runtime failure (server unreachable, ...), 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import __version__, _cli_ops
from ._cli_admin import run_doctor_command, run_load_library_command
from ._cli_common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, UsageError, connection_url, positive_int
from ._cli_dashboard import add_dashboard_parser, run_dashboard_command
from ._cli_worker import run_worker_command
from ._demo import run_demo_command
from ._loop import run as run_loop
from .errors import GlideMQError, InvalidArgumentError
from .queue import STATES, Queue

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``glidemq`` command."""
    parser = argparse.ArgumentParser(prog="glidemq", description="glidemq: a fast, reliable job queue on Valkey.")
    parser.add_argument("--version", action="version", version=f"glidemq {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    url_help = "server URL (default: $GLIDEMQ_URL, else valkey://127.0.0.1:6379)"

    worker = commands.add_parser(
        "worker",
        help="run a worker",
        description=(
            "Run a worker until SIGTERM/SIGINT (graceful: active jobs finish; a second signal forces: "
            "active jobs are cancelled and go back to waiting). TARGET is MODULE:ATTR where ATTR is a "
            "glidemq.Worker or glidemq.sync.Worker, or a processor function used with --queue (a plain def function "
            "runs with the sync worker: in threads, or in child processes with --processes). "
            "The current directory is importable. "
            "--url is exported as GLIDEMQ_URL before the module is imported, so components built without an "
            "explicit connection use it; options that contradict a Worker object's own settings are an error."
        ),
    )
    worker.add_argument("target", metavar="MODULE:ATTR", help="e.g. myapp.tasks:worker or myapp.tasks:process")
    worker.add_argument("--url", help=url_help)
    worker.add_argument("--queue", help="queue name (required when ATTR is a processor function)")
    worker.add_argument("--concurrency", type=positive_int, help="jobs run at once (processor default: 1)")
    worker.add_argument("--prefix", help="key prefix (default: glidemq)")
    worker.add_argument(
        "--processes", type=positive_int,
        help="run a plain-function processor in N child processes (default: threads)",
    )
    worker.add_argument(
        "--burst", action="store_true", help="exit 0 once the queue has no waiting, delayed or active jobs"
    )

    stats = commands.add_parser("stats", help="print a queue's job counts by state")
    stats.add_argument("queue", metavar="QUEUE")
    stats.add_argument("--url", help=url_help)
    stats.add_argument("--prefix", default="glidemq", help="key prefix (default: glidemq)")

    demo = commands.add_parser(
        "demo",
        help="run a throughput and latency demo",
        description=(
            "Add jobs and process them with a live progress display, then print throughput and pickup "
            "latency. Without --url and GLIDEMQ_URL it runs on an embedded Valkey that it starts and stops. "
            "On a given server it uses a fresh queue and deletes it at the end."
        ),
    )
    demo.add_argument("--url", help="server URL (default: $GLIDEMQ_URL, else an embedded Valkey)")
    demo.add_argument("--jobs", type=positive_int, default=20_000, help="jobs to run (default: 20000)")
    demo.add_argument("--concurrency", type=positive_int, default=50, help="worker concurrency (default: 50)")
    demo.add_argument(
        "--latency-jobs", type=int, default=200, metavar="N",
        help="jobs of the paced pickup-latency run (default: 200; 0 skips it)",
    )
    doctor = commands.add_parser(
        "doctor",
        help="check the server: version, role, persistence, eviction policy, library",
        description="Print every node's health (on a cluster: every primary and replica). Exit 0 when healthy, "
        "1 when a node has a warning (e.g. a maxmemory-policy other than noeviction) or cannot be reached.",
    )
    doctor.add_argument("--url", help=url_help)
    load = commands.add_parser(
        "load-library",
        help="load the server-side function library (admin)",
        description="FUNCTION LOAD REPLACE glidemq's library (on a cluster: on every primary), for deployments "
        "whose runtime user may not load it. See docs/security.md.",
    )
    load.add_argument("--url", help=url_help)
    add_dashboard_parser(commands, url_help)
    _cli_ops.add_commands(commands, url_help)
    return parser


async def _stats(queue_name: str, url: str | None, prefix: str) -> list[str]:
    async with Queue(queue_name, connection=url, prefix=prefix) as queue:
        counts = await queue.get_job_counts()
        paused = await queue.is_paused()
    lines = [f"{state} {counts.get(state, 0)}" for state in STATES]
    lines.append(f"paused {'yes' if paused else 'no'}")
    return lines


def run_stats_command(args: argparse.Namespace) -> int:
    """``glidemq stats``: one ``state count`` line per state, then ``paused yes|no``."""
    lines = run_loop(_stats(args.queue, connection_url(args.url), args.prefix))
    print("\n".join(lines))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (``sys.exit(main())``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"glidemq {args.command}"
    handlers = {
        "worker": run_worker_command, "stats": run_stats_command, "demo": run_demo_command,
        "doctor": run_doctor_command, "load-library": run_load_library_command,
        "dashboard": run_dashboard_command, **_cli_ops.HANDLERS,
    }
    try:
        return handlers[args.command](args)
    except (UsageError, InvalidArgumentError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GlideMQError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # keeps the interpreter from failing on the final flush
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
