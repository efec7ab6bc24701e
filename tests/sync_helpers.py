"""Module-level processors for the sync worker tests (the process pool pickles them by name).

``python -m sync_helpers URL QUEUE`` (from tests/) runs a sync worker over ``sleepy`` on the main thread.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from glidemq.sync import JobSnapshot, Worker


def cpu(job: JobSnapshot) -> dict[str, Any]:
    """A CPU-bound job: sums squares up to ``job.data["n"]``; reports the pid that ran it."""
    return {"sum": sum(i * i for i in range(job.data["n"])), "pid": os.getpid()}


def crash_first(job: JobSnapshot) -> str:
    """The first attempt kills its own process (``how``: "exit" or "kill"); a retry succeeds."""
    if job.attempts_made == 0:
        if job.data["how"] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)
    return "survived"


def sleepy(job: Any) -> str:
    """Sleeps ``job.data["sleep"]`` seconds."""
    time.sleep(job.data["sleep"])
    return "slept"


def sleepy_with_pid(job: JobSnapshot) -> str:
    """Writes its pid to ``job.data["pid_file"]``, then sleeps ``job.data["sleep"]`` seconds."""
    with open(job.data["pid_file"], "w") as out:
        out.write(str(os.getpid()))
    time.sleep(job.data["sleep"])
    return "slept"


def report(job: JobSnapshot) -> int:
    """Reports progress and a log line from the child; returns the child's pid."""
    job.update_progress({"done": 50})
    job.log(f"hello from {os.getpid()}")
    return os.getpid()


def snapshot_fields(job: JobSnapshot) -> dict[str, Any]:
    """What the child sees of its job."""
    return {"id": job.id, "name": job.name, "queue": job.queue_name, "data": job.data,
            "attempts": job.attempts, "attempts_made": job.attempts_made, "type": type(job).__name__}


if __name__ == "__main__":
    Worker(sys.argv[2], sleepy, connection=sys.argv[1], concurrency=2).run()
    print("run returned", flush=True)
