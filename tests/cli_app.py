"""Apps that the command-line tests run with ``glidemq worker cli_app:ATTR``."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import glidemq


async def echo(job: glidemq.Job) -> Any:
    """Returns the job's data."""
    return job.data


async def slow(job: glidemq.Job) -> str:
    """Sleeps ``job.data["sleep"]`` seconds."""
    await asyncio.sleep(job.data["sleep"])
    return "slept"


def slow_sync(job: glidemq.Job) -> str:
    """The same as ``slow``, in a plain function (run in a thread)."""
    time.sleep(job.data["sleep"])
    return "slept"


# A Worker object; its queue comes from the environment, its connection from --url (GLIDEMQ_URL).
worker = glidemq.Worker(os.environ.get("CLI_TEST_QUEUE", "cli-test"), echo, concurrency=4)

not_a_processor = 42
