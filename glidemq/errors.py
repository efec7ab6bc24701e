"""The exceptions glidemq raises."""

from __future__ import annotations


class GlideMQError(Exception):
    """Base class of every glidemq error."""


class InvalidArgumentError(GlideMQError, ValueError):
    """A value given to glidemq is out of range or malformed; nothing was written."""


class SerializationError(GlideMQError, TypeError):
    """Data that the serializer cannot encode (or decode); nothing was written."""


class JobFailedError(GlideMQError):
    """The job ended in the failed state."""

    def __init__(self, job_id: str, failed_reason: str | None) -> None:
        super().__init__(f"job {job_id} failed: {failed_reason}")
        self.job_id = job_id
        self.failed_reason = failed_reason


class UnrecoverableError(GlideMQError):
    """Raised by a processor to fail the job at once, skipping remaining attempts."""


class ConnectionFailedError(GlideMQError):
    """The server could not be reached within the request timeout."""


class ServerError(GlideMQError):
    """The server refused a command (out of memory, permissions, ...)."""


class RateLimitError(GlideMQError):
    """Raised by a processor to put its job back for ``delay`` seconds without using an attempt.

    The job is neither failed nor retried: no ``failed`` event, no failed reason.
    """

    def __init__(self, delay: float = 0.0) -> None:
        from ._validate import seconds  # the validators import this module

        self.delay = seconds(delay, "rate limit delay")
        super().__init__(f"rate limited; retry in {self.delay:g}s")
