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


cdef inline bytes _num(object n):
    return str(n).encode()


def encode_add_batch(list jobs):
    """Flattens add arguments: one 11-field group per job, prefixed by the job count."""
    cdef list out = [_num(len(jobs))]
    cdef tuple job
    for job in jobs:
        out.append((<str>job[0]).encode())
        out.append((<str>job[1]).encode())
        out.append(job[2])
        out.append(_num(job[3]))
        out.append(_num(job[4]))
        out.append(_num(job[5]))
        out.append((<str>job[6]).encode())
        out.append(_num(job[7]))
        out.append(b"1" if job[8] else b"0")
        out.append(_num(job[9]))
        out.append(_num(job[10]))
    return out


def decode_active(list flat):
    """Decodes job records returned by ``take``: 13 fields per job."""
    cdef list out = []
    cdef Py_ssize_t i, n = len(flat)
    for i in range(0, n, 13):
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
    """Flattens finished jobs for ``take``: (id, token, kind, payload, extra, retry_ms)."""
    cdef list out = []
    cdef tuple e
    for e in entries:
        out.append((<str>e[0]).encode())
        out.append((<str>e[1]).encode())
        out.append((<str>e[2]).encode())
        out.append(e[3])
        out.append(e[4])
        out.append(_num(e[5]))
    return out
