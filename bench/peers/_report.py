"""Tables (markdown) and JSON of a peers run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Results = dict[str, dict[str, dict[str, Any]]]
SHORT = {"unsupported": "n/a", "timeout": "timeout", "failed": "failed", "incomplete": "incomplete"}


def _cell(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    if entry["status"] == "ok":
        return f"{entry['jobs_per_sec']:,.0f}"
    if entry["status"] == "incomplete" and entry.get("jobs_per_sec") is not None:
        return f"{entry['jobs_per_sec']:,.0f} (incomplete: {entry['completed']:,} done)"
    return SHORT.get(entry["status"], str(entry["status"]))


def _ok_rate(entry: dict[str, Any] | None) -> float | None:
    return entry["jobs_per_sec"] if entry and entry["status"] == "ok" else None


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def speed_table(results: Results, scenarios: list[str]) -> str:
    """Jobs per second: one row per system, one column per scenario."""
    rows = [[system, *(_cell(per.get(s)) for s in scenarios)] for system, per in results.items()]
    return "jobs/s\n\n" + _table(["system", *scenarios], rows)


def ratio_table(results: Results, scenarios: list[str]) -> str:
    """glidemq's jobs/s divided by each peer's, scenario by scenario."""
    ours = results.get("glidemq", {})
    rows = []
    for system, per in results.items():
        if system == "glidemq":
            continue
        row = [system]
        for scenario in scenarios:
            mine, theirs = _ok_rate(ours.get(scenario)), _ok_rate(per.get(scenario))
            row.append(f"{mine / theirs:.2f}x" if mine and theirs else "-")
        rows.append(row)
    return "glidemq / peer\n\n" + _table(["peer", *scenarios], rows)


def _figure(entry: dict[str, Any] | None, key: str) -> str:
    if entry is None:
        return ""
    if entry["status"] != "ok" and key not in entry:
        return SHORT.get(entry["status"], str(entry["status"]))
    value = entry.get(key)
    if value is None:
        return "-"
    shown = f"{value:,.1f}" if isinstance(value, float) and value >= 10 else f"{value:,.2f}"
    return shown + ("" if entry["status"] == "ok" else f" ({entry['status']})")


def cost_table(results: Results) -> str:
    """Per system: pickup latency at 500 jobs/s, server and worker CPU per job and worker RSS at
    the highest concurrency run, and worker RSS idle (the latency worker before its first job)."""
    header = ["system", "pickup p50 ms", "pickup p99 ms"]
    processing = [s for s in ("process_c50", "process_c10", "process_c1") if any(s in per for per in results.values())]
    busiest = processing[0] if processing else None
    if busiest:
        header += [f"server µs/job ({busiest})", f"worker µs/job ({busiest})", f"worker RSS MB ({busiest})"]
    header.append("worker RSS MB idle")
    rows = []
    for system, per in results.items():
        latency = per.get("latency")
        row = [system, _figure(latency, "p50_ms"), _figure(latency, "p99_ms")]
        if busiest:
            work = per.get(busiest)
            row += [_figure(work, key) for key in ("server_cpu_us_per_job", "worker_cpu_us_per_job", "rss_mb")]
        row.append(_figure(latency, "rss_mb_idle"))
        rows.append(row)
    return "latency and cost\n\n" + _table(header, rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
