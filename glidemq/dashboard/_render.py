"""Templates and the helpers they use: links under the mount path, times, values as text."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from ..queue import STATES

CLEANABLE = ("completed", "failed", "delayed", "waiting")


def link(request: Request, path: str, **params: Any) -> str:
    """A path of this dashboard (under wherever it is mounted), with query parameters."""
    root = request.scope.get("root_path", "").rstrip("/")
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{root}{path}" + (f"?{query}" if query else "")


def when(seconds: float | None, short: bool = False) -> str:
    """An epoch time in seconds as UTC text with milliseconds, or to the second when ``short``."""
    if not seconds:
        return ""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S") if short else moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _unjsonable(value: Any) -> str:
    return repr(value)


def pretty(value: Any) -> str:
    """A job's data, return value or progress as readable JSON-like text (bytes shown as repr)."""
    if isinstance(value, bytes):
        return repr(value)
    return json.dumps(value, indent=2, ensure_ascii=False, default=_unjsonable, allow_nan=True)


def rate(value: float) -> str:
    """A per-second rate, short."""
    if value == 0 or math.isnan(value):
        return "0"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("glidemq.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(when=when, pretty=pretty, rate=rate)
    env.globals.update(STATES=STATES, CLEANABLE=CLEANABLE)
    return env


templates = Jinja2Templates(env=_environment())


def page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """Renders one template; ``link`` in templates builds paths of this dashboard."""
    context = {"link": lambda path, **params: link(request, path, **params), **context}
    return templates.TemplateResponse(request, name, context, status_code=status_code)
