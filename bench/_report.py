"""The results table and the JSON file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _scenarios import Result

COLUMNS = (
    ("scenario", 26), ("jobs", 7), ("seconds", 8), ("jobs/s", 9), ("srv cmd/job", 12),
    ("fcall/job", 10), ("srv CPU µs/job", 15), ("client CPU µs/job", 18),
)


def _row(cells: Sequence[str]) -> str:
    widths = [width for _, width in COLUMNS]
    return "  ".join([cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)])


def table(results: Sequence[Result]) -> str:
    """A plain-text table of the figures, one line per scenario, then latency and problems."""
    lines = [_row([title for title, _ in COLUMNS]), _row(["-" * width for _, width in COLUMNS])]
    for r in results:
        lines.append(_row([
            r.label, str(r.jobs), f"{r.seconds:.3f}", f"{r.jobs_per_sec:,.0f}",
            f"{r.per_job(r.server.commands):.2f}", f"{r.per_job(r.server.fcalls):.3f}",
            f"{r.per_job(r.server.cpu_seconds) * 1e6:.1f}", f"{r.per_job(r.cpu_seconds) * 1e6:.1f} ({r.cpu_owner})",
        ]))
    for r in results:
        if "p50_ms" in r.extra:
            e = r.extra
            lines.append(
                f"\npickup latency at {e['target_rate']:g} jobs/s, concurrency {e['concurrency']}, {r.jobs} jobs: "
                f"p50 {e['p50_ms']:.2f} ms, p90 {e['p90_ms']:.2f} ms, p99 {e['p99_ms']:.2f} ms, "
                f"max {e['max_ms']:.2f} ms (server clock: p50 {e.get('server_clock_p50_ms')} ms, "
                f"p99 {e.get('server_clock_p99_ms')} ms)"
            )
    problems = [f"  {r.name}: {p}" for r in results for p in r.problems]
    if problems:
        lines += ["", "problems:", *problems]
    return "\n".join(lines)


def write_json(path: Path, meta: dict[str, Any], results: Sequence[Result], errors: Sequence[str]) -> None:
    """Writes the run as JSON: ``meta``, ``results`` by scenario name, ``errors`` and ``ok``."""
    document = {
        "meta": meta,
        "results": {r.name: r.to_json() for r in results},
        "errors": list(errors),
        "ok": not errors and not any(r.problems for r in results),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
