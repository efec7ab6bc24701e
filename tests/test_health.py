"""Server health (glidemq.health) and ``glidemq doctor`` / ``glidemq load-library`` on real servers."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator

import pytest

import glidemq
from glidemq.functions import LIBRARY_NAME
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster


def glidemq_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glidemq", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def own() -> Iterator[EmbeddedValkey]:
    """A server of its own: the tests change its configuration."""
    with EmbeddedValkey(appendonly=True) as server:
        yield server


async def test_health_reports_the_node(own: EmbeddedValkey) -> None:
    own.command("CONFIG", "SET", "save", "3600 1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = await glidemq.health(own.url)
    assert result.ok and result.warnings == []
    (node,) = result.nodes
    assert node.address == f"127.0.0.1:{own.port}" and node.role == "master" and node.version
    assert node.aof_enabled is True and node.appendfsync in ("always", "everysec", "no")
    assert node.rdb_save == "3600 1" and node.maxmemory_policy == "noeviction"
    assert node.library_loaded is False
    async with glidemq.Queue("q", connection=own.url) as queue:
        await queue.count()
    (node,) = (await glidemq.health(own.url)).nodes
    assert node.library_loaded is True and node.libraries == [LIBRARY_NAME]


async def test_eviction_policy_warns_once_and_is_in_the_result(own: EmbeddedValkey) -> None:
    own.command("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    with pytest.warns(RuntimeWarning, match="allkeys-lru"):
        result = await glidemq.health(own.url)
    assert not result.ok and "noeviction" in result.warnings[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = await glidemq.health(own.url)  # once per connection
    assert again.warnings == result.warnings


def test_doctor_exit_codes(own: EmbeddedValkey) -> None:
    healthy = glidemq_cli("doctor", "--url", own.url)
    assert healthy.returncode == 0, healthy.stderr
    assert "healthy" in healthy.stdout and "maxmemory-policy noeviction" in healthy.stdout
    own.command("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    sick = glidemq_cli("doctor", "--url", own.url)
    assert sick.returncode == 1
    assert "WARNING" in sick.stdout and "volatile-lru" in sick.stdout and "unhealthy" in sick.stdout


def test_doctor_unreachable_server_fails() -> None:
    result = glidemq_cli("doctor", "--url", "valkey://u:topsecret@127.0.0.1:1")
    assert result.returncode == 1 and "topsecret" not in result.stdout + result.stderr


def test_load_library_then_doctor(own: EmbeddedValkey) -> None:
    loaded = glidemq_cli("load-library", "--url", own.url)
    assert loaded.returncode == 0 and LIBRARY_NAME in loaded.stdout
    assert f"library {LIBRARY_NAME}" in glidemq_cli("doctor", "--url", own.url).stdout


async def test_cluster_health_covers_primaries_and_replicas(cluster: EmbeddedValkeyCluster) -> None:
    loaded = glidemq_cli("load-library", "--url", cluster.url)
    assert loaded.returncode == 0, loaded.stderr
    result = await glidemq.health(cluster.url)
    assert {n.address for n in result.nodes} == {f"127.0.0.1:{n.port}" for n in cluster.nodes}
    roles = sorted(n.role or "" for n in result.nodes)
    assert roles.count("master") == len(cluster.primaries()) and "slave" in roles
    assert all(n.library_loaded for n in result.nodes if n.role == "master")
    doctor = glidemq_cli("doctor", "--url", cluster.url)
    assert doctor.returncode == 0 and doctor.stdout.count("role ") == len(cluster.nodes)
