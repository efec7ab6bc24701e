"""Queue discovery by SCAN, on a real server and on the local cluster."""

from __future__ import annotations

import glidemq
from glidemq.discover import queue_name_of, queue_names
from glidemq.testing import EmbeddedValkeyCluster


def test_queue_name_of_parses_only_queue_keys() -> None:
    assert queue_name_of(b"glidemq:{emails}:wait", "glidemq") == "emails"
    assert queue_name_of("glidemq:{a}:j:x}:y", "glidemq") == "a"
    assert queue_name_of("other:{emails}:wait", "glidemq") is None
    assert queue_name_of("glidemq:{}:wait", "glidemq") is None
    assert queue_name_of("glidemq:emails", "glidemq") is None


async def test_lists_every_queue_and_only_under_its_prefix(url: str, qname: str) -> None:
    names = [f"{qname}-a", f"{qname}-b", f"{qname}-c"]
    for name in names:
        async with glidemq.Queue(name, connection=url) as q:
            await q.add("x", 1)
    async with glidemq.Queue(f"{qname}-other", connection=url, prefix="elsewhere") as q:
        await q.add("x", 1)
    found = await queue_names(url)
    assert set(names) <= set(found)
    assert f"{qname}-other" not in found
    assert await queue_names(url, prefix="elsewhere") == [f"{qname}-other"]


async def test_lists_queues_on_every_cluster_node(cluster: EmbeddedValkeyCluster, qname: str) -> None:
    names = [f"{qname}-{i}" for i in range(12)]  # spread over the slots of all three primaries
    for name in names:
        async with glidemq.Queue(name, connection=cluster.url) as q:
            await q.add("x", 1)
    assert set(names) <= set(await queue_names(cluster.url))
