"""The dashboard's actions: POST forms that change a queue or a job, then redirect back (303)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._validate import state as checked_state
from ..errors import GlideMQError, InvalidArgumentError
from ..job import Job
from ..queue import STATES, Queue
from ._data import Backend
from ._render import CLEANABLE, link
from ._security import CSRF_FIELD, csrf_ok

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"

Form = dict[str, str]
# a queue action returns how many jobs it moved, or None
QueueAction = Callable[[Queue, Form], Awaitable[int | None]]
JobAction = Callable[[Job], Awaitable[None]]


async def read_form(request: Request) -> Form:
    """The URL-encoded form of a POST, at most 64 KiB."""
    if request.headers.get("content-type", "").split(";")[0].strip() != FORM_TYPE:
        raise HTTPException(415, f"actions take {FORM_TYPE} forms")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a number, got {text!r}") from None


async def _pause(queue: Queue, form: Form) -> None:
    await queue.pause()


async def _resume(queue: Queue, form: Form) -> None:
    await queue.resume()


async def _retry_all(queue: Queue, form: Form) -> int:
    return await queue.retry_jobs(form.get("state") or "failed")


async def _clean(queue: Queue, form: Form) -> int:
    grace = _number(form.get("grace") or "0", "grace")
    limit = int(_number(form.get("limit") or "1000", "limit"))
    return len(await queue.clean(grace, limit, checked_state(form.get("state"), CLEANABLE)))


async def _remove(job: Job) -> None:
    if not await job.remove():
        raise GlideMQError(f"job {job.id} was not removed: it is active or already gone")


async def _retry(job: Job) -> None:
    await job.retry()


async def _promote(job: Job) -> None:
    await job.promote()


QUEUE_ACTIONS: dict[str, QueueAction] = {
    "pause": _pause, "resume": _resume, "retry-all": _retry_all, "clean": _clean,
}
JOB_ACTIONS: dict[str, JobAction] = {"retry": _retry, "promote": _promote, "remove": _remove}


async def run_action(request: Request, backend: Backend, read_only: bool) -> Response:
    """Checks the request (read-only, CSRF, queue, job), runs the action and redirects back."""
    if read_only:
        raise HTTPException(403, "This dashboard is read-only.")
    action = request.path_params["action"]
    if action not in QUEUE_ACTIONS and action not in JOB_ACTIONS:
        raise HTTPException(404, f"unknown action {action!r}")
    form = await read_form(request)
    if not csrf_ok(request, form.get(CSRF_FIELD, "")):
        raise HTTPException(403, "The form's CSRF token is missing or wrong: reload the page and try again.")
    name = form.get("queue", "")
    if not backend.shown(name):
        raise HTTPException(404, f"no queue {name!r} here")
    view = form.get("view") if form.get("view") in STATES else None
    if action in QUEUE_ACTIONS:
        moved = await QUEUE_ACTIONS[action](backend.queue(name), form)
        if form.get("back") == "home":
            return _back(request, "/", done=action, n=moved)
        return _back(request, "/queue", name=name, state=view, done=action, n=moved)
    job = await backend.find(name, form.get("job", ""))
    if job is None:
        raise HTTPException(404, f"no job {form.get('job', '')!r} in queue {name!r}")
    await JOB_ACTIONS[action](job)
    if action == "remove" or form.get("back") == "queue":
        return _back(request, "/queue", name=name, state=view, done=action)
    return _back(request, "/job", queue=name, id=job.id, done=action)


def _back(request: Request, path: str, **params: object) -> RedirectResponse:
    return RedirectResponse(link(request, path, **params), status_code=303)
