"""What every component of one queue shares: names, keys, client and limits."""

from __future__ import annotations

from typing import Any

from . import _validate as check
from ._client import Client
from ._waiter import FinishWaiter
from .connection import Connection, resolve


class QueueContext:
    """One queue as seen from one component: its key base and a client to reach it."""

    def __init__(
        self,
        name: str,
        *,
        connection: Connection | str | None,
        prefix: str,
        max_payload_size: int,
        client_name: str = "glidemq",
    ) -> None:
        self.name = check.queue_name(name)
        self.prefix = check.prefix(prefix)
        self.max_payload_size = check.integer(max_payload_size, "max_payload_size", minimum=1)
        self.connection = resolve(connection)
        self.base = f"{self.prefix}:{{{self.name}}}:"
        self.client = Client(self.connection, name=client_name)
        self._waiter: FinishWaiter | None = None

    def key(self, suffix: str) -> str:
        """The full key of one of the queue's structures, e.g. ``key("events")``."""
        return self.base + suffix

    async def call(self, function: str, args: list[Any]) -> Any:
        """Calls one library function on this queue; numbers in ``args`` are sent as text."""
        encoded = [a if isinstance(a, (str, bytes)) else str(a) for a in args]
        return await self.client.fcall(function, self.base, encoded)

    def waiter(self) -> FinishWaiter:
        """The shared listener that tells waiting callers when jobs finish."""
        if self._waiter is None:
            self._waiter = FinishWaiter(self.connection, self.key("events"))
        return self._waiter

    async def close(self) -> None:
        """Releases the client and the finish listener; a later call connects again."""
        if self._waiter is not None:
            await self._waiter.close()
            self._waiter = None
        client, self.client = self.client, Client(self.connection, name=self.client.name)
        await client.close()
