"""Server-side counters: ``INFO commandstats`` and ``INFO cpu``, read through a raw glide client."""

from __future__ import annotations

from dataclasses import dataclass

from glide import GlideClient, GlideClientConfiguration, NodeAddress, ServerCredentials

import glidemq

# The probe's own INFO calls are not part of any scenario's cost.
IGNORED_COMMANDS = frozenset({"info"})


@dataclass(frozen=True)
class ServerSample:
    """Cumulative counters of the server at one moment."""

    calls: dict[str, int]
    cpu_seconds: float


@dataclass(frozen=True)
class ServerUsage:
    """What the server did between two samples."""

    calls: dict[str, int]
    cpu_seconds: float

    @classmethod
    def between(cls, before: ServerSample, after: ServerSample) -> ServerUsage:
        calls = {
            name: count - before.calls.get(name, 0)
            for name, count in after.calls.items()
            if name not in IGNORED_COMMANDS and count > before.calls.get(name, 0)
        }
        return cls(dict(sorted(calls.items(), key=lambda item: -item[1])), after.cpu_seconds - before.cpu_seconds)

    @property
    def commands(self) -> int:
        """Every command the server ran, those run inside library functions included."""
        return sum(self.calls.values())

    @property
    def fcalls(self) -> int:
        """Calls into the function library: round trips that did queue work."""
        return self.calls.get("fcall", 0) + self.calls.get("fcall_ro", 0)


def parse_info(text: str) -> ServerSample:
    """Reads the calls per command and the CPU seconds out of an INFO reply."""
    calls: dict[str, int] = {}
    cpu = 0.0
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key.startswith("cmdstat_"):
            fields = dict(part.split("=", 1) for part in value.split(","))
            calls[key.removeprefix("cmdstat_")] = int(fields["calls"])
        elif key in ("used_cpu_sys", "used_cpu_user"):
            cpu += float(value)
    return ServerSample(calls, cpu)


def parse_field(text: str, name: str) -> str | None:
    """One ``name:value`` field of an INFO reply."""
    for line in text.splitlines():
        key, _, value = line.strip().partition(":")
        if key == name:
            return value
    return None


class ServerProbe:
    """A plain glide client that samples the server's counters."""

    def __init__(self, client: GlideClient) -> None:
        self._client = client

    @classmethod
    async def connect(cls, connection: glidemq.Connection) -> ServerProbe:
        if connection.cluster:
            raise SystemExit("the benchmark needs a standalone server, not a cluster URL")
        credentials = None
        if connection.password is not None or connection.username is not None:
            credentials = ServerCredentials(password=connection.password, username=connection.username)
        config = GlideClientConfiguration(
            [NodeAddress(connection.host, connection.port)],
            use_tls=connection.tls,
            credentials=credentials,
            database_id=connection.db,
            request_timeout=10_000,
        )
        return cls(await GlideClient.create(config))

    async def info(self, *sections: str) -> str:
        reply = await self._client.custom_command(["INFO", *sections])
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    async def sample(self) -> ServerSample:
        return parse_info(await self.info("commandstats", "cpu"))

    async def version(self) -> str:
        text = await self.info("server")
        return parse_field(text, "valkey_version") or parse_field(text, "redis_version") or "unknown"

    async def close(self) -> None:
        await self._client.close()
