"""A ``glidemq.sync.Worker`` object that the command-line tests run with ``glidemq worker sync_cli_app:worker``."""

from __future__ import annotations

import os
from typing import Any

from glidemq.sync import Worker


def double(job: Any) -> Any:
    """Twice the job's data."""
    return job.data * 2


# its queue comes from the environment, its connection from --url (GLIDEMQ_URL)
worker = Worker(os.environ.get("SYNC_CLI_QUEUE", "sync-cli-test"), double, processes=2)
