"""Shared fixtures: one real Valkey server per test session, a fresh queue per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from glide import GlideClient, GlideClientConfiguration, NodeAddress

import glidemq
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedValkey]:
    """A real valkey-server shared by the session's tests."""
    with EmbeddedValkey() as valkey:
        yield valkey


@pytest.fixture(scope="session")
def cluster() -> Iterator[EmbeddedValkeyCluster]:
    """A real Valkey Cluster (3 primaries, 3 replicas) shared by the session's tests."""
    with EmbeddedValkeyCluster() as valkey_cluster:
        yield valkey_cluster


@pytest.fixture
def url(server: EmbeddedValkey) -> str:
    return server.url


@pytest.fixture
def qname() -> str:
    """A queue name no other test uses."""
    return "q" + uuid.uuid4().hex[:12]


@pytest.fixture
async def queue(url: str, qname: str) -> AsyncIterator[glidemq.Queue]:
    async with glidemq.Queue(qname, connection=url) as q:
        yield q


@pytest.fixture
async def raw(server: EmbeddedValkey) -> AsyncIterator[GlideClient]:
    """A plain glide client, for looking at keys behind glidemq's back."""
    client = await GlideClient.create(GlideClientConfiguration([NodeAddress(server.host, server.port)]))
    yield client
    await client.close()


async def keyspace(raw: GlideClient, qname: str) -> dict[bytes, bytes]:
    """Every key of a queue with a dump of its value: equal snapshots mean nothing was written."""
    keys = await raw.custom_command(["KEYS", f"*{{{qname}}}*"])
    return {k: await raw.custom_command(["DUMP", k]) for k in sorted(keys)}
