"""glidemq: a fast, reliable job queue for Python on Valkey."""

from ._codec import USE_EXTENSIONS
from .connection import Connection
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
from .job import Job
from .options import Backoff
from .queue import Queue
from .worker import Worker

__version__ = "0.1.0"

__all__ = [
    "USE_EXTENSIONS",
    "Backoff",
    "Connection",
    "ConnectionFailedError",
    "GlideMQError",
    "InvalidArgumentError",
    "Job",
    "JobFailedError",
    "Queue",
    "QueueEvent",
    "QueueEvents",
    "SerializationError",
    "ServerError",
    "UnrecoverableError",
    "Worker",
    "__version__",
]
