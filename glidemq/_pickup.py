"""An idle worker's wait for jobs: one blocking call that takes the first jobs too.

The worker sends ``BZPOPMIN`` on the queue's marker and, pipelined behind it on the same
dedicated connection, a ``take`` for its free slots. The server runs the take the moment
the wait ends, so a job added to an idle queue reaches the worker in one trip from the
server instead of a wake-up followed by a round trip.

The take leases its jobs under a claim the worker makes up (as every take of the worker
does: see ``new_claim``). When the reply never arrives
(``Worker.close()`` closes the connection mid-wait, or it drops), the worker cannot tell
whether the take ran, so it calls ``release_claim``: jobs leased under the claim go back to
the front of the queue at once, instead of waiting out their lease for the stall check.
"""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass
from typing import Any

from glide import Batch, BatchOptions, ClusterBatch, ClusterBatchOptions, GlideClusterClient

from ._client import Client
from ._context import QueueContext
from .errors import GlideMQError
from .functions import call_keys, function_name

# the client waits this much longer than the server-side timeout of the wait
REPLY_MARGIN = 2.0


class _Claims:
    """The process's source of lease tokens: a random prefix and a counter, both made anew in
    a forked child, so a worker object that crosses a fork never shares tokens with its twin."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = "t" + secrets.token_hex(8)
        self.counter = itertools.count()


_claims = _Claims()
os.register_at_fork(after_in_child=_claims.renew)


def new_claim() -> str:
    """A lease token for a take: never repeated (across workers, processes and restarts of the
    server alike), which saves the server making one; without ``:``, which separates a lease's
    job id from its token."""
    return f"{_claims.prefix}{next(_claims.counter):x}"


@dataclass
class Wakeup:
    """How a wait ended: the reply of the take behind it (None when it did not run or its
    reply was lost), an error to report, the take's claim, whether its outcome is unknown
    (its jobs must be handed back), and what the worker made of the reply."""

    reply: Any = None
    error: GlideMQError | None = None
    claim: str | None = None
    lost: bool = False
    next_delay: int = -1  # filled in from the reply by the worker
    fetched: int = -1  # jobs the worker took in from the reply (-1: none came)


class Pickup:
    """The blocking connection of one worker, and the waits it makes on it."""

    def __init__(self, ctx: QueueContext, lock_ms: str, take_options: bytes) -> None:
        self._ctx = ctx
        self.client = Client(ctx.connection, name="glidemq-worker-blocking")
        self._lock_ms = lock_ms
        self._take_options = take_options

    async def wait(self, timeout: float, want: int) -> Wakeup:
        """Waits up to ``timeout`` seconds for the marker, then takes up to ``want`` jobs."""
        claim = new_claim()  # fresh per wait: a lease it names is this wait's
        client = self.client
        try:
            glide = await client.raw()
        except GlideMQError as exc:
            return Wakeup(error=exc)
        cluster = isinstance(glide, GlideClusterClient)
        batch = ClusterBatch(is_atomic=False) if cluster else Batch(is_atomic=False)
        batch.bzpopmin([self._ctx.key("marker")], timeout)
        batch.fcall(function_name("take"), call_keys(self._ctx.base),
                    [self._lock_ms, str(want), "", self._take_options, claim])
        reply_ms = int((timeout + REPLY_MARGIN) * 1000)
        try:
            if isinstance(glide, GlideClusterClient):
                replies = await glide.exec(batch, raise_on_error=False, options=ClusterBatchOptions(timeout=reply_ms))
            else:
                replies = await glide.exec(batch, raise_on_error=False, options=BatchOptions(timeout=reply_ms))
        except Exception as exc:  # noqa: BLE001 - any client failure: the take may have run
            # interrupt() ended it on purpose: nothing to report
            error = None if client is not self.client else GlideMQError(f"waiting for jobs failed: {exc}")
            return Wakeup(error=error, claim=claim, lost=True)
        if not replies or len(replies) != 2:
            unexpected = GlideMQError(f"waiting for jobs: unexpected reply {replies!r}")
            return Wakeup(error=unexpected, claim=claim, lost=True)
        waited, took = replies
        error = GlideMQError(f"waiting for jobs failed: {waited}") if isinstance(waited, Exception) else None
        if isinstance(took, Exception):
            # Not run (the library is missing, a refusal): the worker's next take runs it the
            # usual way, loading the library if need be.
            return Wakeup(error=error)
        return Wakeup(reply=took, error=error, claim=claim)

    async def release(self, claim: str) -> list[str]:
        """Hands back the jobs a lost wait leased under ``claim``; returns their ids."""
        released: list[bytes] = await self._ctx.call("release_claim", [claim])
        return [job_id.decode() for job_id in released]

    async def interrupt(self) -> None:
        """Ends a wait under way (its take, if it ran, is handed back as lost) and starts the
        next wait on a new connection."""
        client, self.client = self.client, Client(self.client.connection, name=self.client.name)
        await client.close()

    async def close(self) -> None:
        """Closes the connection; a wait under way ends at once."""
        await self.client.close()
