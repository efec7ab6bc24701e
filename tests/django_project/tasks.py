"""Tasks of the test project."""

from __future__ import annotations

import os
from typing import Any

try:
    from django.tasks import task
except ImportError:
    from django_tasks import task

QUEUE = os.environ.get("DJANGO_TEST_QUEUE", "default")


@task(queue_name=QUEUE)
def add(a: int, b: int) -> int:
    return a + b


@task(queue_name=QUEUE, priority=50)
def greet(name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@task(queue_name=QUEUE)
def explode(message: str) -> None:
    raise ValueError(message)


@task(queue_name=QUEUE, takes_context=True)
def with_context(context: Any, tag: str) -> dict[str, Any]:
    return {"tag": tag, "attempt": context.attempt, "result_id": context.task_result.id}


@task(queue_name=QUEUE)
async def async_double(n: int) -> int:
    return n * 2
