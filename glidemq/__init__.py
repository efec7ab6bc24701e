"""glidemq: a fast, reliable job queue for Python on Valkey."""

from ._codec import USE_EXTENSIONS
from .connection import Connection
from .durability import Achieved, Durability, DurabilityError
from .errors import (
    ConnectionFailedError,
    GlideMQError,
    InvalidArgumentError,
    JobFailedError,
    SerializationError,
    ServerError,
    UnrecoverableError,
)
from .events import QueueEvent, QueueEvents
from .health import Health, NodeHealth, health
from .job import Job
from .options import Backoff
from .queue import Queue
from .registry import WorkerInfo
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "USE_EXTENSIONS",
    "Achieved",
    "Backoff",
    "Connection",
    "ConnectionFailedError",
    "Durability",
    "DurabilityError",
    "GlideMQError",
    "Health",
    "InvalidArgumentError",
    "Job",
    "JobFailedError",
    "NodeHealth",
    "Queue",
    "QueueEvent",
    "QueueEvents",
    "SerializationError",
    "ServerError",
    "UnrecoverableError",
    "Worker",
    "WorkerInfo",
    "__version__",
    "health",
]
