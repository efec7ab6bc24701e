"""Argument checks shared by every component; each raises InvalidArgumentError."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from .errors import InvalidArgumentError

MAX_NAME_LENGTH = 256
MAX_PRIORITY = 2**21
DEFAULT_MAX_PAYLOAD = 1024 * 1024
FORBIDDEN_IN_KEYS = "{}:"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def name(value: Any, what: str = "name") -> str:
    """A non-empty str of at most 256 characters without control characters."""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(value).__name__}")
    if not value:
        raise InvalidArgumentError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidArgumentError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _has_control(value):
        raise InvalidArgumentError(f"{what} must not contain control characters")
    return value


def key_part(value: Any, what: str) -> str:
    """A name that becomes part of a key: also without ``{``, ``}`` or ``:``."""
    name(value, what)
    if any(ch in value for ch in FORBIDDEN_IN_KEYS):
        raise InvalidArgumentError(f"{what} must not contain '{{', '}}' or ':'")
    return str(value)


def queue_name(value: Any) -> str:
    """A valid queue name."""
    return key_part(value, "queue name")


def job_id(value: Any) -> str:
    """A valid custom job id (not made only of digits: those are reserved for auto ids)."""
    key_part(value, "job_id")
    if value.isdigit():
        raise InvalidArgumentError("a custom job_id must not be made only of digits")
    return str(value)


def prefix(value: Any) -> str:
    """A valid key prefix."""
    name(value, "prefix")
    if "{" in value or "}" in value:
        raise InvalidArgumentError("prefix must not contain '{' or '}'")
    return str(value)


def seconds(value: Any, what: str, *, positive: bool = False) -> float:
    """A duration in seconds (number or timedelta): >= 0, or > 0 when ``positive``."""
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentError(f"{what} must be a number of seconds or a timedelta")
    if math.isnan(value) or math.isinf(value):
        raise InvalidArgumentError(f"{what} must be finite")
    if value < 0 or (positive and value == 0):
        raise InvalidArgumentError(f"{what} must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def integer(value: Any, what: str, *, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidArgumentError(f"{what} must be {bound}, got {value}")
    return value


def retention(value: Any, what: str) -> int:
    """remove_on_complete/remove_on_fail as the server reads it: -1 keep all, else keep N newest."""
    if value is False:
        return -1
    if value is True:
        return 0
    return integer(value, what, minimum=0)


def state(value: Any, allowed: tuple[str, ...]) -> str:
    """One of the allowed state names."""
    if value not in allowed:
        raise InvalidArgumentError(f"unknown state {value!r}: expected one of {', '.join(allowed)}")
    return str(value)


def payload(encoded: bytes, limit: int, what: str) -> bytes:
    """Encoded data within the size limit."""
    if len(encoded) > limit:
        raise InvalidArgumentError(f"{what} is {len(encoded)} bytes encoded, over the {limit}-byte limit")
    return encoded
