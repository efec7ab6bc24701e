"""glidemq side by side with its peers, on one fresh embedded Valkey, in one run.

    python bench/peers/run.py [--jobs 20000] [--systems bullmq,taskiq,...] [--scenarios ...]
                              [--quick] [--cap 120] [--no-pin]

Every system runs in a subprocess of its own (its own venv, or node for BullMQ; set up on
first use by setup.py), the server is flushed before every scenario, and each scenario is
capped in time: a peer that times out or fails is reported as such and the run goes on.
Prints jobs/s per system and scenario, the ratio glidemq / peer, and per system the pickup
latency at 500 jobs/s, server and worker CPU per job and worker RSS; writes
bench/peers/results/latest.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from _harness import DriverProcess, Outcome, Resp, outcome_of, run_driver
from _report import cost_table, ratio_table, speed_table, write_json

from glidemq.testing import EmbeddedValkey
from setup import NODE_PEERS, PYTHON_PEERS, ensure

HERE = Path(__file__).resolve().parent
sys.path.insert(1, str(HERE.parent))  # bench/: the CPU placement shared with bench/run.py
from _cpus import add_pin_option, pin  # noqa: E402

DEFAULT_OUTPUT = HERE / "results" / "latest.json"
DEFAULT_JOBS, QUICK_JOBS = 20_000, 500
PEERS = ["bullmq", "taskiq", "dramatiq", "arq", "saq", "rq", "celery", "bullmq-py", "streaq"]
ADDS = ["add_sequential", "add_concurrent", "add_bulk"]
CONCURRENCIES = (1, 10, 50)
PROCESSING = [f"process_c{c}" for c in CONCURRENCIES]
SCENARIOS = [*ADDS, *PROCESSING, "latency"]
# the pickup latency scenario of bench/run.py: paced single adds to an idle worker of concurrency 10
LATENCY_RATE, LATENCY_SECONDS, QUICK_LATENCY_SECONDS, LATENCY_CONCURRENCY = 500.0, 5.0, 1.0, 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="glidemq against its peers")
    parser.add_argument("--jobs", type=int, default=None, help=f"jobs per scenario (default {DEFAULT_JOBS})")
    parser.add_argument("--systems", default=",".join(PEERS), help="comma-separated peers (glidemq always runs)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_JOBS} jobs per scenario")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds allowed per scenario and system")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="event loop of every asyncio-based system (uvloop where installed; default uvloop)")
    add_pin_option(parser)
    args = parser.parse_args(argv)
    os.environ["BENCH_LOOP"] = args.loop  # read by drivers/_common.py in every driver subprocess
    if args.jobs is None:
        args.jobs = QUICK_JOBS if args.quick else DEFAULT_JOBS
    known = {*PEERS, *NODE_PEERS, *PYTHON_PEERS}
    args.systems = ["glidemq", *(s for s in args.systems.split(",") if s and s != "glidemq")]
    unknown = [s for s in args.systems[1:] if s not in known]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if set(args.scenarios) - set(SCENARIOS):
        parser.error(f"scenarios are: {', '.join(SCENARIOS)}")
    return args


def git_revision() -> str | None:
    """``git describe --always --dirty`` of the checkout glidemq runs from (editable installs)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=HERE, capture_output=True,
                              text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def run_latency(system: str, common: list[str], cap: float, quick: bool) -> Outcome:
    """A worker of concurrency 10 idles on an empty queue; once it says it is ready, a second
    process adds jobs at 500 per second, each carrying its add time; the worker reports the
    pickup latency of each (its processor's start minus that time)."""
    seconds = QUICK_LATENCY_SECONDS if quick else LATENCY_SECONDS
    jobs = str(round(LATENCY_RATE * seconds))
    common = [*common, "--jobs", jobs]
    worker = DriverProcess(system, [*common, "--scenario", "latency_work", "--concurrency", str(LATENCY_CONCURRENCY)])
    try:
        ready = worker.next_report(cap)
        if ready is None or "ready" not in ready:
            return outcome_of(ready, worker.process.returncode, worker.stop())
        adds = run_driver(system, [*common, "--scenario", "paced", "--rate", str(LATENCY_RATE)], cap)
        if adds.status != "ok":
            adds.detail = f"adding: {adds.detail}"
            return adds
        report = worker.next_report(cap)
    except TimeoutError:
        return Outcome("timeout", detail=f"no answer within {cap:g} s")
    finally:
        tail = worker.stop()  # the worker never outlives its step, whatever ended it
    outcome = outcome_of(report, worker.process.returncode, tail)
    outcome.report.update({"rss_mb_idle": ready["rss_mb_idle"], "max_lag_ms": adds.report.get("max_lag_ms")})
    return outcome


def run_scenario(system: str, scenario: str, url: str, args: argparse.Namespace, server: Resp) -> Outcome:
    """One scenario of one system; processing also reports the server's CPU time it cost."""
    queue = f"peers-{scenario}-{uuid.uuid4().hex[:8]}"
    common = ["--url", url, "--queue", queue, "--timeout", str(max(args.cap - 10, 5))]
    if scenario == "latency":
        return run_latency(system, common, args.cap, args.quick)
    common += ["--jobs", str(args.jobs)]
    if scenario not in PROCESSING:
        return run_driver(system, [*common, "--scenario", scenario], args.cap)
    filled = run_driver(system, [*common, "--scenario", "fill"], args.cap)
    if filled.status != "ok":
        filled.detail = f"filling the queue: {filled.detail}"
        return filled
    concurrency = scenario.removeprefix("process_c")
    before = server.cpu_seconds()
    outcome = run_driver(system, [*common, "--scenario", "work", "--concurrency", concurrency], args.cap)
    outcome.report["server_cpu_seconds"] = round(server.cpu_seconds() - before, 4)
    return outcome


def entry(outcome: Outcome, load: float) -> dict[str, Any]:
    """What the JSON keeps of one scenario of one system: rates, and costs per completed job."""
    rate = outcome.jobs_per_sec
    report = outcome.report
    found: dict[str, Any] = {
        "status": outcome.status, "jobs_per_sec": None if rate is None else round(rate, 1),
        "seconds": report.get("seconds"), "completed": report.get("completed"),
        "detail": outcome.detail, "load_average_1min": round(load, 2),
    }
    done = report.get("completed") or 0
    per_job = {"cpu_seconds": "worker_cpu_us_per_job", "server_cpu_seconds": "server_cpu_us_per_job"}
    for key, name in per_job.items():
        if key in report and done:
            found[name] = round(report[key] / done * 1e6, 1)
    for key in ("rss_mb", "rss_mb_idle", "p50_ms", "p90_ms", "p99_ms", "max_ms", "stamped", "max_lag_ms"):
        if key in report:
            found[key] = report[key]
    return found


def run_all(args: argparse.Namespace, url: str, cpus: dict[str, Any]) -> dict[str, Any]:
    server = Resp(url)
    meta: dict[str, Any] = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "valkey_version": server.info_field("server", "valkey_version") or server.info_field("server", "redis_version"),
        "jobs": args.jobs, "cap_seconds": args.cap, "python": platform.python_version(),
        "platform": platform.platform(), "cpu_count": os.cpu_count(), "cpu_placement": cpus,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "git_revision": git_revision(), "loop": args.loop,
    }
    results: dict[str, dict[str, dict[str, Any]]] = {}
    versions: dict[str, dict[str, str]] = {}
    for system in args.systems:
        results[system] = {}
        try:
            ensure(system)
        except Exception as exc:  # noqa: BLE001 - a peer that cannot be installed is reported, not fatal
            for scenario in args.scenarios:
                results[system][scenario] = {"status": "failed", "detail": f"setup: {exc}"}
            continue
        for scenario in args.scenarios:
            server.call("FLUSHALL")
            load = os.getloadavg()[0]
            print(f"{system:10} {scenario:15} load {load:4.2f} ...", end=" ", file=sys.stderr, flush=True)
            outcome = run_scenario(system, scenario, url, args, server)
            rate = outcome.jobs_per_sec
            shown = f"p50 {outcome.report['p50_ms']} ms" if "p50_ms" in outcome.report else (
                f"{rate:,.0f} jobs/s" if rate else "")
            print(shown if outcome.status == "ok" else f"{shown} {outcome.status} {outcome.detail}", file=sys.stderr)
            versions.setdefault(system, outcome.report.get("versions", {}))
            results[system][scenario] = entry(outcome, load)
    server.call("FLUSHALL")
    server.close()
    meta["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    meta["versions"] = versions
    return {"meta": meta, "results": results}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with EmbeddedValkey() as valkey:
        data = run_all(args, valkey.url, pin(valkey.pid, args.pin))
    rated = [s for s in args.scenarios if s != "latency"]
    print(speed_table(data["results"], rated))
    print()
    print(ratio_table(data["results"], rated))
    print()
    print(cost_table(data["results"]))
    meta = data["meta"]
    print(f"\nload average {meta['load_average_before']} -> {meta['load_average_after']}, "
          f"Valkey {meta['valkey_version']}, {args.jobs} jobs per scenario")
    write_json(args.output, data)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
