"""``glidemq worker``: runs a Worker (or a processor function) until a signal or, in burst mode, an empty queue."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from ._cli_common import EXIT_ERROR, UsageError
from ._cli_sync import build_sync_worker, wants_sync_worker
from ._loop import loop_name
from ._loop import run as run_loop
from .connection import Connection
from .errors import GlideMQError
from .queue import Queue
from .sync import Worker as SyncWorker
from .worker import Worker

log = logging.getLogger("glidemq.cli")

BURST_POLL = 1.0
SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def load_target(spec: str) -> Any:
    """Imports ``MODULE:ATTR`` (ATTR may be dotted) with the current directory importable."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"expected MODULE:ATTR, e.g. myapp.tasks:worker, got {spec!r}")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        raise UsageError(f"{module_name!r} looks like a file path: give a dotted module name, e.g. myapp.tasks")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UsageError(
                f"cannot import {module_name!r}: no module named {exc.name!r} "
                f"(searched the current directory {cwd} and sys.path)"
            ) from None
        traceback.print_exc()
        raise UsageError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in the user's module is reported, with its traceback
        traceback.print_exc()
        raise UsageError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
    return target


def _same_server(a: Connection, b: Connection) -> bool:
    fields = ("host", "port", "db", "tls", "cluster", "username", "password")
    return all(getattr(a, name) == getattr(b, name) for name in fields)


def build_worker(target: Any, args: argparse.Namespace) -> Worker:
    """The Worker to run: ``target`` itself, or a new one around a processor function."""
    if isinstance(target, Worker):
        ctx = target._ctx
        if args.queue is not None and args.queue != target.name:
            raise UsageError(f"--queue {args.queue!r} contradicts the Worker's queue {target.name!r}")
        if args.concurrency is not None and args.concurrency != target.concurrency:
            raise UsageError(
                f"--concurrency {args.concurrency} contradicts the Worker's concurrency {target.concurrency}: "
                "drop the option or change the Worker"
            )
        if args.prefix is not None and args.prefix != ctx.prefix:
            raise UsageError(f"--prefix {args.prefix!r} contradicts the Worker's prefix {ctx.prefix!r}")
        if args.url and not _same_server(Connection(args.url), ctx.connection):
            raise UsageError(
                f"--url {Connection(args.url).url} contradicts the Worker's connection {ctx.connection.url}: "
                "drop --url, or build the Worker with connection=None so that --url applies"
            )
        return target
    if isinstance(target, type) or not callable(target):
        raise UsageError(
            f"{args.target} is a {type(target).__name__}, not a glidemq.Worker or a processor function"
        )
    if args.queue is None:
        raise UsageError(f"{args.target} is a processor function: name its queue with --queue NAME")
    return Worker(
        args.queue, target, connection=args.url or None, prefix=args.prefix or "glidemq",
        concurrency=args.concurrency or 1,
    )


class _Shutdown:
    """Signal handling: the first signal closes gracefully, the second forces, a third exits at once."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.signals = 0
        self.forced = False
        self.tasks: list[asyncio.Task[None]] = []

    def on_signal(self, signum: int) -> None:
        self.signals += 1
        name = signal.Signals(signum).name
        if self.signals == 1:
            log.info("%s: finishing active jobs, then exiting (send it again to force)", name)
            self.tasks.append(asyncio.create_task(self.worker.close()))
        elif self.signals == 2:
            log.warning("%s again: cancelling active jobs; they go back to waiting", name)
            self.forced = True
            self.tasks.append(asyncio.create_task(self.worker.close(timeout=0)))
        else:
            log.error("%s a third time: exiting now; unfinished jobs are recovered as stalled", name)
            logging.shutdown()
            os._exit(EXIT_ERROR)


async def _watch_burst(worker: Worker) -> None:
    """Closes the worker once the queue has no waiting, delayed or active jobs."""
    drained = asyncio.Event()
    worker.on("drained", drained.set)
    ctx = worker._ctx
    warned_paused = False
    async with Queue(worker.name, connection=ctx.connection, prefix=ctx.prefix) as queue:
        while True:
            try:
                await asyncio.wait_for(drained.wait(), BURST_POLL)
            except asyncio.TimeoutError:
                pass
            drained.clear()
            try:
                counts = await queue.get_job_counts()
                if not warned_paused and counts["waiting"] and await queue.is_paused():
                    warned_paused = True
                    log.warning("queue %r is paused: burst mode waits until it is resumed", worker.name)
            except GlideMQError as exc:
                log.warning("burst mode: cannot read the queue's counts: %s", exc)
                continue
            if counts["waiting"] + counts["delayed"] + counts["active"] == 0:
                log.info("queue %r has no waiting, delayed or active jobs: exiting (burst)", worker.name)
                await worker.close()
                return


async def serve(worker: Worker, *, burst: bool) -> bool:
    """Runs ``worker`` until it is closed by a signal or, with ``burst``, an empty queue; True if forced."""
    loop = asyncio.get_running_loop()
    shutdown = _Shutdown(worker)
    for signum in SHUTDOWN_SIGNALS:
        _on_signal(loop, signum, shutdown.on_signal)
    watcher = asyncio.create_task(_watch_burst(worker)) if burst else None
    try:
        await worker.run()
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await asyncio.gather(*shutdown.tasks, return_exceptions=True)
        for signum in SHUTDOWN_SIGNALS:
            _restore_signal(loop, signum)
    return shutdown.forced


def serve_sync(worker: SyncWorker, *, burst: bool) -> bool:
    """Runs a sync worker on this (main) thread until a signal or, with ``burst``, an empty queue."""
    watcher = worker._portal.submit(_watch_burst(worker.async_worker)) if burst else None
    try:
        worker.run()
    finally:
        if watcher is not None:
            watcher.cancel()
    return worker.forced


def _url(worker: Worker | SyncWorker) -> str:
    inner = worker.async_worker if isinstance(worker, SyncWorker) else worker
    return inner._ctx.connection.url


def _on_signal(loop: asyncio.AbstractEventLoop, signum: int, handler: Callable[[int], None]) -> None:
    """Calls ``handler(signum)`` in the loop when the signal arrives (also where the loop cannot do it)."""
    try:
        loop.add_signal_handler(signum, handler, signum)
    except NotImplementedError:  # Windows event loops
        signal.signal(signum, lambda received, _frame: loop.call_soon_threadsafe(handler, received))


def _restore_signal(loop: asyncio.AbstractEventLoop, signum: int) -> None:
    try:
        loop.remove_signal_handler(signum)
    except NotImplementedError:
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGINT else signal.default_int_handler)


def _configure_logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)


def run_worker_command(args: argparse.Namespace) -> int:
    """``glidemq worker``: 0 after a graceful (or forced) shutdown or an emptied queue in burst mode."""
    if args.url:
        Connection(args.url)  # fails early, without echoing the password
        os.environ["GLIDEMQ_URL"] = args.url  # components built with connection=None use it
    target = load_target(args.target)
    worker: Worker | SyncWorker
    worker = build_sync_worker(target, args) if wants_sync_worker(target, args) else build_worker(target, args)
    _configure_logging()
    log.info(
        "worker for queue %r on %s, concurrency %d%s%s, %s event loop (pid %d)", worker.name, _url(worker),
        worker.concurrency,
        f", {worker.processes} processes" if isinstance(worker, SyncWorker) and worker.processes else "",
        ", burst" if args.burst else "", loop_name(), os.getpid(),
    )
    if isinstance(worker, SyncWorker):
        forced = serve_sync(worker, burst=args.burst)
    else:
        forced = run_loop(serve(worker, burst=args.burst))
    log.info("worker for queue %r stopped", worker.name)
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if forced and (isinstance(worker, SyncWorker) or any(t.is_alive() and not t.daemon for t in others)):
        # plain-def processors cancelled by the forced close still run in their threads; their jobs are
        # already back in the queue, so do not wait for them at interpreter exit
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
