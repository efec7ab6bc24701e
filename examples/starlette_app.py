"""A Starlette app (FastAPI works the same way) that shares one glidemq Queue per app.

The lifespan opens the queue when the app starts and closes it when the app stops; every
request uses that one queue (its connection multiplexes all requests). Run it with

    GLIDEMQ_URL=valkey://127.0.0.1:6379 uvicorn examples.starlette_app:app

and a worker beside it, e.g. ``glidemq worker examples.starlette_app:send_email --queue emails``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import glidemq

QUEUE_NAME = os.environ.get("EXAMPLE_QUEUE", "emails")


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with glidemq.Queue(QUEUE_NAME) as queue:  # the server: $GLIDEMQ_URL
        app.state.queue = queue
        yield


def queue_of(request: Request) -> glidemq.Queue:
    queue: glidemq.Queue = request.app.state.queue
    return queue


async def enqueue(request: Request) -> JSONResponse:
    body = await request.json()
    job = await queue_of(request).add("send", body.get("data"), delay=body.get("delay", 0), attempts=3)
    return JSONResponse({"id": job.id}, status_code=202)


async def job_status(request: Request) -> JSONResponse:
    job = await queue_of(request).get_job(request.path_params["job_id"])
    if job is None:
        return JSONResponse({"error": "no such job"}, status_code=404)
    state = await job.get_state()
    return JSONResponse({"id": job.id, "state": state, "result": job.return_value, "error": job.failed_reason})


async def invalid_argument(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=422)  # nothing was written


app = Starlette(
    routes=[Route("/jobs", enqueue, methods=["POST"]), Route("/jobs/{job_id}", job_status)],
    lifespan=lifespan,
    exception_handlers={glidemq.InvalidArgumentError: invalid_argument, glidemq.SerializationError: invalid_argument},
)


def send_email(job: Any) -> str:
    """The worker side: a plain function, run by ``glidemq worker`` with the sync worker."""
    return f"sent to {job.data['to']}"
