"""Pure-Python codec: the reference twin of ``_speedups`` (same names, same bytes).

Both twins give the same result, or raise the same exception, for every input; the
parity tests in tests/test_codec.py hold them to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import msgpack

from .errors import SerializationError

_packb = msgpack.packb
_unpackb = msgpack.unpackb
_decode = bytes.decode  # raises TypeError for anything that is not bytes, like the compiled twin
_SCALARS = (str, int, float, bool, bytes, type(None))
MAX_DEPTH = 256
ADD_FIELDS = 12  # fields per job given to encode_add_batch
# delay, priority, attempts, backoff, timeout, lifo, remove_on_complete, remove_on_fail at
# their defaults: such a job travels as (id, name, data) only
DEFAULT_OPTIONS = (0, 0, 1, "", 0, False, -1, -1)
ACTIVE_FIELDS = 16  # fields per job that decode_active gives


def _check(value: Any, depth: int) -> None:
    if isinstance(value, _SCALARS):
        return
    if depth > MAX_DEPTH:
        raise SerializationError("data is nested too deeply")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise SerializationError(f"dict keys must be str, got {type(key).__name__}")
            _check(item, depth + 1)
    else:
        raise SerializationError(f"cannot serialize {type(value).__name__}")


def _check_row(row: Any, size: int) -> None:
    if not isinstance(row, tuple):
        raise TypeError(f"expected a tuple of {size} fields, got {type(row).__name__}")
    if len(row) != size:
        raise ValueError(f"expected a tuple of {size} fields, got {len(row)}")


def _check_flat(flat: Any, group: int, what: str) -> int:
    if not isinstance(flat, list):
        raise TypeError(f"{what} must be a list, got {type(flat).__name__}")
    n = len(flat)
    if n % group:
        raise ValueError(f"{what} must come in groups of {group} items, got {n}")
    return n


def pack(value: Any) -> bytes:
    """Encodes a msgpack-able value; raises SerializationError for anything else."""
    _check(value, 0)
    try:
        packed: bytes = _packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SerializationError(str(exc)) from exc
    return packed


def unpack(data: bytes | None) -> Any:
    """Decodes what ``pack`` wrote; empty or missing data is None."""
    if not data:
        return None
    return _unpackb(data, raw=False, strict_map_key=False)


def encode_jobs(
    items: Iterable[Any], max_payload: int, encode_item: Callable[[Any, int], tuple[Any, ...]]
) -> tuple[list[tuple[Any, ...]], list[Any]]:
    """The encoded rows (see ``options.encode_item``) and the data of add_bulk's items."""
    encoded, datas = [], []
    for item in items:
        encoded.append(encode_item(item, max_payload))
        datas.append(item[1])
    return encoded, datas


def encode_add_batch(jobs: list[tuple[Any, ...]]) -> bytes:
    """Packs the arguments of ``add`` into one msgpack blob (one argument on the wire).

    Each job is (id, name, data bytes, delay_ms, priority, attempts, backoff spec,
    timeout_ms, lifo, remove_on_complete, remove_on_fail, extras); numbers travel as decimal
    strings; extras is a dict of str to str (optional features), sent as a map. A job whose
    options are all at their default and that has no extras travels as [id, name, data].
    """
    rows = []
    for job in jobs:
        _check_row(job, ADD_FIELDS)
        job_id, name, data, delay, priority, attempts, backoff, timeout, lifo, rc, rf, extras = job
        if job[3:11] == DEFAULT_OPTIONS and not extras:
            rows.append([job_id, name, data])  # the library fills in the defaults
            continue
        rows.append(
            [
                job_id,
                name,
                data,
                str(delay),
                str(priority),
                str(attempts),
                backoff,
                str(timeout),
                "1" if lifo else "0",
                str(rc),
                str(rf),
                extras,
            ]
        )
    packed: bytes = _packb(rows, use_bin_type=False)
    return packed


def decode_active(blob: bytes, now_ms: int) -> list[tuple[Any, ...]]:
    """Decodes the jobs ``take`` activated: a msgpack array [token, id, fields, id, fields, ...]
    where fields is the flat list of a job's hash (fields left at their default are absent).

    Gives (id, token, processed_on_ms, name, data, timestamp_ms, attempts, attempts_made,
    priority, delay_ms, backoff spec, timeout_ms, progress, remove_on_complete,
    remove_on_fail, trace context or None) per job; ``now_ms`` is the call's server time,
    when the jobs turned active.
    """
    if not blob:
        return []
    flat = _unpackb(blob, raw=True)
    if not isinstance(flat, list):
        raise TypeError(f"job records must be a list, got {type(flat).__name__}")
    n = len(flat)
    if n % 2 == 0:
        raise ValueError(f"job records must be a token, then ids and fields, got {n} items")
    token = _decode(flat[0])
    out = []
    for i in range(1, n, 2):
        pairs = flat[i + 1]
        _check_flat(pairs, 2, "job fields")
        fields = {pairs[k]: pairs[k + 1] for k in range(0, len(pairs), 2)}
        get = fields.get
        out.append(
            (
                _decode(flat[i]),
                token,
                now_ms,
                _decode(get(b"n", b"")),
                unpack(get(b"d")),
                int(get(b"ts", 0)),
                int(get(b"at", 1)),
                int(get(b"am", 0)),
                int(get(b"p", 0)),
                int(get(b"dl", 0)),
                _decode(get(b"bo", b"")),
                int(get(b"to") or 0),
                unpack(get(b"pg")),
                int(get(b"rc", -1)),
                int(get(b"rf", -1)),
                get(b"tc"),
            )
        )
    return out


def hash_to_dict(flat: list[bytes]) -> dict[str, bytes]:
    """Turns a flat HGETALL reply into a dict of str field names to raw values."""
    n = _check_flat(flat, 2, "a hash reply")
    return {_decode(flat[i]): flat[i + 1] for i in range(0, n, 2)}


def encode_finished(entries: list[tuple[Any, ...]]) -> bytes:
    """Packs finished jobs for ``take``: each entry (id, token, kind, payload, attempts_made,
    keep) for a completion, followed by (extra, retry_ms, priority) for a failure or a release.

    Entries in a row with the same token, keep and kind share one group: token, keep, kind,
    count, then id, attempts_made, payload (and extra, retry_ms, priority) of each, so a
    batch of completions costs the server three values per job."""
    if not entries:
        return b""
    flat: list[Any] = []
    group: tuple[Any, Any, Any] | None = None
    count_at = 0
    for entry in entries:
        if not isinstance(entry, (tuple, list)) or len(entry) < 6:
            raise TypeError(f"a finished entry must be a tuple of 6 or 9 fields, not {entry!r}")
        job_id, token, kind, payload, attempts_made, keep = entry[0], entry[1], entry[2], entry[3], entry[4], entry[5]
        if len(entry) != (6 if kind == "c" else 9):
            raise ValueError(f"a finished entry of kind {kind!r} with {len(entry)} fields")
        if (token, keep, kind) != group:
            group = (token, keep, kind)
            count_at = len(flat) + 3
            flat += (token, keep, kind, 0)
        flat[count_at] += 1
        flat += (job_id, attempts_made, payload)
        if kind != "c":
            flat += entry[6:9]
    packed: bytes = _packb(flat, use_bin_type=False)
    return packed
