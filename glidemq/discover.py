"""Finding the queues that exist under a prefix (for admin tools, metrics and the dashboard).

A queue has no registry entry of its own: its keys are what make it exist. Discovery SCANs
the keyspace (every primary on a cluster) for keys of the form ``prefix:{name}:...`` and
collects the names. SCAN walks every key, so this is meant for tools, not for hot paths.
"""

from __future__ import annotations

from glide import ClusterScanCursor, GlideClusterClient

from ._client import Client
from .connection import Connection, resolve

SCAN_COUNT = 1000


def queue_name_of(key: bytes | str, prefix: str) -> str | None:
    """The queue a key belongs to, or None when the key is not a queue key under ``prefix``."""
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    head = prefix + ":{"
    if not text.startswith(head):
        return None
    end = text.find("}:", len(head))
    if end <= len(head):
        return None
    name = text[len(head):end]
    return None if ":" in name else name  # e.g. "{emails:workers}": the worker registry, not a queue


async def queue_names_with(client: Client, prefix: str = "glidemq") -> list[str]:
    """Sorted names of the queues under ``prefix`` reachable through ``client``."""
    glide = await client.raw()
    match = prefix.replace("[", "\\[").replace("*", "\\*").replace("?", "\\?") + ":{*}:*"
    names: set[str] = set()
    if isinstance(glide, GlideClusterClient):
        cluster_cursor = ClusterScanCursor()  # type: ignore[no-untyped-call]
        while not cluster_cursor.is_finished():
            cluster_cursor, keys = await glide.scan(cluster_cursor, match=match, count=SCAN_COUNT)  # type: ignore[assignment]
            names.update(n for k in keys if (n := queue_name_of(k, prefix)))
        return sorted(names)
    cursor: bytes | str = "0"
    while True:
        cursor, keys = await glide.scan(cursor, match=match, count=SCAN_COUNT)  # type: ignore[assignment]
        names.update(n for k in keys if (n := queue_name_of(k, prefix)))
        if cursor in (b"0", "0"):
            return sorted(names)


async def queue_names(connection: Connection | str | None = None, *, prefix: str = "glidemq") -> list[str]:
    """Sorted names of every queue under ``prefix`` on the server or cluster."""
    client = Client(resolve(connection), name="glidemq-discover")
    try:
        return await queue_names_with(client, prefix)
    finally:
        await client.close()
