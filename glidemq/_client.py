"""One valkey-glide client with glidemq's calling rules.

- connects lazily and reconnects by itself;
- calls library functions with FCALL, loading the library (once, single-flight) when the
  server lacks it, then retrying; on a cluster, on the node that serves the queue's slot;
- routes plain commands about a queue's key to the node that serves the key's slot;
- waits for an unreachable server up to the request timeout, then raises
  ConnectionFailedError; server refusals become ServerError. Causes are chained.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from glide import (
    AdvancedGlideClientConfiguration,
    AdvancedGlideClusterClientConfiguration,
    BackoffStrategy,
    ClosingError,
    GlideClient,
    GlideClientConfiguration,
    GlideClusterClient,
    GlideClusterClientConfiguration,
    GlideError,
    Logger,
    LogLevel,
    NodeAddress,
    RequestError,
    ServerCredentials,
    SlotKeyRoute,
    SlotType,
    TlsAdvancedConfiguration,
)
from glide import ConnectionError as GlideConnectionError
from glide import TimeoutError as GlideTimeoutError

from .connection import Connection
from .errors import ConnectionFailedError, ServerError
from .functions import call_keys, function_name, library_source

GlideAny = GlideClient | GlideClusterClient

TRANSIENT_REPLIES = (
    "LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY",
    # how valkey-glide names the cluster errors it did not resolve by itself
    "MasterDown", "TryAgain", "ClusterDown", "NotAllSlotsCovered",
)
# a redirection glide gave up following (the topology was changing): the next try finds the owner
REDIRECTED = re.compile(r"\b(?:MOVED|ASK|Moved|Ask)\b")
MISSING_FUNCTION = "Function not found"
RETRY_PAUSE = 0.05

Logger.init(LogLevel.OFF)


def is_transient(exc: BaseException) -> bool:
    """True for errors that go away on their own: lost connection, restart, failover."""
    if isinstance(exc, (GlideConnectionError, GlideTimeoutError, ClosingError)):
        return True
    text = str(exc)
    return isinstance(exc, RequestError) and (
        any(reply in text for reply in TRANSIENT_REPLIES)
        or REDIRECTED.search(text) is not None
        or "connect" in text.lower()
    )


class Client:
    """A lazily connected glide client bound to one Connection."""

    def __init__(self, connection: Connection, *, name: str = "glidemq") -> None:
        self.connection = connection
        self.name = name
        self._glide: GlideAny | None = None
        self._connect_lock = asyncio.Lock()
        self._load_lock = asyncio.Lock()
        self._library_generation: dict[str, int] = {}  # per key base: how often it was loaded
        self._closed = False

    def __repr__(self) -> str:
        return f"<glidemq Client {self.connection.url}>"

    async def fcall(self, name: str, base: str, args: list[Any]) -> Any:
        """Calls one library function on the queue whose key base is ``base``."""
        fname = function_name(name)
        reloaded = False
        deadline = time.monotonic() + self.connection.request_timeout
        while True:
            generation = self._library_generation.get(base, 0)
            try:
                glide = await self._client(deadline)
                return await glide.fcall(fname, keys=call_keys(base), arguments=args)
            except GlideError as exc:
                if MISSING_FUNCTION in str(exc):
                    if reloaded:
                        # Still missing after a load: the call went elsewhere than the slot's
                        # owner, i.e. to the importing node of a slot being migrated (ASK).
                        # Load again until the migration ends and the new owner gets it.
                        if self._closed or time.monotonic() + RETRY_PAUSE >= deadline:
                            raise ServerError(str(exc)) from exc
                        await asyncio.sleep(RETRY_PAUSE)
                        generation = self._library_generation.get(base, 0)
                    reloaded = True
                    await self._load_library(base, generation, deadline)
                    continue
                await self._pause_or_raise(exc, deadline)

    async def command(self, args: list[str | bytes], *, key: str | None = None) -> Any:
        """Runs one plain command (LRANGE, TIME, ...) with the same retry rules.

        On a cluster it goes to the primary that serves ``key``'s slot (a command without
        ``key`` goes wherever the client routes it, possibly a random node).
        """
        deadline = time.monotonic() + self.connection.request_timeout
        while True:
            try:
                glide = await self._client(deadline)
                if isinstance(glide, GlideClusterClient) and key is not None:
                    return await glide.custom_command(args, route=SlotKeyRoute(SlotType.PRIMARY, key))
                return await glide.custom_command(args)
            except GlideError as exc:
                await self._pause_or_raise(exc, deadline)

    async def raw(self) -> GlideAny:
        """The underlying glide client (connecting if needed)."""
        return await self._client(time.monotonic() + self.connection.request_timeout)

    async def close(self) -> None:
        """Releases the connection. Calls in flight fail with ConnectionFailedError."""
        self._closed = True
        glide, self._glide = self._glide, None
        if glide is not None:
            try:
                await glide.close()
            except GlideError:
                pass

    async def _pause_or_raise(self, exc: GlideError, deadline: float) -> None:
        if self._closed:
            raise ConnectionFailedError("the client is closed") from exc
        if not is_transient(exc):
            raise ServerError(str(exc)) from exc
        if time.monotonic() + RETRY_PAUSE >= deadline:
            raise ConnectionFailedError(
                f"server {self.connection.url} unreachable for {self.connection.request_timeout}s: {exc}"
            ) from exc
        if isinstance(exc, ClosingError):
            self._glide = None
        await asyncio.sleep(RETRY_PAUSE)

    async def _client(self, deadline: float) -> GlideAny:
        if self._glide is not None:
            return self._glide
        if self._closed:
            raise ConnectionFailedError("the client is closed")
        async with self._connect_lock:
            while self._glide is None:
                try:
                    self._glide = await self._create()
                except GlideError as exc:
                    await self._pause_or_raise(exc, deadline)
            return self._glide

    async def _create(self) -> GlideAny:
        conn = self.connection
        credentials = None
        if conn.password is not None or conn.username is not None:
            credentials = ServerCredentials(password=conn.password, username=conn.username)
        timeout_ms = int(conn.request_timeout * 1000)
        connect_ms = min(timeout_ms, 1000)
        common: dict[str, Any] = {
            "addresses": [NodeAddress(conn.host, conn.port)],
            "use_tls": conn.tls,
            "credentials": credentials,
            "request_timeout": timeout_ms,
            "reconnect_strategy": BackoffStrategy(num_of_retries=6, factor=10, exponent_base=2),
            "client_name": self.name,
        }
        ca = conn.tls_ca_pem()
        tls_config = TlsAdvancedConfiguration(root_pem_cacerts=ca) if ca is not None else None
        if conn.cluster:
            return await GlideClusterClient.create(
                GlideClusterClientConfiguration(
                    **common,
                    advanced_config=AdvancedGlideClusterClientConfiguration(
                        connection_timeout=connect_ms, tls_config=tls_config
                    ),
                )
            )
        return await GlideClient.create(
            GlideClientConfiguration(
                **common,
                database_id=conn.db,
                advanced_config=AdvancedGlideClientConfiguration(connection_timeout=connect_ms, tls_config=tls_config),
            )
        )

    async def _load_library(self, base: str, seen_generation: int, deadline: float) -> None:
        """Loads the library where ``base`` lives: the server, or on a cluster the primary
        serving its slot (a node restarted empty or a new primary lacks it, the others keep
        theirs; a node that is down must not hold up the queues of the other nodes)."""
        async with self._load_lock:
            if self._library_generation.get(base, 0) != seen_generation:
                return  # another call reloaded it meanwhile
            while True:
                try:
                    glide = await self._client(deadline)
                    if isinstance(glide, GlideClusterClient):
                        route = SlotKeyRoute(SlotType.PRIMARY, base)
                        await glide.function_load(library_source(), replace=True, route=route)
                    else:
                        await glide.function_load(library_source(), replace=True)
                    break
                except GlideError as exc:
                    await self._pause_or_raise(exc, deadline)
            self._library_generation[base] = seen_generation + 1
