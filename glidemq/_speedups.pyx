# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled codec: the same functions as ``glidemq._pure``, byte for byte.

Every index below is checked against the length first (bounds checks are off), and every
cast is guarded, so malformed input raises the same exception as the pure twin. The direct
msgpack readers (``decode_active``, job data in ``unpack``) and writers (``encode_add_batch``,
``pack``) handle the shapes the library and the client produce and hand anything else to the
general path beside them, which is the pure twin's code.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeUTF8
from libc.string cimport memcmp, memcpy

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
    cdef Buffer b
    b.data, b.size, b.used = NULL, 0, 0
    cdef bint done
    try:
        try:
            done = _pack_item(&b, value, 0)
        except Exception:  # msgpack's path below gives the pure twin's exception
            done = False
        if done:
            return PyBytes_FromStringAndSize(b.data, b.used)
    finally:
        PyMem_Free(b.data)
    _check(value, 0)
    try:
        return _packb(value, use_bin_type=True)
    except (OverflowError, ValueError, TypeError) as exc:
        raise SerializationError(str(exc)) from exc


cpdef object unpack(object data):
    """Decodes what ``pack`` wrote; empty or missing data is None."""
    if not data:
        return None
    if type(data) is bytes:
        value = _fast_unpack(<const unsigned char*>PyBytes_AS_STRING(<bytes>data), PyBytes_GET_SIZE(<bytes>data))
        if value is not _MISS:
            return value
    return _unpackb(data, raw=False, strict_map_key=False)


def encode_jobs(object items, Py_ssize_t max_payload, object encode_item):
    """The encoded rows (see ``options.encode_item``) and the data of add_bulk's items.

    A (name, data) item (or one with empty options) whose name an earlier item of the call
    already passed is encoded here; any other item goes through ``encode_item``, which checks
    it and raises what the pure twin raises.
    """
    cdef list encoded = [], datas = []
    cdef set names = set()
    cdef object item, name, row
    cdef bytes blob
    cdef Py_ssize_t size
    for item in items:
        row = None
        if type(item) is tuple:
            size = len(<tuple>item)
            if size == 2 or (size == 3 and type((<tuple>item)[2]) is dict and not (<tuple>item)[2]):
                name = (<tuple>item)[0]
                if type(name) is str and name in names:
                    blob = pack((<tuple>item)[1])
                    if len(blob) <= max_payload:
                        row = ("", name, blob, 0, 0, 1, "", 0, False, -1, -1, {})
        if row is None:
            row = encode_item(item, max_payload)
            name = (<tuple>row)[1]
            if type(name) is str:
                names.add(name)  # it passed the name checks
        encoded.append(row)
        datas.append(item[1])
    return encoded, datas


# -- encode_add_batch: a direct writer -------------------------------------------------------
# Writes the msgpack bytes packb(rows, use_bin_type=False) would (str and bytes alike as the
# str family: fixstr below 32 bytes, then str16, str32), for rows of the usual types. Anything
# else (or any exception) goes to the general path, the pure twin's code.

cdef struct Buffer:
    char* data
    Py_ssize_t size
    Py_ssize_t used


cdef int _grow(Buffer* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t want = b.used + extra
    cdef Py_ssize_t size
    cdef char* data
    if want <= b.size:
        return 0
    size = max(want, b.size * 2, 4096)
    data = <char*>PyMem_Realloc(b.data, size)
    if data == NULL:
        raise MemoryError()
    b.data, b.size = data, size
    return 0


cdef int _head(Buffer* b, Py_ssize_t n, unsigned char fix, Py_ssize_t fix_limit, unsigned char c16) except -1:
    """A container or str header: fix form below fix_limit, else the 16- or 32-bit form."""
    _grow(b, 5)
    cdef unsigned char* p = <unsigned char*>(b.data + b.used)
    if n < fix_limit:
        p[0] = fix | n
        b.used += 1
    elif n < 65536:
        p[0], p[1], p[2] = c16, (n >> 8) & 0xff, n & 0xff
        b.used += 3
    else:
        p[0], p[1], p[2], p[3], p[4] = c16 + 1, (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff
        b.used += 5
    return 0


cdef int _append(Buffer* b, const char* data, Py_ssize_t n) except -1:
    _grow(b, n)
    memcpy(b.data + b.used, data, n)
    b.used += n
    return 0


cdef int _raw(Buffer* b, const char* data, Py_ssize_t n) except -1:
    _head(b, n, 0xa0, 32, 0xda)
    return _append(b, data, n)


cdef bint _value(Buffer* b, object value) except -1:
    """Writes a str or bytes; False for any other type."""
    cdef Py_ssize_t n
    cdef const char* text
    if type(value) is str:
        text = PyUnicode_AsUTF8AndSize(value, &n)
        _raw(b, text, n)
        return True
    if type(value) is bytes:
        _raw(b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
        return True
    return False


cdef bint _number(Buffer* b, object value) except -1:
    """Writes str(value) (an int as its digits without making a str)."""
    cdef char digits[24]
    cdef long long v
    cdef unsigned long long u
    cdef int k = 24
    if type(value) is not int:
        return _value(b, str(value))
    v = value  # OverflowError beyond 64 bits: the general path takes over
    u = <unsigned long long>(-(v + 1)) + 1 if v < 0 else <unsigned long long>v
    while True:
        k -= 1
        digits[k] = <char>(48 + u % 10)
        u //= 10
        if u == 0:
            break
    if v < 0:
        k -= 1
        digits[k] = 45
    _raw(b, digits + k, 24 - k)
    return True


# -- pack: a direct writer of job data ---------------------------------------------------------
# The bytes packb(value, use_bin_type=True) writes, for values of exactly the types a job's data
# usually holds: None, bool, int within 64 bits, float, str, bytes, list, tuple and dict with
# str keys. Anything else (subclasses, other types, deep nesting) returns False and goes to the
# checks and msgpack.

cdef int _PACK_DEPTH = 32


cdef int _be_write(Buffer* b, unsigned char code, unsigned long long v, int size) except -1:
    """code, then v big-endian in size bytes."""
    _grow(b, 1 + size)
    cdef unsigned char* p = <unsigned char*>(b.data + b.used)
    cdef int k
    p[0] = code
    for k in range(size):
        p[size - k] = (v >> (8 * k)) & 0xff
    b.used += 1 + size
    return 0


cdef int _pack_int(Buffer* b, object value) except -1:
    """msgpack's smallest form of an int (OverflowError beyond 64 bits)."""
    cdef unsigned long long u
    cdef long long v
    if value >= 0:
        u = value
        if u < 0x80:
            return _be_write(b, <unsigned char>u, 0, 0)
        if u < 0x100:
            return _be_write(b, 0xcc, u, 1)
        if u < 0x10000:
            return _be_write(b, 0xcd, u, 2)
        if u < 0x100000000:
            return _be_write(b, 0xce, u, 4)
        return _be_write(b, 0xcf, u, 8)
    v = value
    if v >= -32:
        return _be_write(b, <unsigned char>(v & 0xff), 0, 0)
    if v >= -128:
        return _be_write(b, 0xd0, <unsigned long long>v, 1)
    if v >= -32768:
        return _be_write(b, 0xd1, <unsigned long long>v, 2)
    if v >= -2147483648:
        return _be_write(b, 0xd2, <unsigned long long>v, 4)
    return _be_write(b, 0xd3, <unsigned long long>v, 8)


cdef int _pack_bytes(Buffer* b, const char* data, Py_ssize_t n, bint text) except -1:
    """A str (fixstr, str8/16/32) or bytes (bin8/16/32) of n bytes at data."""
    cdef unsigned char code = 0xd9 if text else 0xc4  # the 8-bit form; 16 and 32 follow it
    if text and n < 32:
        _be_write(b, 0xa0 | n, 0, 0)
    elif n < 0x100:
        _be_write(b, code, n, 1)
    elif n < 0x10000:
        _be_write(b, code + 1, n, 2)
    else:
        _be_write(b, code + 2, n, 4)
    return _append(b, data, n)


cdef bint _pack_item(Buffer* b, object value, int depth) except -1:
    cdef type t = type(value)
    cdef Py_ssize_t n
    cdef const char* text
    cdef double f
    cdef unsigned long long bits
    if t is str:
        text = PyUnicode_AsUTF8AndSize(value, &n)  # UnicodeEncodeError for surrogates
        _pack_bytes(b, text, n, True)
        return True
    if t is int:
        _pack_int(b, value)
        return True
    if value is None:
        _be_write(b, 0xc0, 0, 0)
        return True
    if t is bool:
        _be_write(b, 0xc3 if value else 0xc2, 0, 0)
        return True
    if t is float:
        f = value
        memcpy(&bits, &f, 8)
        _be_write(b, 0xcb, bits, 8)
        return True
    if t is bytes:
        _pack_bytes(b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value), False)
        return True
    if depth >= _PACK_DEPTH:
        return False
    if t is list or t is tuple:
        n = len(value)
        _head(b, n, 0x90, 16, 0xdc)
        for item in value:
            if not _pack_item(b, item, depth + 1):
                return False
        return True
    if t is dict:
        _head(b, len(<dict>value), 0x80, 16, 0xde)
        for key, item in (<dict>value).items():
            if type(key) is not str or not _pack_item(b, key, depth + 1) or not _pack_item(b, item, depth + 1):
                return False
        return True
    return False


cdef object _fast_add_batch(list jobs):
    cdef Buffer b
    b.data, b.size, b.used = NULL, 0, 0
    cdef tuple job
    cdef bint ok = True
    try:
        _head(&b, len(jobs), 0x90, 16, 0xdc)
        for item in jobs:
            job = _check_row(item, _ADD_FIELDS)
            if job[3:11] == _DEFAULT_OPTIONS and not job[11]:
                _head(&b, 3, 0x90, 16, 0xdc)
                ok = _value(&b, job[0]) and _value(&b, job[1]) and _value(&b, job[2])
            else:
                extras = job[11]
                if type(extras) is not dict:
                    return None
                _head(&b, 12, 0x90, 16, 0xdc)
                ok = (_value(&b, job[0]) and _value(&b, job[1]) and _value(&b, job[2]) and _number(&b, job[3])
                      and _number(&b, job[4]) and _number(&b, job[5]) and _value(&b, job[6])
                      and _number(&b, job[7]) and _value(&b, "1" if job[8] else "0") and _number(&b, job[9])
                      and _number(&b, job[10]))
                if ok:
                    _head(&b, len(<dict>extras), 0x80, 16, 0xde)
                    for key, value in (<dict>extras).items():
                        ok = _value(&b, key) and _value(&b, value)
                        if not ok:
                            break
            if not ok:
                return None
        return PyBytes_FromStringAndSize(b.data, b.used)
    finally:
        PyMem_Free(b.data)


def encode_add_batch(object jobs):
    """Packs the arguments of ``add`` into one msgpack blob (one argument on the wire)."""
    if type(jobs) is list:
        try:
            packed = _fast_add_batch(<list>jobs)
        except Exception:  # the general path gives the pure twin's exception
            packed = None
        if packed is not None:
            return packed
    return _general_add_batch(jobs)


def _general_add_batch(object jobs):
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


# -- decode_active: a direct reader for the shape the library sends -------------------------
# [token, id, [key, value, ...], id, [...], ...], every leaf a msgpack str (Lua's cmsgpack
# never writes anything else there). It makes only the objects a record holds. Anything else,
# or any doubt (a number that is not plain digits, bad UTF-8, bad data), goes to the general
# path below, which is the pure twin's code: same result, same exception.

cdef struct Cursor:
    const unsigned char* p
    Py_ssize_t left


cdef inline bint _take_bytes(Cursor* c, Py_ssize_t n) noexcept:
    if c.left < n:
        return False
    c.p += n
    c.left -= n
    return True


cdef inline unsigned long long _be64(const unsigned char* p, int size) noexcept:
    """The big-endian number of size bytes at p."""
    cdef unsigned long long v = 0
    cdef int k
    for k in range(size):
        v = (v << 8) | p[k]
    return v


cdef inline Py_ssize_t _be(const unsigned char* p, int size) noexcept:
    """A length of 2 or 4 bytes at p."""
    return <Py_ssize_t>_be64(p, size)


cdef inline Py_ssize_t _array(Cursor* c) noexcept:
    """The length of the array at the cursor, or -1."""
    if c.left < 1:
        return -1
    cdef unsigned char b = c.p[0]
    cdef Py_ssize_t n
    if 0x90 <= b <= 0x9f:
        _take_bytes(c, 1)
        return b & 0x0f
    if b == 0xdc and c.left >= 3:
        n = _be(c.p + 1, 2)
        _take_bytes(c, 3)
        return n
    if b == 0xdd and c.left >= 5:
        n = _be(c.p + 1, 4)
        _take_bytes(c, 5)
        return n
    return -1


cdef inline Py_ssize_t _string(Cursor* c, const unsigned char** start) noexcept:
    """The length of the str (or bin) at the cursor, its bytes at *start; or -1."""
    if c.left < 1:
        return -1
    cdef unsigned char b = c.p[0]
    cdef Py_ssize_t n
    cdef int head
    if 0xa0 <= b <= 0xbf:
        n, head = b & 0x1f, 1
    elif (b == 0xd9 or b == 0xc4) and c.left >= 2:
        n, head = c.p[1], 2
    elif (b == 0xda or b == 0xc5) and c.left >= 3:
        n, head = _be(c.p + 1, 2), 3
    elif (b == 0xdb or b == 0xc6) and c.left >= 5:
        n, head = _be(c.p + 1, 4), 5
    else:
        return -1
    if not _take_bytes(c, head):
        return -1
    start[0] = c.p
    if not _take_bytes(c, n):
        return -1
    return n


cdef inline bint _digits(const unsigned char* p, Py_ssize_t n, long long* out) noexcept:
    """Plain decimal text ([-]digits, at most 18) as a number."""
    cdef Py_ssize_t k = 0
    cdef bint negative = False
    cdef long long v = 0
    if n > 0 and p[0] == 45:  # '-'
        negative, k = True, 1
    if n - k < 1 or n - k > 18:
        return False
    while k < n:
        if p[k] < 48 or p[k] > 57:
            return False
        v = v * 10 + (p[k] - 48)
        k += 1
    out[0] = -v if negative else v
    return True


cdef inline bint _is(const unsigned char* key, Py_ssize_t n, const char* name, Py_ssize_t size) noexcept:
    return n == size and memcmp(key, name, size) == 0


cdef object _text(const unsigned char* p, Py_ssize_t n):
    return PyUnicode_DecodeUTF8(<const char*>p, n, NULL)


# The direct msgpack reader of job data: msgpack.unpackb(raw=False, strict_map_key=False) for
# nil, booleans, integers, floats, str, bin, arrays and maps with scalar keys. Anything else
# (extension types, invalid UTF-8, deep nesting, truncated or trailing bytes) gives _MISS, and
# the caller asks msgpack, whose result or exception is then the answer.
cdef object _MISS = object()
cdef int _READ_DEPTH = 32


cdef object _fast_unpack(const unsigned char* p, Py_ssize_t n):
    cdef Cursor c
    c.p = p
    c.left = n
    value = _read(&c, 0)
    if c.left != 0:
        return _MISS
    return value


cdef object _read(Cursor* c, int depth):
    if c.left < 1 or depth > _READ_DEPTH:
        return _MISS
    cdef unsigned char b = c.p[0]
    cdef const unsigned char* s = NULL
    cdef Py_ssize_t n
    if b <= 0x7f:  # positive fixint
        _take_bytes(c, 1)
        return <long>b
    if b >= 0xe0:  # negative fixint
        _take_bytes(c, 1)
        return <long>b - 256
    if 0xa0 <= b <= 0xbf or 0xd9 <= b <= 0xdb:
        n = _string(c, &s)
        if n < 0:
            return _MISS
        try:
            return PyUnicode_DecodeUTF8(<const char*>s, n, NULL)
        except UnicodeDecodeError:
            return _MISS
    if 0xc4 <= b <= 0xc6:
        n = _string(c, &s)
        return _MISS if n < 0 else PyBytes_FromStringAndSize(<const char*>s, n)
    if 0x90 <= b <= 0x9f or b == 0xdc or b == 0xdd:
        return _read_array(c, depth)
    if 0x80 <= b <= 0x8f or b == 0xde or b == 0xdf:
        return _read_map(c, depth)
    if b == 0xc0:
        _take_bytes(c, 1)
        return None
    if b == 0xc2 or b == 0xc3:
        _take_bytes(c, 1)
        return b == 0xc3
    return _read_number(c, b)


cdef object _read_number(Cursor* c, unsigned char b):
    cdef unsigned long long u
    cdef unsigned int u32
    cdef float f32
    cdef double f64
    cdef int size
    if b == 0xca or b == 0xcb:
        size = 4 if b == 0xca else 8
        if c.left < 1 + size:
            return _MISS
        u = _be64(c.p + 1, size)
        _take_bytes(c, 1 + size)
        if size == 4:
            u32 = <unsigned int>u
            memcpy(&f32, &u32, 4)
            return <double>f32
        memcpy(&f64, &u, 8)
        return f64
    if 0xcc <= b <= 0xd3:
        size = 1 << ((b - 0xcc) & 3)
        if c.left < 1 + size:
            return _MISS
        u = _be64(c.p + 1, size)
        _take_bytes(c, 1 + size)
        if b <= 0xcf:
            return u
        if size < 8 and u >> (8 * size - 1):  # negative: sign-extend
            u |= ~0ULL << (8 * size)
        return <long long>u
    return _MISS


cdef object _read_array(Cursor* c, int depth):
    cdef Py_ssize_t n = _array(c), k
    if n < 0 or n > c.left:  # every item takes a byte at least
        return _MISS
    cdef list out = [None] * n
    for k in range(n):
        item = _read(c, depth + 1)
        if item is _MISS:
            return _MISS
        out[k] = item
    return out


cdef object _read_map(Cursor* c, int depth):
    cdef unsigned char b = c.p[0]
    cdef Py_ssize_t n, k
    cdef int size
    if b <= 0x8f:
        n = b & 0x0f
        _take_bytes(c, 1)
    else:
        size = 2 if b == 0xde else 4
        if c.left < 1 + size:
            return _MISS
        n = _be(c.p + 1, size)
        _take_bytes(c, 1 + size)
    if n > c.left // 2:  # a key and a value take a byte at least each
        return _MISS
    cdef dict out = {}
    for k in range(n):
        key = _read(c, depth + 1)
        if key is _MISS or type(key) is list or type(key) is dict:
            return _MISS
        item = _read(c, depth + 1)
        if item is _MISS:
            return _MISS
        out[key] = item
    return out


cdef inline object _data(object view, const unsigned char* base, const unsigned char* value, Py_ssize_t vn):
    """A job's packed data (or progress) at value: the direct reader, else msgpack's."""
    if vn == 0:
        return None
    data = _fast_unpack(value, vn)
    if data is _MISS:
        return _unpackb(view[value - base:value - base + vn], raw=False, strict_map_key=False)
    return data


cdef object _fast_records(bytes blob, object now_ms):
    """The records, or None when the blob is not in the usual shape."""
    cdef Cursor c
    c.p = <const unsigned char*>PyBytes_AS_STRING(blob)
    c.left = PyBytes_GET_SIZE(blob)
    cdef const unsigned char* base = c.p
    cdef const unsigned char* s = NULL
    cdef const unsigned char* key = NULL
    cdef Py_ssize_t n = _array(&c)
    if n < 1 or n % 2 == 0:
        return None
    cdef Py_ssize_t ln = _string(&c, &s)
    if ln < 0:
        return None
    token = _text(s, ln)
    view = memoryview(blob)
    cdef list out = []
    cdef Py_ssize_t i, k, m, kn, vn
    cdef long long number
    cdef const unsigned char* value
    for i in range(1, n, 2):
        ln = _string(&c, &s)
        if ln < 0:
            return None
        job_id = _text(s, ln)
        m = _array(&c)
        if m < 0 or m % 2:
            return None
        name, data, backoff, progress, trace = "", None, "", None, None
        ts, attempts, made, priority, delay, timeout, keep_complete, keep_fail = 0, 1, 0, 0, 0, 0, -1, -1
        for k in range(0, m, 2):
            kn = _string(&c, &key)
            vn = _string(&c, &value) if kn >= 0 else -1
            if vn < 0:
                return None
            if kn == 1 and key[0] == 110:  # n
                name = _text(value, vn)
            elif kn == 1 and key[0] == 100:  # d
                data = _data(view, base, value, vn)
            elif kn == 1 and key[0] == 112:  # p
                if not _digits(value, vn, &number):
                    return None
                priority = number
            elif _is(key, kn, b"pg", 2):
                progress = _data(view, base, value, vn)
            elif _is(key, kn, b"bo", 2):
                backoff = _text(value, vn)
            elif _is(key, kn, b"tc", 2):
                trace = PyBytes_FromStringAndSize(<const char*>value, vn)
            elif _is(key, kn, b"to", 2) and vn == 0:
                timeout = 0
            elif kn == 2 and (
                _is(key, kn, b"ts", 2) or _is(key, kn, b"at", 2) or _is(key, kn, b"am", 2) or _is(key, kn, b"dl", 2)
                or _is(key, kn, b"to", 2) or _is(key, kn, b"rc", 2) or _is(key, kn, b"rf", 2)
            ):
                if not _digits(value, vn, &number):
                    return None
                if key[0] == 116:  # ts, to
                    if key[1] == 115:
                        ts = number
                    else:
                        timeout = number
                elif key[0] == 97:  # at, am
                    if key[1] == 116:
                        attempts = number
                    else:
                        made = number
                elif key[0] == 100:
                    delay = number
                elif key[1] == 99:
                    keep_complete = number
                else:
                    keep_fail = number
        out.append((job_id, token, now_ms, name, data, ts, attempts, made, priority, delay, backoff, timeout,
                    progress, keep_complete, keep_fail, trace))
    if c.left != 0:
        return None
    return out


def decode_active(object blob, object now_ms):
    """Decodes the jobs ``take`` activated: [token, id, fields, id, fields, ...] (16 values
    per job, see the pure twin)."""
    if not blob:
        return []
    if type(blob) is bytes:
        try:
            records = _fast_records(<bytes>blob, now_ms)
        except Exception:  # the general path gives the pure twin's exception
            records = None
        if records is not None:
            return records
    return _general_records(blob, now_ms)


def _general_records(object blob, object now_ms):
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
    """Packs finished jobs for ``take``: each entry (id, token, kind, payload, attempts_made,
    keep) for a completion, followed by (extra, retry_ms, priority) for a failure or a release.

    Entries in a row with the same token, keep and kind share one group: token, keep, kind,
    count, then id, attempts_made, payload (and extra, retry_ms, priority) of each, so a
    batch of completions costs the server three values per job."""
    if not entries:
        return b""
    cdef list flat = []
    cdef object entry, job_id, token, kind, payload, attempts_made, keep
    cdef object group_token = None, group_keep = None, group_kind = None
    cdef bint grouped = False
    cdef Py_ssize_t count_at = 0, count = 0
    for entry in entries:
        if not isinstance(entry, (tuple, list)) or len(entry) < 6:
            raise TypeError(f"a finished entry must be a tuple of 6 or 9 fields, not {entry!r}")
        job_id, token, kind, payload, attempts_made, keep = entry[0], entry[1], entry[2], entry[3], entry[4], entry[5]
        if len(entry) != (6 if kind == "c" else 9):
            raise ValueError(f"a finished entry of kind {kind!r} with {len(entry)} fields")
        # a new group unless (token, keep, kind) == the group's, compared as tuples compare
        if not (grouped and _same(token, group_token) and _same(keep, group_keep) and _same(kind, group_kind)):
            if grouped:
                flat[count_at] = count
            grouped, group_token, group_keep, group_kind = True, token, keep, kind
            count_at, count = len(flat) + 3, 0
            flat.append(token)
            flat.append(keep)
            flat.append(kind)
            flat.append(0)
        count += 1
        flat.append(job_id)
        flat.append(attempts_made)
        flat.append(payload)
        if kind != "c":
            flat.append(entry[6])
            flat.append(entry[7])
            flat.append(entry[8])
    flat[count_at] = count
    try:
        packed = _pack_flat(flat)
    except Exception:  # msgpack gives the pure twin's exception
        packed = None
    return _packb(flat, use_bin_type=False) if packed is None else packed


cdef inline bint _same(object a, object b) except -1:
    return a is b or a == b


cdef object _pack_flat(list flat):
    """packb(flat, use_bin_type=False) for a list of str, bytes and int; None for other items."""
    cdef Buffer b
    b.data, b.size, b.used = NULL, 0, 0
    try:
        _head(&b, len(flat), 0x90, 16, 0xdc)
        for item in flat:
            if type(item) is int:
                _pack_int(&b, item)
            elif not _value(&b, item):
                return None
        return PyBytes_FromStringAndSize(b.data, b.used)
    finally:
        PyMem_Free(b.data)
