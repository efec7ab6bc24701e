# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled codec: the same functions as ``glidemq._pure``, byte for byte.

Every index below is checked against the length first (bounds checks are off), and every
cast is guarded, so malformed input raises the same exception as the pure twin.
"""

import msgpack

from glidemq.errors import SerializationError

cdef object _packb = msgpack.packb
cdef object _unpackb = msgpack.unpackb
cdef int MAX_DEPTH = 256
cdef Py_ssize_t _ADD_FIELDS = 12
cdef tuple _DEFAULT_OPTIONS = (0, 0, 1, "", 0, False, -1, -1)
DEFAULT_OPTIONS = _DEFAULT_OPTIONS
cdef Py_ssize_t _ACTIVE_FIELDS = 16
ADD_FIELDS = _ADD_FIELDS
ACTIVE_FIELDS = _ACTIVE_FIELDS


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


cdef inline tuple _check_row(object row, Py_ssize_t size):
    if not isinstance(row, tuple):
        raise TypeError(f"expected a tuple of {size} fields, got {type(row).__name__}")
    if len(<tuple>row) != size:
        raise ValueError(f"expected a tuple of {size} fields, got {len(<tuple>row)}")
    return <tuple>row


cdef inline Py_ssize_t _check_flat(object flat, Py_ssize_t group, str what) except -1:
    if not isinstance(flat, list):
        raise TypeError(f"{what} must be a list, got {type(flat).__name__}")
    cdef Py_ssize_t n = len(<list>flat)
    if n % group:
        raise ValueError(f"{what} must come in groups of {group} items, got {n}")
    return n


cdef inline str _decode(object value):
    if type(value) is bytes:
        return (<bytes>value).decode()
    return bytes.decode(value)  # the pure twin's TypeError for anything that is not bytes


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


def encode_add_batch(object jobs):
    """Packs the arguments of ``add`` into one msgpack blob (one argument on the wire)."""
    cdef list rows = []
    cdef tuple job
    for item in jobs:
        job = _check_row(item, _ADD_FIELDS)
        if job[3:11] == _DEFAULT_OPTIONS and not job[11]:
            rows.append([job[0], job[1], job[2]])
            continue
        rows.append([job[0], job[1], job[2], str(job[3]), str(job[4]), str(job[5]), job[6], str(job[7]),
                     "1" if job[8] else "0", str(job[9]), str(job[10]), job[11]])
    return _packb(rows, use_bin_type=False)


def decode_active(object blob, object now_ms):
    """Decodes the jobs ``take`` activated: [token, id, fields, id, fields, ...] (16 values
    per job, see the pure twin)."""
    if not blob:
        return []
    flat = _unpackb(blob, raw=True)
    if not isinstance(flat, list):
        raise TypeError(f"job records must be a list, got {type(flat).__name__}")
    cdef list records = <list>flat
    cdef Py_ssize_t i, k, m, n = len(records)
    if n % 2 == 0:
        raise ValueError(f"job records must be a token, then ids and fields, got {n} items")
    token = _decode(records[0])
    cdef list out = []
    cdef list pairs
    cdef dict fields
    for i in range(1, n, 2):
        m = _check_flat(records[i + 1], 2, "job fields")
        pairs = <list>records[i + 1]
        fields = {}
        for k in range(0, m, 2):
            fields[pairs[k]] = pairs[k + 1]
        out.append(
            (
                _decode(records[i]),
                token,
                now_ms,
                _decode(fields.get(b"n", b"")),
                unpack(fields.get(b"d")),
                int(fields.get(b"ts", 0)),
                int(fields.get(b"at", 1)),
                int(fields.get(b"am", 0)),
                int(fields.get(b"p", 0)),
                int(fields.get(b"dl", 0)),
                _decode(fields.get(b"bo", b"")),
                int(fields.get(b"to") or 0),
                unpack(fields.get(b"pg")),
                int(fields.get(b"rc", -1)),
                int(fields.get(b"rf", -1)),
                fields.get(b"tc"),
            )
        )
    return out


def hash_to_dict(object flat):
    """Turns a flat HGETALL reply into a dict of str field names to raw values."""
    cdef Py_ssize_t i, n = _check_flat(flat, 2, "a hash reply")
    cdef list items = <list>flat
    cdef dict out = {}
    for i in range(0, n, 2):
        out[_decode(items[i])] = items[i + 1]
    return out


def encode_finished(object entries):
    """Packs finished jobs for ``take``: (id, token, kind, payload, attempts_made, keep) for a
    completion, followed by (extra, retry_ms, priority) for a failure or a release."""
    if not entries:
        return b""
    return _packb([list(e) for e in entries], use_bin_type=False)
