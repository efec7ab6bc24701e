"""Job options: backoff strategies and the encoding of one add."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from . import _validate as check
from ._codec import pack
from .errors import InvalidArgumentError


@dataclass(frozen=True)
class Backoff:
    """How long to wait before retrying a failed job.

    ``Backoff.fixed(s)`` waits s seconds each time; ``Backoff.exponential(s, jitter)`` waits
    s·2^(n-1) seconds before retry n, shortened by up to ``jitter`` (0..1) at random.
    """

    kind: str
    delay: float
    jitter: float = 0.0

    @classmethod
    def fixed(cls, seconds: float | timedelta) -> Backoff:
        """The same delay before every retry."""
        return cls("fixed", check.seconds(seconds, "backoff"))

    @classmethod
    def exponential(cls, seconds: float | timedelta, jitter: float = 0.0) -> Backoff:
        """delay·2^(n-1) before retry n, with optional jitter in [0, 1]."""
        if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
            raise InvalidArgumentError("jitter must be a number in [0, 1]")
        return cls("exponential", check.seconds(seconds, "backoff"), float(jitter))

    def encode(self) -> str:
        """The compact form stored with the job."""
        ms = round(self.delay * 1000)
        return f"f:{ms}" if self.kind == "fixed" else f"e:{ms}:{self.jitter}"


@dataclass(frozen=True)
class Dedup:
    """Deduplication of adds by a key of your choice (``Queue.add(..., deduplication=Dedup(...))``).

    Without ``ttl`` an add with the same ``id`` is skipped while the first job has not
    finished; with ``ttl`` (seconds) it is skipped for that long, finished or not.
    ``extend`` restarts the ttl on every skipped add (throttle to the last call);
    ``replace`` gives a still-delayed job the new data and delay (debounce). A skipped add
    returns the existing job.
    """

    id: str
    ttl: float | timedelta | None = None
    extend: bool = False
    replace: bool = False

    def __post_init__(self) -> None:
        check.name(self.id, "deduplication id")
        if self.ttl is not None:
            check.seconds(self.ttl, "deduplication ttl", positive=True)
        for flag in ("extend", "replace"):
            if not isinstance(getattr(self, flag), bool):
                raise InvalidArgumentError(f"deduplication {flag} must be a bool")
        if self.extend and self.ttl is None:
            raise InvalidArgumentError("deduplication extend needs a ttl")

    def extras(self) -> dict[str, str]:
        """The fields the ``add`` function reads."""
        out = {"di": self.id}
        if self.ttl is not None:
            out["dt"] = str(max(1, round(check.seconds(self.ttl, "deduplication ttl", positive=True) * 1000)))
        if self.extend:
            out["dx"] = "1"
        if self.replace:
            out["dr"] = "1"
        return out


@dataclass(frozen=True)
class RateLimit:
    """At most ``max`` jobs started per ``duration`` seconds, across all workers of a queue."""

    max: int
    duration: float | timedelta

    def __post_init__(self) -> None:
        check.integer(self.max, "rate limit max", minimum=1)
        check.seconds(self.duration, "rate limit duration", positive=True)

    @property
    def duration_ms(self) -> int:
        """The window in milliseconds (at least 1)."""
        return max(1, round(check.seconds(self.duration, "rate limit duration", positive=True) * 1000))


def backoff_spec(value: Backoff | float | timedelta | None) -> str:
    """Validates a backoff option and gives its stored form ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, Backoff):
        return value.encode()
    return Backoff.fixed(value).encode()


def retry_delay_ms(spec: str, attempts_made: int) -> int:
    """The delay before the next try, after ``attempts_made`` tries failed."""
    if not spec:
        return 0
    parts = spec.split(":")
    base = int(parts[1])
    if parts[0] == "f":
        return base
    delay: float = base << max(attempts_made - 1, 0)
    jitter = float(parts[2])
    if jitter:
        delay = delay * (1 - jitter * random.random())
    return round(delay)


JOB_OPTIONS = frozenset(
    {
        "job_id", "delay", "priority", "attempts", "backoff", "timeout", "lifo", "remove_on_complete",
        "remove_on_fail", "deduplication",
    }
)


# Every job option at its default: a job whose options all are (the common case) skips
# their checks. A value equal to a default but of another type (0.0, 0 for False) takes
# the full path, which tells them apart.
DEFAULT_OPTIONS: dict[str, Any] = {
    "job_id": None, "delay": 0, "priority": 0, "attempts": 1, "backoff": None, "timeout": None, "lifo": False,
    "remove_on_complete": False, "remove_on_fail": False, "deduplication": None,
}
_NO_DEFAULT = object()


def encode_item(item: Any, max_payload: int) -> tuple[Any, ...]:
    """Validates and encodes one item of add_bulk: (name, data) or (name, data, options)."""
    if not isinstance(item, tuple) or len(item) not in (2, 3):
        raise InvalidArgumentError("add_bulk takes (name, data) or (name, data, options) tuples")
    options = item[2] if len(item) == 3 else {}
    if not isinstance(options, Mapping):
        raise InvalidArgumentError("job options must be a mapping")
    return encode_job(item[0], item[1], options, max_payload)


def encode_job(name: str, data: Any, options: Mapping[str, Any], max_payload: int) -> tuple[Any, ...]:
    """Validates one job and encodes it for the ``add`` function (see encode_add_batch)."""
    for key, value in options.items():
        default = DEFAULT_OPTIONS.get(key, _NO_DEFAULT)
        if value is not default and (type(value) is not type(default) or value != default):
            return _encode_job_with_options(name, data, options, max_payload)
    check.name(name, "job name")
    encoded = check.payload(pack(data), max_payload, "job data")
    return ("", name, encoded, 0, 0, 1, "", 0, False, -1, -1, {})


def _encode_job_with_options(name: str, data: Any, options: Mapping[str, Any], max_payload: int) -> tuple[Any, ...]:
    unknown = set(options) - JOB_OPTIONS
    if unknown:
        raise InvalidArgumentError(f"unknown job option(s): {', '.join(sorted(unknown))}")
    check.name(name, "job name")
    job_id = options.get("job_id")
    job_id = "" if job_id is None else check.job_id(job_id)
    delay = check.seconds(options.get("delay", 0), "delay")
    priority = check.integer(options.get("priority", 0), "priority", minimum=0, maximum=check.MAX_PRIORITY)
    attempts = check.integer(options.get("attempts", 1), "attempts", minimum=1)
    backoff = backoff_spec(options.get("backoff"))
    timeout = options.get("timeout")
    timeout_ms = 0 if timeout is None else max(1, round(check.seconds(timeout, "timeout", positive=True) * 1000))
    lifo = options.get("lifo", False)
    if not isinstance(lifo, bool):
        raise InvalidArgumentError("lifo must be a bool")
    rc = check.retention(options.get("remove_on_complete", False), "remove_on_complete")
    rf = check.retention(options.get("remove_on_fail", False), "remove_on_fail")
    dedup = options.get("deduplication")
    if dedup is not None and not isinstance(dedup, Dedup):
        raise InvalidArgumentError("deduplication must be a glidemq.Dedup")
    extras = dedup.extras() if dedup is not None else {}
    encoded = check.payload(pack(data), max_payload, "job data")
    return (job_id, name, encoded, round(delay * 1000), priority, attempts, backoff, timeout_ms, lifo, rc, rf, extras)
