"""``glidemq dashboard``: serves the web dashboard with uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import socket
from typing import Any

from ._cli_common import connection_url, shown
from .errors import GlideMQError

DEFAULT_PORT = 8080


def port(text: str) -> int:
    """argparse type: a TCP port number, 0 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be between 0 and 65535, got {value}")
    return value


def add_dashboard_parser(commands: Any, url_help: str) -> None:
    """Adds the ``dashboard`` subcommand to the ``glidemq`` parser."""
    dashboard = commands.add_parser(
        "dashboard",
        help="serve the web dashboard",
        description="Serve the web dashboard (queues, jobs, actions) until SIGTERM/SIGINT. "
        'Needs the dashboard extra: pip install "glidemq[dashboard]". Put it behind authentication '
        "before exposing it beyond this machine (see docs/dashboard.md).",
    )
    dashboard.add_argument("--port", type=port, default=DEFAULT_PORT, help="TCP port (default: 8080; 0: any free one)")
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dashboard.add_argument("--url", help=url_help)
    dashboard.add_argument("--prefix", default="glidemq", help="key prefix (default: glidemq)")
    dashboard.add_argument(
        "--queue", action="append", dest="queues", metavar="NAME",
        help="show only this queue (repeatable; default: every queue under the prefix)",
    )
    dashboard.add_argument("--read-only", action="store_true", help="hide and refuse every action")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # listening before the address is printed: a client that reads it can connect at once
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise GlideMQError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


def run_dashboard_command(args: argparse.Namespace) -> int:
    """Serves the dashboard; prints its address first. Exit 0 after SIGTERM/SIGINT."""
    try:
        from .dashboard import create_app  # optional dependencies
        from .dashboard._serve import serve
    except ImportError as exc:
        raise GlideMQError(f'the dashboard needs its extra: pip install "glidemq[dashboard]" ({exc})') from exc
    url = connection_url(args.url)
    app = create_app(connection=url, prefix=args.prefix, queues=args.queues, read_only=args.read_only)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown_host = f"[{host}]" if ":" in host else host
    mode = " (read-only)" if args.read_only else ""
    print(f"glidemq dashboard on http://{shown_host}:{port}/ for {shown(url)}{mode}", flush=True)
    serve(app, sock)
    return 0
