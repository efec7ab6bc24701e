"""A small synchronous RESP client for the heartbeat thread.

valkey-glide delivers the replies of every client of a process through one reader that
runs on the event loop that created the first client. While a processor blocks that loop,
no glide call of any thread completes, so leases could not be renewed. The heartbeat thread
therefore talks to the server over a socket of its own with this client: FCALL with the
same rules as ``Client.fcall`` (library reloaded when missing, cluster redirections
followed, causes chained). On a cluster it talks to the node that serves the queue's slot,
found by following MOVED from the seed node; when that node stops answering (failover) it
asks the other nodes it knows, which redirect it to the new owner.
"""

from __future__ import annotations

import socket
from typing import Any

import hiredis

from ._resp import encode, read_reply
from .connection import Connection
from .errors import ConnectionFailedError, GlideMQError, ServerError
from .functions import call_keys, function_name, library_source

MISSING_FUNCTION = "Function not found"
MAX_REDIRECTS = 5


class ReplyError(Exception):
    """An error reply of the server."""


class ThreadClient:
    """Blocking FCALLs over one socket; reconnects on the next call after a failure.

    Its methods are ``async`` only to share ``Client``'s interface: each call blocks the
    calling thread, which is what the heartbeat thread wants.
    """

    def __init__(self, connection: Connection, *, name: str = "glidemq") -> None:
        self.connection = connection
        self._name = name
        self._address = (connection.host, connection.port)
        self._known = [self._address]  # cluster nodes seen so far: the seed, then redirect targets
        self._sock: socket.socket | None = None
        self._reader: hiredis.Reader | None = None

    async def fcall(self, name: str, base: str, args: list[Any]) -> Any:
        """Calls one library function on the queue whose key base is ``base``."""
        keys = call_keys(base)
        command = ["FCALL", function_name(name), str(len(keys)), *keys, *args]
        loaded_on: set[tuple[str, int]] = set()
        tried: set[tuple[str, int]] = set()
        redirects = 0
        load = asking = False
        while True:
            reused = self._sock is not None
            before: list[list[Any]] = [["FUNCTION", "LOAD", "REPLACE", library_source()]] if load else []
            if asking:
                before.append(["ASKING"])  # right before the command: it holds for one command
            try:
                return self._call(command, before)
            except ReplyError as exc:
                text = str(exc)
                if text.startswith(("MOVED ", "ASK ")) and redirects < MAX_REDIRECTS:
                    redirects += 1
                    host, _, port = text.split()[2].rpartition(":")
                    self._disconnect()
                    self._address = (host or self.connection.host, int(port))
                    if self._address not in self._known:
                        self._known.append(self._address)
                    load, asking = False, text.startswith("ASK ")
                    continue
                if MISSING_FUNCTION in text and self._address not in loaded_on:
                    loaded_on.add(self._address)
                    load = True
                    continue
                raise ServerError(text) from exc
            except (OSError, EOFError) as exc:
                self._disconnect()
                if reused:
                    continue  # the kept connection had died (server restart): one fresh try
                tried.add(self._address)
                untried = [address for address in self._known if address not in tried]
                if self.connection.cluster and untried:
                    self._address = untried[0]  # a live node redirects to the slot's owner now
                    load = asking = False
                    continue
                raise ConnectionFailedError(f"server {self.connection.url} unreachable: {exc}") from exc

    async def close(self) -> None:
        """Closes the socket."""
        self._disconnect()

    # wire -----------------------------------------------------------------------------------
    def _call(self, command: list[Any], before: list[list[Any]]) -> Any:
        """Sends ``before`` then ``command`` in one write; an error reply of any raises ReplyError."""
        if self._sock is None:
            self._connect()
        assert self._sock is not None
        self._sock.sendall(b"".join(encode(c) for c in [*before, command]))
        replies = [self._read() for _ in range(len(before) + 1)]
        for reply in replies:
            if isinstance(reply, ReplyError):
                raise reply
        return replies[-1]

    def _connect(self) -> None:
        conn = self.connection
        sock = socket.create_connection(self._address, timeout=conn.request_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if conn.tls:
                sock = conn.ssl_context().wrap_socket(sock, server_hostname=self._address[0])
            self._sock, self._reader = sock, hiredis.Reader(replyError=ReplyError)
            setup: list[list[Any]] = []
            if conn.password is not None:
                auth = ["AUTH", conn.username, conn.password] if conn.username else ["AUTH", conn.password]
                setup.append(auth)
            if conn.db and not conn.cluster:
                setup.append(["SELECT", str(conn.db)])
            setup.append(["CLIENT", "SETNAME", self._name])
            for command in setup:
                sock.sendall(encode(command))
                reply = self._read()
                if isinstance(reply, ReplyError) and command[0] != "CLIENT":
                    raise GlideMQError(f"{command[0]} refused by {conn.url}: {reply}")
        except BaseException:
            self._disconnect()
            sock.close()
            raise

    def _disconnect(self) -> None:
        sock, self._sock, self._reader = self._sock, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _read(self) -> Any:
        """One reply; error replies come back as ReplyError values."""
        assert self._sock is not None and self._reader is not None
        return read_reply(self._sock, self._reader)
