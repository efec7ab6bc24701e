"""glidemq: a fast, reliable job queue for Python on Valkey."""

import importlib
from typing import Any

from ._codec import USE_EXTENSIONS
from .connection import Connection
from .durability import Achieved, Durability, DurabilityError
from .errors import (
    ConnectionFailedError,
    GlideMQError,
    InvalidArgumentError,
    JobFailedError,
    RateLimitError,
    SerializationError,
    ServerError,
    UnrecoverableError,
)
from .events import QueueEvent, QueueEvents
from .flow import FlowJob, FlowProducer, JobNode
from .health import Health, NodeHealth, health
from .job import Job
from .options import Backoff, Dedup, RateLimit
from .queue import Queue
from .registry import WorkerInfo
from .schedulers import SchedulerInfo
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "USE_EXTENSIONS",
    "Achieved",
    "Backoff",
    "Connection",
    "ConnectionFailedError",
    "Durability",
    "Dedup",
    "DurabilityError",
    "FlowJob",
    "FlowProducer",
    "GlideMQError",
    "Health",
    "InvalidArgumentError",
    "Job",
    "JobFailedError",
    "JobNode",
    "NodeHealth",
    "Queue",
    "QueueEvent",
    "QueueEvents",
    "RateLimit",
    "RateLimitError",
    "SchedulerInfo",
    "SerializationError",
    "ServerError",
    "UnrecoverableError",
    "Worker",
    "WorkerInfo",
    "__version__",
    "health",
]


def __getattr__(name: str) -> Any:
    if name == "dashboard":  # needs the optional "dashboard" extra: imported on first use
        return importlib.import_module(".dashboard", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
