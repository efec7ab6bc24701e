"""The dashboard's guards: the auth hook on every request, CSRF tokens for actions, safe headers."""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

AuthHook = Callable[[Request], "bool | Awaitable[bool]"]

CSRF_COOKIE = "glidemq_dashboard_csrf"
CSRF_FIELD = "csrf_token"
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
     b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class Guard:
    """ASGI middleware: asks the auth hook about every HTTP request and adds security headers.

    The hook returns (or awaits to) True to let the request in; False answers 403. It may also
    raise ``starlette.exceptions.HTTPException`` (e.g. 401 with ``WWW-Authenticate``).
    """

    def __init__(self, app: ASGIApp, auth: AuthHook | None) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = await self.refusal(Request(scope, receive))
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def refusal(self, request: Request) -> Response | None:
        """None when the hook lets the request in, else the response that refuses it."""
        if self.auth is None:
            return None
        try:
            verdict = self.auth(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
        except HTTPException as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if verdict is True:
            return None
        return PlainTextResponse("Forbidden", status_code=403)


def csrf_token(request: Request) -> tuple[str, bool]:
    """The browser's CSRF token (from its cookie) and whether it is new and must be set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) >= 32:
        return current, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, request: Request, token: str) -> None:
    """Stores the token in a cookie that only this dashboard's pages send back."""
    path = request.scope.get("root_path", "").rstrip("/") or "/"
    response.set_cookie(CSRF_COOKIE, token, path=path, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def csrf_ok(request: Request, submitted: str) -> bool:
    """True when the form's token equals the browser's cookie (double-submit check)."""
    expected = request.cookies.get(CSRF_COOKIE, "")
    return len(expected) >= 32 and secrets.compare_digest(expected.encode(), submitted.encode())
