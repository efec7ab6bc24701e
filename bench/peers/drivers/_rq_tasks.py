"""The RQ benchmark's job function: RQ workers import jobs by dotted path, never from ``__main__``.

RQ's worker pool runs jobs in child processes, so a pickup latency (a float argument: the
add's ``time.time()``) is appended to the file named by ``PEERS_LATENCY_FILE``, which the
driver reads back.
"""

import os
import time
from typing import Any

LATENCY_FILE = "PEERS_LATENCY_FILE"


def noop(i: Any) -> None:
    if isinstance(i, float) and LATENCY_FILE in os.environ:
        latency = time.time() - i
        with open(os.environ[LATENCY_FILE], "a") as out:
            out.write(f"{latency!r}\n")
