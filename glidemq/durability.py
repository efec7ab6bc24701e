"""Durability of adds: wait until a write reached replicas and/or the append-only file.

After the add's FCALL, ``WAIT numreplicas timeout`` and/or ``WAITAOF 1 0 timeout`` run on the
connection that carried the write, to the node that holds the queue's keys. The server counts,
for that connection, the replication offset of its latest write: valkey-glide multiplexes one
connection per node, so that latest write is the add itself or a later write sent on the same
connection, never an earlier one. An acknowledgement therefore covers the add (and possibly more).
"""

from __future__ import annotations

import asyncio
import dataclasses
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._client import Client
from .errors import GlideMQError, InvalidArgumentError, ServerError

if TYPE_CHECKING:
    from .job import Job

MAX_REPLICAS = 1000
_wait_locks: weakref.WeakKeyDictionary[Client, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Durability:
    """What an add must reach before it returns.

    ``replicas``: replicas that acknowledged the write (``WAIT``). ``fsync``: the primary wrote
    it to its append-only file and fsynced it (``WAITAOF 1 0``; needs ``appendonly yes``).
    ``timeout``: seconds to wait for each; an add that reached less raises ``DurabilityError``
    (the jobs are written all the same, the error carries them).
    """

    replicas: int = 0
    fsync: bool = False
    timeout: float = 1.0

    def __post_init__(self) -> None:
        if isinstance(self.replicas, bool) or not isinstance(self.replicas, int):
            raise InvalidArgumentError("Durability.replicas must be an int")
        if not 0 <= self.replicas <= MAX_REPLICAS:
            raise InvalidArgumentError(f"Durability.replicas must be 0..{MAX_REPLICAS}")
        if not isinstance(self.fsync, bool):
            raise InvalidArgumentError("Durability.fsync must be a bool")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float)) or not self.timeout > 0:
            raise InvalidArgumentError("Durability.timeout must be a positive number of seconds")
        if self.timeout > 3600:
            raise InvalidArgumentError("Durability.timeout must be at most 3600 seconds")

    @property
    def timeout_ms(self) -> int:
        return max(1, round(self.timeout * 1000))


@dataclass(frozen=True)
class Achieved:
    """What a durable add reached: acknowledging replicas, and whether the primary fsynced it."""

    replicas: int
    fsync: bool


class DurabilityError(GlideMQError):
    """The jobs were written, but fewer replicas or fsyncs than asked confirmed them in time.

    ``achieved`` says what was reached, ``requested`` what was asked, ``jobs`` the jobs written.
    """

    def __init__(self, message: str, *, requested: Durability, achieved: Achieved, jobs: list[Job]) -> None:
        super().__init__(message)
        self.requested = requested
        self.achieved = achieved
        self.jobs = jobs


def check_durability(durability: Durability | None) -> Durability | None:
    """``durability`` if it is a Durability or None; InvalidArgumentError otherwise."""
    if durability is not None and not isinstance(durability, Durability):
        raise InvalidArgumentError("durability must be a glidemq.Durability or None")
    return durability


def durable_client(client: Client, durability: Durability) -> Client:
    """A client of its own for durable adds: WAIT blocks its connection until it returns,
    which must not hold up the queue's other calls. Its request timeout covers the wait."""
    connection = client.connection
    timeout = max(connection.request_timeout, durability.timeout + 1.0)
    return Client(dataclasses.replace(connection, request_timeout=timeout), name=client.name)


async def wait_for(client: Client, base: str, durability: Durability) -> Achieved:
    """Runs WAIT/WAITAOF on ``client``'s connection to the node of ``base``; what was reached.

    One wait at a time per client: the server runs the blocking waits of one connection one
    after the other, while valkey-glide times each from the moment it sent it, so concurrent
    waits would time out in the client (and be retried until the request timeout) although
    each was within its own timeout on the server.
    """
    lock = _wait_locks.setdefault(client, asyncio.Lock())
    async with lock:
        return await _wait(client, base, durability)


async def _wait(client: Client, base: str, durability: Durability) -> Achieved:
    replicas = 0
    fsync = False
    ms = str(durability.timeout_ms)
    if durability.replicas:
        replicas = int(await client.command(["WAIT", str(durability.replicas), ms], key=base))
    if durability.fsync:
        try:
            local, _ = await client.command(["WAITAOF", "1", "0", ms], key=base)
        except ServerError as exc:
            if "appendonly" in str(exc).lower():
                return Achieved(replicas, False)
            raise
        fsync = int(local) >= 1
    return Achieved(replicas, fsync)


def verdict(durability: Durability, achieved: Achieved, jobs: list[Job]) -> None:
    """Raises DurabilityError when ``achieved`` falls short of ``durability``."""
    short: list[str] = []
    if achieved.replicas < durability.replicas:
        short.append(f"{achieved.replicas} of {durability.replicas} replicas acknowledged")
    if durability.fsync and not achieved.fsync:
        short.append("the primary did not fsync it to its append-only file (is appendonly off?)")
    if short:
        raise DurabilityError(
            f"{len(jobs)} job(s) written, but within {durability.timeout}s " + "; ".join(short),
            requested=durability, achieved=achieved, jobs=jobs,
        )


