"""Runs one driver subprocess under a time cap, and talks plain RESP to the shared server."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from setup import NODE_DIR, PYTHON_PEERS, venv_python

HERE = Path(__file__).resolve().parent
DRIVERS = HERE / "drivers"


def command(system: str) -> list[str]:
    """The interpreter and script that drive ``system`` (glidemq runs in this interpreter)."""
    if system == "bullmq":
        return ["node", str(NODE_DIR / "driver.mjs")]
    if system == "glidemq":
        return [sys.executable, str(DRIVERS / "glidemq_driver.py")]
    if system in PYTHON_PEERS:
        return [str(venv_python(system)), str(DRIVERS / f"{system.replace('-', '_')}_driver.py")]
    raise ValueError(f"unknown system {system!r}")


@dataclass
class Outcome:
    """What one driver run reported. ``status``: ok, unsupported, timeout, failed or incomplete."""

    status: str
    report: dict[str, Any] = field(default_factory=dict)
    detail: str = ""

    @property
    def jobs_per_sec(self) -> float | None:
        """Jobs done per second; for an incomplete run, the rate of the part that was done."""
        if self.status not in ("ok", "incomplete") or not self.report.get("seconds"):
            return None
        done = self.report["jobs"] if self.status == "ok" else self.report.get("completed", 0)
        return float(done) / float(self.report["seconds"])


def _json_line(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        found: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        return None
    return found


class DriverProcess:
    """One driver subprocess in a session of its own (so its whole process group can be
    ended), whose JSON lines are read as they come, without waiting for EOF (worker pools
    keep stdout open)."""

    def __init__(self, system: str, args: list[str]) -> None:
        self._stderr = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [*command(system), *args], stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            start_new_session=True, cwd=HERE,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: str | None = None
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def next_report(self, cap: float) -> dict[str, Any] | None:
        """The next JSON line (None when the driver exited first); TimeoutError after ``cap`` s."""
        deadline = time.monotonic() + cap
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self._lines.put(None)  # later reads see the end too
                return None
            report = _json_line(line)
            if report is not None:
                return report
        raise TimeoutError

    def stop(self) -> str:
        """Ends the driver and any worker processes it started; returns its last stderr lines
        (again on a later call)."""
        if self._tail is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
            self._stderr.seek(0)
            self._tail = " | ".join(self._stderr.read().strip().splitlines()[-3:])
            self._stderr.close()
        return self._tail


def outcome_of(report: dict[str, Any] | None, returncode: int | None, tail: str) -> Outcome:
    """What a driver's final report (or its absence) says."""
    if report is None:
        return Outcome("failed", detail=f"exit code {returncode}: {tail}"[:400])
    if "unsupported" in report:
        return Outcome("unsupported", report, str(report["unsupported"]))
    if report.get("completed", 0) < report["jobs"] or "error" in report:
        detail = f"{report.get('completed', 0)} of {report['jobs']} jobs done {report.get('error', '')}"
        return Outcome("incomplete", report, detail.strip())
    return Outcome("ok", report)


def run_driver(system: str, args: list[str], cap: float) -> Outcome:
    """Runs a driver to its one report, within ``cap`` seconds."""
    driver = DriverProcess(system, args)
    try:
        report = driver.next_report(cap)
    except TimeoutError:
        driver.stop()
        return Outcome("timeout", detail=f"no answer within {cap:g} s")
    tail = driver.stop()
    return outcome_of(report, driver.process.returncode, tail)


class Resp:
    """A minimal RESP2 client for FLUSHALL and INFO (no dependency on any peer's client)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=30)
        self._file = self._sock.makefile("rb")

    def call(self, *words: str) -> Any:
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
        self._sock.sendall(payload.encode())
        line = self._file.readline().rstrip(b"\r\n")
        kind, rest = line[:1], line[1:].decode()
        if kind == b"-":
            raise RuntimeError(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._file.read(size + 2)[:-2].decode()
        return int(rest) if kind == b":" else rest

    def cpu_seconds(self) -> float:
        """The server process's CPU time so far (user + system)."""
        return sum(float(self.info_field("cpu", key) or 0) for key in ("used_cpu_user", "used_cpu_sys"))

    def info_field(self, section: str, key: str) -> str | None:
        for line in str(self.call("INFO", section)).splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
        return None

    def close(self) -> None:
        self._file.close()
        self._sock.close()
