"""The benchmark runs end to end in quick mode and writes every figure (no timing checks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"
SCENARIOS = ("add_sequential", "add_concurrent", "add_bulk", "process_c1", "process_c10", "process_c50", "latency")
COMMON_KEYS = ("jobs", "seconds", "jobs_per_sec", "server_commands_per_job", "server_fcalls_per_job",
               "server_cpu_us_per_job", "server_calls", "problems")


def run_quick(script: Path, url: str, output: Path) -> subprocess.CompletedProcess[str]:
    """Runs a bench script with ``--quick`` against the test server; asserts it exited 0."""
    done = subprocess.run(
        [sys.executable, str(script), "--quick", "--url", url, "--output", str(output)],
        capture_output=True, text=True, timeout=110, check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


def test_quick_bench_writes_json(url: str, tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    done = run_quick(BENCH, url, output)
    assert "jobs/s" in done.stdout

    report = json.loads(output.read_text())
    assert report["ok"] is True
    assert report["errors"] == []
    assert report["meta"]["quick"] is True
    assert report["meta"]["worker_prefetch"] == "auto"
    results = report["results"]
    assert set(SCENARIOS) <= set(results)
    for name in SCENARIOS:
        for key in COMMON_KEYS:
            assert key in results[name], (name, key)
    for name in ("add_sequential", "add_concurrent", "add_bulk"):
        assert "producer_cpu_us_per_job" in results[name]
    for name in ("process_c1", "process_c10", "process_c50", "latency"):
        assert "worker_cpu_us_per_job" in results[name]
    for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "server_clock_p50_ms", "server_clock_p99_ms"):
        assert key in results["latency"], key


PEERS = BENCH.parent / "peers" / "run.py"


def test_peers_harness_runs_glidemq_through_every_scenario(tmp_path: Path) -> None:
    """The side-by-side harness (its own embedded server), glidemq only: every scenario
    finishes, and processing and latency carry their costs per job and RSS."""
    output = tmp_path / "peers.json"
    done = subprocess.run(
        [sys.executable, str(PEERS), "--quick", "--jobs", "200", "--systems", "glidemq", "--no-pin",
         "--output", str(output)],
        capture_output=True, text=True, timeout=170, check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "latency and cost" in done.stdout
    results = json.loads(output.read_text())["results"]["glidemq"]
    assert set(results) == set(SCENARIOS)
    for name, entry in results.items():
        assert entry["status"] == "ok", (name, entry)
    for name in ("process_c1", "process_c10", "process_c50"):
        assert results[name]["completed"] == 200
        for key in ("server_cpu_us_per_job", "worker_cpu_us_per_job", "rss_mb"):
            assert results[name][key] > 0, (name, key)
    latency = results["latency"]
    assert latency["completed"] == latency["stamped"] == 500  # 1 s at 500 adds per second
    assert 0 < latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["rss_mb_idle"] > 0


def test_pickup_floor_measures_every_setup() -> None:
    """bench/pickup_floor.py (its own embedded server), one short round: a row per setup."""
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("pickup_floor.py")), "--seconds", "0.2", "--rounds", "1", "--no-pin"],
        capture_output=True, text=True, timeout=110, check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    for setup in ("LPUSH (raw) -> BLPOP (raw)", "LPUSH (glide) -> BLPOP (raw)", "LPUSH (raw) -> BLPOP (glide)",
                  "LPUSH (glide) -> BLPOP (glide)", "glidemq: Queue.add -> Worker"):
        row = next(line for line in done.stdout.splitlines() if line.startswith(f"| {setup}"))
        p50, p90, p99 = (float(cell) for cell in row.split("|")[2:5])
        assert 0 < p50 <= p90 <= p99, row


def test_feature_bench_runs_every_variant(url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH.with_name("features.py")), "--jobs", "200", "--rounds", "1", "--url", url],
        capture_output=True, text=True, timeout=110, check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    for label in ("no options", "priorities", "delayed", "flows", "deduplication", "rate limit", "global concurrency",
                  "dead-letter", "prefetch=0"):
        assert label in done.stdout, label


MEMORY_SUMMARY_KEYS = ("idle_rss_mb", "warm_rss_mb", "end_rss_mb", "idle_after_rss_mb", "growth_warm_to_end_mb",
                       "rss_slope_mb_per_100k_jobs", "server_used_mb_end", "jobs_per_sec")


def test_memory_bench_quick(url: str, tmp_path: Path) -> None:
    output = tmp_path / "memory.json"
    done = run_quick(BENCH.with_name("memory.py"), url, output)
    assert "worker RSS" in done.stdout

    report = json.loads(output.read_text())
    assert report["ok"] is True
    assert report["problems"] == []
    assert report["meta"]["quick"] is True
    for key in MEMORY_SUMMARY_KEYS:
        assert key in report["summary"], key
    phases = [sample["phase"] for sample in report["samples"]]
    assert phases[0] == "idle_before"
    assert phases[-2:] == ["end", "idle_after"]
    assert report["samples"][-1]["completed"] == report["meta"]["jobs"]
