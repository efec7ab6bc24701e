"""Cron expressions and time zones of job schedulers (cronsim and zoneinfo)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from .errors import InvalidArgumentError


def zone(tz: str | None) -> ZoneInfo | timezone:
    """The time zone named ``tz`` (IANA name), UTC for None."""
    if tz is None:
        return timezone.utc
    if not isinstance(tz, str) or not tz:
        raise InvalidArgumentError("tz must be a non-empty IANA time zone name")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InvalidArgumentError(f"unknown time zone {tz!r}") from exc


def check_cron(expr: Any, tz: str | None) -> str:
    """A cron expression of 5 fields that fires at least once more."""
    if not isinstance(expr, str) or len(expr.split()) != 5:
        raise InvalidArgumentError(f"cron must be a str of 5 fields (minute hour day month weekday), got {expr!r}")
    if next_slot(expr, tz, int(time.time() * 1000)) is None:
        raise InvalidArgumentError(f"cron {expr!r} never fires")
    return expr


def next_slot(expr: str, tz: str | None, after_ms: int) -> int | None:
    """The first time (epoch ms) strictly after ``after_ms`` that ``expr`` matches in ``tz``."""
    after = datetime.fromtimestamp(after_ms / 1000, tz=zone(tz))
    try:
        fire = next(CronSim(expr, after))
    except CronSimError as exc:
        raise InvalidArgumentError(f"bad cron expression {expr!r}: {exc}") from exc
    except StopIteration:
        return None
    return round(fire.timestamp() * 1000)
