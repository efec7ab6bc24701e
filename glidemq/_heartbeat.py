"""Lease renewal and stall recovery, on a thread of their own.

They run in a separate thread with its own event loop and client, so leases stay alive
while a processor blocks the worker's event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from ._logging import get_logger
from ._thread_client import ThreadClient
from .connection import Connection
from .registry import Registration

log = get_logger("heartbeat")
TICK = 0.05
RENEW_RETRY = 0.5  # after a failed renewal (server restart, cluster failover): try again soon
STALL_BATCH = 1000


class Heartbeat(threading.Thread):
    """Renews the leases of a worker's active jobs and recovers stalled jobs of its queue."""

    def __init__(
        self,
        connection: Connection,
        base: str,
        *,
        leases: Callable[[], dict[str, str]],
        lock_duration: float,
        stalled_interval: float,
        max_stalled_count: int,
        on_stalled: Callable[[list[str], list[str]], None],
        on_error: Callable[[BaseException], None],
        dead_letters: bool = False,
        registration: Registration | None = None,
    ) -> None:
        super().__init__(name=f"glidemq-heartbeat {base}", daemon=True)
        self._connection = connection
        self._base = base
        self._leases = leases
        self._lock_ms = str(max(1, round(lock_duration * 1000)))
        self._renew_every = lock_duration / 2
        self._stall_every = stalled_interval
        self._max_stalled = str(max_stalled_count)
        self._dead_letters = "1" if dead_letters else "0"
        self._on_stalled = on_stalled
        self._on_error = on_error
        self._registration = registration
        self._halt = threading.Event()

    def stop(self) -> None:
        """Asks the thread to end; join() waits for it."""
        self._halt.set()

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        # Not a glide client: glide delivers replies on the event loop a processor may block.
        client = ThreadClient(self._connection, name="glidemq-heartbeat")
        next_renew = time.monotonic() + self._renew_every
        next_stall = next_beat = time.monotonic()
        registration = self._registration
        try:
            while not self._halt.is_set():
                now = time.monotonic()
                if registration is not None and now >= next_beat:
                    next_beat = now + registration.interval
                    await self._beat(client, registration)
                try:
                    if now >= next_renew:
                        next_renew = now + min(self._renew_every, RENEW_RETRY)
                        await self._renew(client)
                        next_renew = now + self._renew_every
                    if now >= next_stall:
                        next_stall = now + self._stall_every
                        await self._recover(client)
                except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
                    self._on_error(exc)
                await asyncio.sleep(TICK)
            if registration is not None:
                await self._leave(client, registration)
        finally:
            await client.close()

    async def _leave(self, client: ThreadClient, registration: Registration) -> None:
        try:
            await registration.leave(client)
        except Exception as exc:  # noqa: BLE001 - best effort: the entry expires by itself anyway
            log.debug("could not remove worker %s from the registry: %s", registration.worker_id, exc)

    async def _beat(self, client: ThreadClient, registration: Registration) -> None:
        try:
            await registration.beat(client)
        except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure
            self._on_error(exc)

    async def _renew(self, client: ThreadClient) -> None:
        leases = self._leases()
        if not leases:
            return
        args = [self._lock_ms, *(f"{job_id}:{token}" for job_id, token in leases.items())]
        renewed = await client.fcall("extend", self._base, args)
        if renewed < len(leases):
            log.debug("lost the lock of %d job(s) of %s", len(leases) - renewed, self._base)

    async def _recover(self, client: ThreadClient) -> None:
        while True:
            recovered, failed = await client.fcall(
                "stalled", self._base, [self._max_stalled, str(STALL_BATCH), self._dead_letters]
            )
            if recovered or failed:
                self._on_stalled([i.decode() for i in recovered], [i.decode() for i in failed])
            if len(recovered) + len(failed) < STALL_BATCH:
                return
