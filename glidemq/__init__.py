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
from .flow import FlowJob, FlowProducer, JobNode
from .health import Health, NodeHealth, health
from .job import Job
from .options import Backoff
from .queue import Queue
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
    "SerializationError",
    "ServerError",
    "UnrecoverableError",
    "Worker",
    "__version__",
    "health",
]
