"""Runs one driver subprocess under a time cap, and talks plain RESP to the shared server."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
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
        if self.status != "ok" or not self.report.get("seconds"):
            return None
        return float(self.report["jobs"]) / float(self.report["seconds"])


def _last_json(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                found: dict[str, Any] = json.loads(line)
            except json.JSONDecodeError:
                continue
            return found
    return None


def run_driver(system: str, args: list[str], cap: float) -> Outcome:
    """Runs the driver in a session of its own, so a timeout kills its whole process group."""
    process = subprocess.Popen(
        [*command(system), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, cwd=HERE,
    )
    try:
        stdout, stderr = process.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return Outcome("timeout", detail=f"no answer within {cap:g} s")
    finally:
        try:  # children a driver started (worker pools) go with it
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    report = _last_json(stdout)
    if report is None:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        return Outcome("failed", detail=f"exit code {process.returncode}: {tail}"[:400])
    if "unsupported" in report:
        return Outcome("unsupported", report, str(report["unsupported"]))
    if report.get("completed", 0) < report["jobs"] or "error" in report:
        detail = f"{report.get('completed', 0)} of {report['jobs']} jobs done {report.get('error', '')}"
        return Outcome("incomplete", report, detail.strip())
    return Outcome("ok", report)


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

    def info_field(self, section: str, key: str) -> str | None:
        for line in str(self.call("INFO", section)).splitlines():
            if line.startswith(key + ":"):
                return line.split(":", 1)[1].strip()
        return None

    def close(self) -> None:
        self._file.close()
        self._sock.close()
