"""The dashboard's ASGI app: pages, the JSON feed for live refresh, and the action endpoint."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict
from http import HTTPStatus
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..connection import Connection
from ..errors import ConnectionFailedError, GlideMQError, InvalidArgumentError
from ._actions import run_action
from ._data import Backend, job_state, page_number
from ._render import page
from ._security import CSRF_FIELD, AuthHook, Guard, csrf_token, set_csrf_cookie

STATIC = Path(__file__).parent / "static"
DONE = {
    "pause": "Queue paused.",
    "resume": "Queue resumed.",
    "retry-all": "{n} job(s) moved back to waiting.",
    "clean": "{n} job(s) removed.",
    "retry": "Job moved back to waiting.",
    "promote": "Job promoted to waiting.",
    "remove": "Job removed.",
}


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.glidemq
    return backend


def _notice(request: Request) -> str:
    template = DONE.get(request.query_params.get("done", ""), "")
    count = request.query_params.get("n", "")
    return template.format(n=count if count.isdigit() else "?")


def _render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> Response:
    token, new = csrf_token(request)
    context = {
        "read_only": request.app.state.read_only, "csrf_field": CSRF_FIELD, "csrf_token": token,
        "notice": _notice(request), **context,
    }
    response = page(request, template, context, status_code)
    if new:
        set_csrf_cookie(response, request, token)
    return response


def _param(request: Request, name: str) -> str:
    """A query parameter, or the path parameter of the /queues/... spelling of the same page."""
    return str(request.path_params.get(name) or request.query_params.get(name, ""))


def _shown_queue(request: Request, param: str) -> str:
    name = _param(request, param)
    if not _backend(request).shown(name):
        raise HTTPException(404, f"no queue {name!r} here")
    return name


async def home(request: Request) -> Response:
    """Every queue with its counts and throughput."""
    summaries = await _backend(request).summaries()
    return _render(request, "home.html", {"summaries": summaries})


async def queue_page(request: Request) -> Response:
    """One queue: counts, a page of jobs in one state (optionally searched), the queue's actions."""
    backend = _backend(request)
    name = _shown_queue(request, "name")
    state = job_state(request.query_params.get("state"))
    search = request.query_params.get("q", "").strip()[:256]
    number = page_number(request.query_params.get("page"))
    summary = await backend.summary(name)
    jobs = await backend.jobs(name, state, number, search)
    found = await backend.find(name, search) if search else None
    found_state = await found.get_state() if found is not None else ""
    return _render(request, "queue.html", {
        "summary": summary, "state": state, "search": search, "jobs": jobs,
        "found": found, "found_state": found_state,
    })


async def job_page(request: Request) -> Response:
    """One job: everything known about it, and its actions."""
    backend = _backend(request)
    name = _shown_queue(request, "queue")
    job_id = _param(request, "id")
    job = await backend.find(name, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} in queue {name!r}")
    state = await job.get_state()
    logs = await job.get_logs()
    return _render(request, "job.html", {"queue": name, "job": job, "state": state, "logs": logs})


async def summary_feed(request: Request) -> Response:
    """JSON for live refresh: counts and throughput of every queue, or of the ``queue`` given."""
    backend = _backend(request)
    if "queue" in request.query_params:
        summaries = [await backend.summary(_shown_queue(request, "queue"))]
    else:
        summaries = await backend.summaries()
    return JSONResponse({"queues": [asdict(s) for s in summaries]}, headers={"cache-control": "no-store"})


async def action(request: Request) -> Response:
    """POST /actions/{action}: pause, resume, retry-all, clean, retry, promote, remove."""
    return await run_action(request, _backend(request), request.app.state.read_only)


def _error_page(status_code: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    """A handler that answers with the error page: an HTTPException's own status, else ``status_code``."""

    async def handler(request: Request, exc: Exception) -> Response:
        text = exc.detail if isinstance(exc, HTTPException) else str(exc)
        code = exc.status_code if isinstance(exc, HTTPException) else status_code
        context = {"status": code, "title": HTTPStatus(code).phrase, "message": text}
        return _render(request, "error.html", context, code)

    return handler


def create_app(
    *,
    connection: Connection | str | None = None,
    prefix: str = "glidemq",
    queues: Sequence[str] | None = None,
    read_only: bool = False,
    auth: AuthHook | None = None,
) -> Starlette:
    """The dashboard as an ASGI app, to run with uvicorn or mount in FastAPI/Starlette.

    ``queues``: the queue names to show (None: every queue found under ``prefix``).
    ``read_only``: no action forms, and actions are refused (403).
    ``auth``: called with each request (``starlette.requests.Request``); returns True (or an
    awaitable of True) to let it in, False to answer 403; it may raise
    ``starlette.exceptions.HTTPException`` for another answer (e.g. 401 with ``WWW-Authenticate``).
    Bad arguments raise ``InvalidArgumentError``. ``await app.state.glidemq.close()`` closes the
    app's connections (done on shutdown when the app runs on its own).
    """
    if auth is not None and not callable(auth):
        raise InvalidArgumentError("auth must be a callable taking the request")
    backend = Backend(connection, prefix, queues)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await backend.close()

    app = Starlette(
        routes=[
            Route("/", home, name="home"),
            Route("/queue", queue_page, name="queue"),
            Route("/job", job_page, name="job"),
            Route("/queues/{name}", queue_page, name="queue_path"),
            Route("/queues/{queue}/jobs/{id}", job_page, name="job_path"),
            Route("/api/summary", summary_feed, name="summary"),
            Route("/actions/{action}", action, methods=["POST"], name="action"),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        middleware=[Middleware(Guard, auth=auth)],
        exception_handlers={
            HTTPException: _error_page(500),
            InvalidArgumentError: _error_page(400),
            ConnectionFailedError: _error_page(503),
            GlideMQError: _error_page(409),
        },
        lifespan=lifespan,
    )
    app.state.glidemq = backend
    app.state.read_only = bool(read_only)
    return app
