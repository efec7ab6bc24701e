"""Operations commands: look at queues, jobs and workers, act on them, watch and export metrics.

```
glidemq queues [--url URL] [--prefix P]                      # every queue with its counts
glidemq job QUEUE JOB_ID                                      # data, state, progress, logs, stack trace, timings
glidemq retry QUEUE [JOB_ID] [--state failed|completed] [--count N]
glidemq remove QUEUE JOB_ID
glidemq clean QUEUE [--grace S] [--limit N] [--state S]
glidemq pause QUEUE / glidemq resume QUEUE
glidemq workers QUEUE                                         # live workers
glidemq watch [QUEUE ...] [--interval S] [--iterations N | --once]
glidemq metrics --port 9108 [--queue Q ...] [--host ADDR]     # Prometheus text on /metrics
```
Commands naming a queue fail (exit 1) when the queue does not exist; unknown jobs too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ._cli_common import connection_url, positive_int, shown
from ._figures import QueueFigures, queue_exists, read_figures
from ._loop import run as run_loop
from .discover import queue_names
from .errors import GlideMQError
from .job import Job
from .queue import CLEANABLE, STATES, Queue

__all__ = ["HANDLERS", "add_commands"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value


def add_commands(commands: Any, url_help: str) -> None:
    """Adds the operations commands to the ``glidemq`` parser's subcommands."""

    def command(name: str, help_text: str, *, queue: bool = True) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
        if queue:
            parser.add_argument("queue", metavar="QUEUE")
        parser.add_argument("--url", help=url_help)
        parser.add_argument("--prefix", default="glidemq", help="key prefix (default: glidemq)")
        return parser

    command("queues", "list the queues with their job counts", queue=False)
    job = command("job", "show a job: data, state, progress, logs, stack trace, timings")
    job.add_argument("job_id", metavar="JOB_ID")
    retry = command("retry", "move failed (or completed) jobs, or one job, back to waiting")
    retry.add_argument("job_id", metavar="JOB_ID", nargs="?", help="one job (default: every job of --state)")
    retry.add_argument("--state", choices=("failed", "completed"), default="failed", help="default: failed")
    retry.add_argument("--count", type=positive_int, help="move at most N jobs (default: all)")
    remove = command("remove", "delete a job that is not active")
    remove.add_argument("job_id", metavar="JOB_ID")
    clean = command("clean", "delete old jobs of one state")
    clean.add_argument("--state", choices=CLEANABLE, default="completed", help="default: completed")
    clean.add_argument("--grace", type=_seconds, default=0.0, help="keep jobs younger than S seconds (default: 0)")
    clean.add_argument("--limit", type=positive_int, default=1000, help="delete at most N jobs (default: 1000)")
    command("pause", "stop every worker of the queue from starting new jobs")
    command("resume", "let the workers of the queue start jobs again")
    command("workers", "list the live workers of a queue")
    watch = command("watch", "live job counts and rates of some queues (default: every queue)", queue=False)
    watch.add_argument("queues", metavar="QUEUE", nargs="*")
    watch.add_argument("--interval", type=_seconds, default=1.0, help="seconds between refreshes (default: 1)")
    watch.add_argument("--iterations", type=positive_int, help="stop after N refreshes (default: until Ctrl-C)")
    watch.add_argument("--once", action="store_true", help="one refresh, then exit")
    metrics = command("metrics", "serve Prometheus metrics on /metrics", queue=False)
    metrics.add_argument("--port", type=_port, default=9108, help="default: 9108")
    metrics.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    metrics.add_argument("--queue", action="append", dest="queues", metavar="QUEUE",
                         help="a queue to export (repeatable; default: every queue)")


async def _open(args: argparse.Namespace) -> Queue:
    """The queue named on the command line; GlideMQError when it does not exist."""
    queue = Queue(args.queue, connection=connection_url(args.url), prefix=args.prefix)
    try:
        if not await queue_exists(queue):
            raise GlideMQError(f"no queue named {args.queue!r} under prefix {args.prefix!r}")
    except BaseException:
        await queue.close()
        raise
    return queue


async def _job(queue: Queue, job_id: str) -> Job:
    job = await queue.get_job(job_id)
    if job is None:
        raise GlideMQError(f"queue {queue.name!r} has no job {job_id!r}")
    return job


def _when(seconds: float | None) -> str:
    if not seconds:
        return "-"
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


def _json(value: Any) -> str:
    return json.dumps(value, default=repr, ensure_ascii=False)


# one-shot commands ------------------------------------------------------------------------


async def _queues(args: argparse.Namespace) -> list[str]:
    url = connection_url(args.url)
    names = await queue_names(url, prefix=args.prefix)
    if not names:
        return [f"no queues under prefix {args.prefix!r} on {shown(url)}"]
    rows = [["queue", *STATES, "paused", "workers"]]
    for name in names:
        async with Queue(name, connection=url, prefix=args.prefix) as queue:
            f = await read_figures(queue)
            paused = "yes" if await queue.is_paused() else "no"
        rows.append([name, *(str(f.counts.get(s, 0)) for s in STATES), paused, str(f.workers)])
    return _columns(rows)


def _columns(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


async def _show_job(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        job = await _job(queue, args.job_id)
        state = await job.get_state()
        logs = await job.get_logs()
    finally:
        await queue.close()
    lines = [
        f"job {job.id}", f"queue {job.queue_name}", f"name {job.name}", f"state {state}",
        f"data {_json(job.data)}", f"attempts {job.attempts_made}/{job.attempts}", f"priority {job.priority}",
        f"delay {job.delay:g}s", f"progress {_json(job.progress)}", f"return_value {_json(job.return_value)}",
        f"failed_reason {job.failed_reason or '-'}",
        f"created {_when(job.timestamp)}", f"processed {_when(job.processed_on)}", f"finished {_when(job.finished_on)}",
    ]
    if job.processed_on:
        ready = job.timestamp + job.delay
        lines.append(f"waited {max(job.processed_on - ready, 0):.3f}s")
        if job.finished_on:
            lines.append(f"ran {job.finished_on - job.processed_on:.3f}s")
    lines.append(f"logs {len(logs)}")
    lines += [f"  {line}" for line in logs]
    if job.stacktrace:
        lines.append("stacktrace")
        lines += [f"  {line}" for entry in job.stacktrace for line in entry.rstrip("\n").split("\n")]
    return lines


async def _retry(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        if args.job_id is not None:
            await (await _job(queue, args.job_id)).retry()
            return [f"job {args.job_id} moved to waiting"]
        moved = await queue.retry_jobs(args.state, args.count)
    finally:
        await queue.close()
    return [f"{moved} {args.state} job(s) moved to waiting"]


async def _remove(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        job = await _job(queue, args.job_id)
        if not await job.remove():
            raise GlideMQError(f"job {args.job_id} is active; it can be removed once it ends")
    finally:
        await queue.close()
    return [f"job {args.job_id} removed"]


async def _clean(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        removed = await queue.clean(args.grace, args.limit, args.state)
    finally:
        await queue.close()
    return [f"{len(removed)} {args.state} job(s) removed"]


async def _pause(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        await queue.pause()
    finally:
        await queue.close()
    return [f"queue {args.queue} paused"]


async def _resume(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        await queue.resume()
    finally:
        await queue.close()
    return [f"queue {args.queue} resumed"]


async def _workers(args: argparse.Namespace) -> list[str]:
    queue = await _open(args)
    try:
        workers = await queue.get_workers()
    finally:
        await queue.close()
    if not workers:
        return [f"no live workers on queue {args.queue}"]
    rows = [["id", "host", "pid", "started", "active_jobs", "concurrency"]]
    rows += [[w.id, w.host, str(w.pid), _when(w.started), str(w.active_jobs), str(w.concurrency)] for w in workers]
    return _columns(rows)


def _printing(body: Callable[[argparse.Namespace], Any]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        lines: list[str] = run_loop(body(args))
        print("\n".join(lines))
        return 0

    return run


# watch ------------------------------------------------------------------------------------


def _watch_table(figures: list[QueueFigures], rates: dict[str, tuple[float, float] | None], url: str) -> Table:
    table = Table(title=f"glidemq on {url}  {datetime.now().strftime('%H:%M:%S')}")
    table.add_column("queue")
    for state in STATES:
        table.add_column(state, justify="right")
    for name in ("workers", "completed/s", "failed/s"):
        table.add_column(name, justify="right")
    for f in figures:
        rate = rates.get(f.queue)
        shown_rates = ("-", "-") if rate is None else (f"{rate[0]:.1f}", f"{rate[1]:.1f}")
        table.add_row(f.queue, *(str(f.counts.get(s, 0)) for s in STATES), str(f.workers), *shown_rates)
    if not figures:
        table.caption = "no queues"
    return table


async def _watch(args: argparse.Namespace) -> None:
    url = connection_url(args.url)
    iterations = 1 if args.once else args.iterations
    queues: dict[str, Queue] = {}
    if args.queues:
        for name in args.queues:
            queue = queues[name] = Queue(name, connection=url, prefix=args.prefix)
            if not await queue_exists(queue):
                for q in queues.values():
                    await q.close()
                raise GlideMQError(f"no queue named {name!r} under prefix {args.prefix!r}")
    last: dict[str, tuple[float, QueueFigures]] = {}
    done = 0
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))  # piped: no terminal width to fit, keep names whole
    try:
        with Live(console=console, auto_refresh=False) as live:
            while iterations is None or done < iterations:
                names = args.queues or await queue_names(url, prefix=args.prefix)
                figures, rates = [], {}
                for name in names:
                    queue = queues.get(name) or queues.setdefault(name, Queue(name, connection=url, prefix=args.prefix))
                    now, f = time.monotonic(), await read_figures(queue)
                    before = last.get(name)
                    rates[name] = None if before is None else _rates(before, (now, f))
                    last[name] = (now, f)
                    figures.append(f)
                live.update(_watch_table(figures, rates, shown(url)), refresh=True)
                done += 1
                if iterations is None or done < iterations:
                    await asyncio.sleep(args.interval)
    finally:
        for queue in queues.values():
            await queue.close()


def _rates(before: tuple[float, QueueFigures], after: tuple[float, QueueFigures]) -> tuple[float, float]:
    elapsed = max(after[0] - before[0], 1e-9)
    return (
        max(after[1].completed_total - before[1].completed_total, 0) / elapsed,
        max(after[1].failed_total - before[1].failed_total, 0) / elapsed,
    )


def run_watch_command(args: argparse.Namespace) -> int:
    """``glidemq watch``: a live table until Ctrl-C (or ``--iterations``/``--once``)."""
    run_loop(_watch(args))
    return 0


# metrics ----------------------------------------------------------------------------------


async def _serve_metrics(args: argparse.Namespace, on_ready: Callable[[int], None]) -> None:
    try:
        from .metrics import serve_metrics  # optional dependency
    except ImportError:
        raise GlideMQError('the metrics command needs prometheus_client: pip install "glidemq[metrics]"') from None
    url = connection_url(args.url)
    server = await serve_metrics(args.port, connection=url, prefix=args.prefix, queues=args.queues, addr=args.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        on_ready(server.port)
        await stop.wait()
    finally:
        await server.close()


def run_metrics_command(args: argparse.Namespace) -> int:
    """``glidemq metrics``: serves Prometheus text on /metrics until SIGTERM/SIGINT (exit 0)."""

    def ready(port: int) -> None:
        queues = ", ".join(args.queues) if args.queues else "every queue"
        print(f"serving metrics of {queues} on {shown(connection_url(args.url))} at "
              f"http://{args.host}:{port}/metrics", flush=True)

    run_loop(_serve_metrics(args, ready))
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "queues": _printing(_queues),
    "job": _printing(_show_job),
    "retry": _printing(_retry),
    "remove": _printing(_remove),
    "clean": _printing(_clean),
    "pause": _printing(_pause),
    "resume": _printing(_resume),
    "workers": _printing(_workers),
    "watch": run_watch_command,
    "metrics": run_metrics_command,
}
