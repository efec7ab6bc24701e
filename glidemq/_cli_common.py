"""Small pieces shared by the command-line modules."""

from __future__ import annotations

import argparse
import os

from .connection import Connection, resolve

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line was given something it cannot use; exits with status 2."""


def positive_int(text: str) -> int:
    """argparse type: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def connection_url(given: str | None) -> str | None:
    """``--url`` if given, else ``GLIDEMQ_URL``, else None (the library default)."""
    url = given or os.environ.get("GLIDEMQ_URL") or None
    if url is not None:
        Connection(url)  # a malformed URL fails here, with a message that never shows the password
    return url


def shown(url: str | None) -> str:
    """The server as it may be printed: password masked."""
    return resolve(url).url
