"""A loopback TCP proxy for fault tests: forwards bytes to a server until told to cut.

```python
with TcpProxy("127.0.0.1", server.port) as proxy:
    url = proxy.url           # connect clients here instead of to the server
    proxy.cut(3.0)            # drop every connection and refuse new ones for 3 seconds
    proxy.swallow_blocking_replies = True  # replies to connections that sent BZPOPMIN vanish
```
The proxy runs its own event loop in a thread, so a busy test loop cannot stall it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType

from glidemq.testing import free_port


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target_host``:``target_port``."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.accepted = 0  # connections forwarded so far
        self.refused = 0  # connections closed at once because the link was cut
        self._down_until = 0.0
        self.swallow_blocking_replies = False
        self.blocking_connections = 0  # connections that sent a BZPOPMIN so far
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"valkey://{self.host}:{self.port}"

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until

    def start(self) -> TcpProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)
        return self

    def cut(self, seconds: float) -> None:
        """Drops every open connection and refuses new ones for ``seconds``."""
        self._down_until = time.monotonic() + seconds
        asyncio.run_coroutine_threadsafe(self._drop_all(), self._loop).result(5)

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()  # RST, like a broken link, rather than a polite FIN
        self._writers.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop_all()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.accepted += 1
        self._writers.update((writer, up_writer))
        blocking: list[bool] = []  # set once the client sent a BZPOPMIN
        await asyncio.gather(self._pipe(reader, up_writer, blocking, True), self._pipe(up_reader, writer, blocking))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, blocking: list[bool], upstream: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.down:
                    break
                if upstream and not blocking and b"BZPOPMIN" in data.upper():
                    blocking.append(True)
                    self.blocking_connections += 1
                if not upstream and blocking and self.swallow_blocking_replies:
                    continue  # the reply is lost on its way
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
