"""Which CPUs the benchmark's processes run on: the server on one, everything else on the rest.

Left to itself, the scheduler of a small machine moves the server, the worker's event loop and
the client library's threads between CPUs as they wake, and the same run's figures move by up to
a factor of two from one run to the next. Pinning the server to one CPU and the clients to the
others gives every run, and every system compared in one run, the same arrangement.
``--no-pin`` turns it off; the JSON records which was used.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def add_pin_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="leave CPU placement to the scheduler (default: server on one CPU, clients on the rest)")


def pin(server_pid: int | None, enabled: bool = True) -> dict[str, Any]:
    """Pins the server to the first CPU and this process (and the processes it starts from now
    on) to the others. Returns what was done, for the run's JSON."""
    cpus = sorted(os.sched_getaffinity(0))
    if not enabled or server_pid is None or len(cpus) < 2:
        reason = "turned off" if not enabled else "no local server" if server_pid is None else "one CPU"
        return {"pinned": False, "reason": reason}
    server, clients = cpus[:1], cpus[1:]
    for thread in os.listdir(f"/proc/{server_pid}/task"):  # the server's background threads too
        os.sched_setaffinity(int(thread), server)
    os.sched_setaffinity(0, clients)  # before this process starts any thread or subprocess
    return {"pinned": True, "server_cpus": server, "client_cpus": clients}
