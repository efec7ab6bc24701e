"""The parent's handle on a ``_worker.py`` subprocess: start it, say go, read its reports."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("_worker.py")
READY_TIMEOUT = 30.0
CLOSE_TIMEOUT = 30.0
LINE_LIMIT = 1 << 26  # the latency report holds every sample on one line


class WorkerProcess:
    """A ``_worker.py`` subprocess and its line protocol."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.closed_after: float | None = None

    @classmethod
    async def start(
        cls, url: str, queue: str, jobs: int, concurrency: int, mode: str, timeout: float,
        worker_options: dict[str, Any] | None = None,
    ) -> WorkerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER_SCRIPT), "--url", url, "--queue", queue, "--jobs", str(jobs),
            "--concurrency", str(concurrency), "--mode", mode, "--timeout", str(timeout),
            "--worker-options", json.dumps(worker_options or {}),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=LINE_LIMIT,
        )
        worker = cls(process)
        await worker._expect("ready", READY_TIMEOUT)
        return worker

    async def _expect(self, key: str, timeout: float) -> Any:
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            self._process.kill()
            await self._process.wait()
            raise RuntimeError(f"worker process sent no {key!r} within {timeout:g}s") from None
        if not line:
            code = await self._process.wait()
            raise RuntimeError(f"worker process exited with code {code} before sending {key!r}")
        return json.loads(line)[key]

    async def send_go(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(b"go\n")
        await self._process.stdin.drain()

    async def result(self, timeout: float) -> dict[str, Any]:
        report: dict[str, Any] = await self._expect("result", timeout + READY_TIMEOUT)
        return report

    async def go(self, timeout: float) -> dict[str, Any]:
        await self.send_go()
        return await self.result(timeout)

    @staticmethod
    def problems(report: dict[str, Any]) -> list[str]:
        found = list(report["errors"])
        if not report["finished"]:
            found.append(f"gave up with {report['completed']} jobs completed")
        if report["failed"]:
            found.append(f"{report['failed']} jobs failed")
        if report["stalled"]:
            found.append(f"{report['stalled']} stalled events")
        return found

    async def finish(self) -> list[str]:
        """Waits for the graceful close; returns what went wrong."""
        try:
            self.closed_after = await self._expect("closed", CLOSE_TIMEOUT)
        except RuntimeError as exc:
            return [f"worker close: {exc}"]
        code = await self._process.wait()
        return [] if code == 0 else [f"worker process exited with code {code}"]
