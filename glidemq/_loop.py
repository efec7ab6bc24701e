"""The event loop glidemq's own entry points run on (the CLI, the sync API's loop thread).

uvloop when it is installed (``pip install "glidemq[uvloop]"``): a worker of short jobs spends
much of its time in the event loop, and uvloop's is faster. asyncio's loop otherwise. The
environment variable ``GLIDEMQ_LOOP`` picks one: ``uvloop``, ``asyncio`` or ``auto`` (the
default). Code that runs its own loop (``asyncio.run``, a web framework) keeps that loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .errors import InvalidArgumentError

T = TypeVar("T")
CHOICES = ("auto", "uvloop", "asyncio")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def chosen() -> str:
    """The loop ``GLIDEMQ_LOOP`` asks for: 'auto', 'uvloop' or 'asyncio'."""
    value = os.environ.get("GLIDEMQ_LOOP", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise InvalidArgumentError(f"GLIDEMQ_LOOP must be one of {', '.join(CHOICES)}, got {value!r}")
    return value


def loop_factory() -> tuple[str, LoopFactory]:
    """The name of the loop to use and a function that makes one."""
    choice = chosen()
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise InvalidArgumentError(
                    'GLIDEMQ_LOOP=uvloop but uvloop is not installed: pip install "glidemq[uvloop]"'
                ) from None
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop


def loop_name() -> str:
    """'uvloop' or 'asyncio': the loop :func:`run` and :func:`new_loop` use."""
    return loop_factory()[0]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Like ``asyncio.run``, on the loop ``GLIDEMQ_LOOP`` picks."""
    name, _ = loop_factory()
    if name == "asyncio":
        return asyncio.run(coro)
    import uvloop

    return uvloop.run(coro)


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind ``GLIDEMQ_LOOP`` picks."""
    return loop_factory()[1]()
