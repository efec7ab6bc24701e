"""RESP over a plain socket, with hiredis: for the few places that cannot use valkey-glide
(the heartbeat thread, per-node health checks, test helpers)."""

from __future__ import annotations

import socket
from typing import Any

import hiredis


def encode(command: list[Any] | tuple[Any, ...]) -> bytes:
    """One command in RESP."""
    return bytes(hiredis.pack_command(tuple(command)))


def read_reply(sock: socket.socket, reader: hiredis.Reader) -> Any:
    """The next reply on ``sock``; an error reply is returned as a value, not raised.

    Raises EOFError when the server closes the connection.
    """
    while (reply := reader.gets()) is False:
        data = sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the server")
        reader.feed(data)
    return reply
