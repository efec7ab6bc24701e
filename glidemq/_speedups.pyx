# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled codec: the same functions as ``glidemq._pure``, byte for byte."""

import msgpack

from glidemq.errors import SerializationError

cdef object _packb = msgpack.packb
cdef object _unpackb = msgpack.unpackb
cdef int MAX_DEPTH = 256


cdef void _check(object value, int depth) except *:
    cdef type t = type(value)
    if t is str or t is int or t is float or t is bool or t is bytes or value is None:
        return
    if isinstance(value, (str, int, float, bytes)):
        return
    if depth > MAX_DEPTH:
        raise SerializationError("data is nested too deeply")
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in (<dict>value).items():
            if not isinstance(key, str):
                raise SerializationError(f"dict keys must be str, got {type(key).__name__}")
            _check(item, depth + 1)
    else:
        raise SerializationError(f"cannot serialize {type(value).__name__}")


def pack(object value):
    """Encodes a msgpack-able value; raises SerializationError for anything else."""
    _check(value, 0)
    try:
        return _packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SerializationError(str(exc)) from exc


cpdef object unpack(object data):
    """Decodes what ``pack`` wrote; empty or missing data is None."""
    if not data:
        return None
    return _unpackb(data, raw=False, strict_map_key=False)


def encode_add_batch(list jobs):
    """Packs the arguments of ``add`` into one msgpack blob (one argument on the wire)."""
    cdef list rows = []
    cdef tuple job
    for job in jobs:
        rows.append([job[0], job[1], job[2], str(job[3]), str(job[4]), str(job[5]), job[6], str(job[7]),
                     "1" if job[8] else "0", str(job[9]), str(job[10])])
    return _packb(rows, use_bin_type=False)


def decode_active(bytes blob):
    """Decodes the job records ``take`` returns (a msgpack array, 15 fields per job)."""
    if not blob:
        return []
    cdef list flat = _unpackb(blob, raw=True)
    cdef list out = []
    cdef Py_ssize_t i, n = len(flat)
    for i in range(0, n, 15):
        out.append(
            (
                (<bytes>flat[i]).decode(),
                (<bytes>flat[i + 1]).decode(),
                int(flat[i + 2]),
                (<bytes>flat[i + 3]).decode(),
                unpack(flat[i + 4]),
                int(flat[i + 5]),
                int(flat[i + 6]),
                int(flat[i + 7]),
                int(flat[i + 8]),
                int(flat[i + 9]),
                (<bytes>flat[i + 10]).decode(),
                int(flat[i + 11] or 0),
                unpack(flat[i + 12]),
                int(flat[i + 13]),
                int(flat[i + 14]),
            )
        )
    return out


def hash_to_dict(list flat):
    """Turns a flat HGETALL reply into a dict of str field names to raw values."""
    cdef dict out = {}
    cdef Py_ssize_t i, n = len(flat)
    for i in range(0, n, 2):
        out[(<bytes>flat[i]).decode()] = flat[i + 1]
    return out


def encode_finished(list entries):
    """Packs finished jobs for ``take``: (id, token, kind, payload, extra, retry_ms,
    attempts_made, keep, priority) each."""
    if not entries:
        return b""
    return _packb([list(e) for e in entries], use_bin_type=False)
