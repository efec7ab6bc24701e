"""Server health as glidemq sees it: version, role, persistence, eviction policy, library.

``await glidemq.health(connection)`` asks every node (on a cluster: every primary and replica)
and returns one ``NodeHealth`` per node plus the warnings. An eviction policy other than
``noeviction`` lets the server drop job keys under memory pressure: it is reported in the
result and with ``warnings.warn`` (once per connection).
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from dataclasses import dataclass, field
from typing import Any

import hiredis
from glide import GlideError

from ._client import Client
from ._resp import encode, read_reply
from .connection import Connection, resolve
from .errors import ConnectionFailedError, ServerError
from .functions import LIBRARY_NAME

_warned: set[str] = set()
QUESTIONS: list[list[Any]] = [
    ["INFO", "server", "replication", "persistence", "memory"],
    ["CONFIG", "GET", "appendfsync", "save"],
    ["FUNCTION", "LIST", "LIBRARYNAME", "glidemq_*"],
]


@dataclass
class NodeHealth:
    """One server node. ``None`` where the server (or the user's ACL) did not say."""

    address: str
    version: str | None = None
    role: str | None = None
    aof_enabled: bool | None = None
    appendfsync: str | None = None
    rdb_save: str | None = None
    maxmemory_policy: str | None = None
    libraries: list[str] = field(default_factory=list)  # glidemq library names loaded on the node
    library_loaded: bool | None = None  # the library of this glidemq release
    warnings: list[str] = field(default_factory=list)


@dataclass
class Health:
    """The nodes' health; ``ok`` is False when any node carries a warning."""

    nodes: list[NodeHealth]

    @property
    def warnings(self) -> list[str]:
        return [f"{node.address}: {text}" for node in self.nodes for text in node.warnings]

    @property
    def ok(self) -> bool:
        return not self.warnings


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _info_fields(text: Any) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in _text(text).splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def _node_commands(conn: Connection, host: str, port: int, commands: list[list[Any]]) -> list[Any]:
    """Runs ``commands`` on one node over a plain socket of its own (a cluster client reaches
    only the nodes it has discovered; this reaches any replica). A refused command
    (ACL, old server) gives None."""
    reader = hiredis.Reader()
    sock = socket.create_connection((host, port), timeout=conn.request_timeout)
    try:
        if conn.tls:
            sock = conn.ssl_context().wrap_socket(sock, server_hostname=host)
        setup: list[list[Any]] = []
        if conn.password is not None:
            setup.append(["AUTH", conn.username, conn.password] if conn.username else ["AUTH", conn.password])
        replies: list[Any] = []
        for command in [*setup, *commands]:
            sock.sendall(encode(command))
            reply = read_reply(sock, reader)
            if isinstance(reply, hiredis.ReplyError):
                if command[0] == "AUTH":
                    raise ServerError(f"authentication refused by {host}:{port}")
                reply = None
            replies.append(reply)
        return replies[len(setup):]
    except (OSError, EOFError) as exc:
        raise ConnectionFailedError(f"{host}:{port} unreachable: {exc}") from exc
    finally:
        sock.close()


async def _cluster_nodes(client: Client) -> list[tuple[str, int]]:
    """Every node the cluster knows (CLUSTER NODES): primaries and replicas, failed ones left out."""
    glide = await client.raw()
    reply = await glide.custom_command(["CLUSTER", "NODES"])
    text = _text(next(iter(reply.values())) if isinstance(reply, dict) else reply)
    nodes: list[tuple[str, int]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 3 or "fail" in parts[2].split(",") or "noaddr" in parts[2]:
            continue
        host, _, port = parts[1].split("@")[0].rpartition(":")
        nodes.append((host, int(port)))
    return nodes


async def health(connection: Connection | str | None = None) -> Health:
    """Asks every node of the server or cluster; see the module docstring."""
    conn = resolve(connection)
    client = Client(conn, name="glidemq-health")
    infos: dict[str, Any] = {}
    configs: dict[str, Any] = {}
    libs: dict[str, Any] = {}
    try:
        targets = [(conn.host, conn.port)]
        if conn.cluster:
            targets = await _cluster_nodes(client)
        for host, port in targets:
            info, config, libraries = await asyncio.to_thread(_node_commands, conn, host, port, QUESTIONS)
            where = f"{host}:{port}"
            infos[where], configs[where], libs[where] = info, config, libraries
    except GlideError as exc:
        raise ServerError(f"health check failed: {exc}") from exc
    finally:
        await client.close()
    nodes: list[NodeHealth] = []
    for node_address in sorted(infos):
        info = _info_fields(infos[node_address])
        node = NodeHealth(
            address=node_address,
            version=info.get("valkey_version") or info.get("redis_version"),
            role=info.get("role"),
            aof_enabled=info["aof_enabled"] == "1" if "aof_enabled" in info else None,
            maxmemory_policy=info.get("maxmemory_policy"),
        )
        config = configs.get(node_address)
        if config is not None:
            pairs = _pairs(config)
            node.appendfsync = pairs.get("appendfsync")
            node.rdb_save = pairs.get("save")
        if libs.get(node_address) is not None:
            names = [_library_name(entry) for entry in libs[node_address] or []]
            node.libraries = sorted(n for n in names if n.startswith("glidemq_"))
            node.library_loaded = LIBRARY_NAME in node.libraries
        if node.maxmemory_policy not in (None, "noeviction"):
            node.warnings.append(
                f"maxmemory-policy is {node.maxmemory_policy}: under memory pressure the server may evict "
                "job keys and lose jobs; set it to noeviction"
            )
        nodes.append(node)
    result = Health(nodes)
    if result.warnings and conn.url not in _warned:
        _warned.add(conn.url)
        warnings.warn("glidemq: " + "; ".join(result.warnings), RuntimeWarning, stacklevel=2)
    return result


def _pairs(reply: Any) -> dict[str, str]:
    if isinstance(reply, dict):
        return {_text(k): _text(v) for k, v in reply.items()}
    items = [_text(x) for x in reply]
    return dict(zip(items[::2], items[1::2], strict=False))


def _library_name(entry: Any) -> str:
    if isinstance(entry, dict):
        for key, value in entry.items():
            if _text(key) == "library_name":
                return _text(value)
        return ""
    items = list(entry)
    for i in range(0, len(items) - 1, 2):
        if _text(items[i]) == "library_name":
            return _text(items[i + 1])
    return ""
