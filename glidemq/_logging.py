"""glidemq's loggers: ``glidemq.worker``, ``glidemq.heartbeat``, ``glidemq.cli``, ... under ``glidemq``.

A library only adds a NullHandler: nothing is printed unless the application configures
logging. Records about a job carry ``job_id``, ``job_name`` and ``queue`` in ``extra``
(so on the LogRecord), records about a worker ``worker_id`` and ``queue``.
"""

from __future__ import annotations

import logging
from typing import Any

logging.getLogger("glidemq").addHandler(logging.NullHandler())


def get_logger(component: str) -> logging.Logger:
    """The logger of one part of glidemq, e.g. ``get_logger("worker")`` is ``glidemq.worker``."""
    return logging.getLogger(f"glidemq.{component}")


def job_extra(job: Any, **more: Any) -> dict[str, Any]:
    """The ``extra`` of a record about one job."""
    return {"job_id": job.id, "job_name": job.name, "queue": job.queue_name, **more}
