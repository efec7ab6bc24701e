"""glidemq.testing: the embedded server as a context manager and as a pytest fixture."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import glidemq
from glidemq.testing import EmbeddedValkey


def _answers_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


async def test_context_manager_runs_a_real_server_and_stops_it() -> None:
    with EmbeddedValkey() as server:
        assert server.url == f"valkey://127.0.0.1:{server.port}"
        assert _answers_ping(server.host, server.port)
        async with glidemq.Queue("embedded", connection=server.url) as queue:
            job = await queue.add("x", {"n": 1})
            assert (await queue.get_job(job.id)) is not None
    assert not _answers_ping(server.host, server.port)


def test_pytest_fixture_yields_a_running_server(tmp_path: Path) -> None:
    test_file = tmp_path / "test_uses_fixture.py"
    test_file.write_text(
        textwrap.dedent(
            """
            import socket

            def test_server(embedded_valkey):
                assert embedded_valkey.url.startswith("valkey://127.0.0.1:")
                with socket.create_connection((embedded_valkey.host, embedded_valkey.port)) as sock:
                    sock.sendall(b"PING\\r\\n")
                    assert sock.recv(16).startswith(b"+PONG")
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "glidemq.testing", "-p", "no:valkey", "-p", "no:cacheprovider",
         str(test_file)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
