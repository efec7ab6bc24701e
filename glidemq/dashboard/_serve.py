"""Serving the dashboard with uvicorn on a socket the caller opened (for ``glidemq dashboard``)."""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

SHUTDOWN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _Server(uvicorn.Server):
    """uvicorn's server, except that a shutdown signal ends it cleanly (exit 0), not by re-raising."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in SHUTDOWN_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serves ``app`` on ``sock`` until SIGTERM/SIGINT (a second one forces the exit)."""
    _Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])
