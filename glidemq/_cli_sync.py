"""``glidemq worker`` for plain-function processors and ``glidemq.sync.Worker`` targets."""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from ._cli_common import UsageError
from .sync import Worker as SyncWorker
from .worker import Worker


def wants_sync_worker(target: Any, args: argparse.Namespace) -> bool:
    """True when ``target`` runs with the sync worker: a sync Worker, or a plain (not async) function."""
    if isinstance(target, SyncWorker):
        return True
    if isinstance(target, (Worker, type)) or not callable(target):
        if args.processes is not None:
            raise UsageError("--processes needs a plain (not async def) processor function or a glidemq.sync.Worker")
        return False
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(type(target).__call__)
    if is_async and args.processes is not None:
        raise UsageError(f"{args.target} is an async def function: --processes needs a plain function")
    return not is_async


def build_sync_worker(target: Any, args: argparse.Namespace) -> SyncWorker:
    """The sync Worker to run: ``target`` itself, or a new one around a plain processor function."""
    if isinstance(target, SyncWorker):
        for option, value, own in (
            ("--queue", args.queue, target.name), ("--concurrency", args.concurrency, target.concurrency),
            ("--processes", args.processes, target.processes),
            ("--prefix", args.prefix, target.async_worker._ctx.prefix),
        ):
            if value is not None and value != own:
                raise UsageError(f"{option} {value!r} contradicts the Worker's {option[2:]} {own!r}")
        return target
    if args.queue is None:
        raise UsageError(f"{args.target} is a processor function: name its queue with --queue NAME")
    return SyncWorker(
        args.queue, target, connection=args.url or None, prefix=args.prefix or "glidemq",
        concurrency=args.concurrency or args.processes or 1, processes=args.processes,
    )
