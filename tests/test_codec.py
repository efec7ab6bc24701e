"""The codec twins agree: ``glidemq._pure`` (the reference) and the compiled ``glidemq._speedups``.

Every codec function gets the same input in both twins and must return equal bytes / equal
values, or raise the same exception with the same message. The compiled module is imported
directly, so the parity tests run in both CI modes: GLIDEMQ_NO_EXTENSIONS only changes which
twin ``glidemq._codec`` hands to the library.
"""

from __future__ import annotations

import ast
import collections
import datetime
import decimal
import enum
import importlib.machinery
import inspect
import itertools
import math
import os
import re
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

import glidemq
from glidemq import _codec, _pure
from glidemq.errors import SerializationError
from glidemq.options import encode_item

PURE_MODE = os.environ.get("GLIDEMQ_NO_EXTENSIONS", "") not in ("", "0")
FUNCTIONS = ("pack", "unpack", "encode_add_batch", "encode_jobs", "decode_active", "hash_to_dict", "encode_finished")

try:
    from glidemq import _speedups as compiled
except ImportError:  # a pure-only install: only the GLIDEMQ_NO_EXTENSIONS=1 run may lack it
    if not PURE_MODE:
        raise
    compiled = None

needs_compiled = pytest.mark.skipif(compiled is None, reason="pure-only install: the compiled codec is not built")
PARITY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- how results are compared ------------------------------------------------------------------


def outcome(func: Callable[..., Any], *args: Any) -> tuple[Any, ...]:
    """What a call did: its return value's type and repr, or its exception's type and message.

    repr tells 1 from 1.0 from True, -0.0 from 0.0, bytes from str, and keeps dict order.
    """
    try:
        result = func(*args)
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome being compared
        return ("raises", type(exc), str(exc))
    return ("returns", type(result), repr(result))


def same(name: str, *args: Any) -> tuple[Any, ...]:
    """Calls ``name`` in both twins with the same arguments and asserts the same outcome."""
    expected = outcome(getattr(_pure, name), *args)
    got = outcome(getattr(compiled, name), *args)
    assert got == expected, f"{name}: compiled {got!r} != pure {expected!r}"
    return expected


def plain(value: Any) -> Any:
    """What a value looks like after a msgpack round trip: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def float_bits(value: float) -> bytes:
    return struct.pack(">d", value)


# -- strategies ----------------------------------------------------------------------------------

in_range_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
big_ints = st.integers(min_value=2**64) | st.integers(max_value=-(2**63) - 1)
any_floats = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [math.nan, -math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]
)
scalars = st.none() | st.booleans() | in_range_ints | any_floats | st.text() | st.binary()


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(children, max_size=5)
        | st.tuples(children)
        | st.tuples(children, children)
        | st.dictionaries(st.text(max_size=8), children, max_size=5)
    )


good_values = st.recursive(scalars, containers, max_leaves=25)
bad_keys = st.integers() | st.binary() | st.none() | st.booleans() | st.floats() | st.tuples(st.integers())
unsupported = st.sampled_from(
    [
        set,
        frozenset,
        object,
        bytearray,
        lambda: memoryview(b"x"),
        lambda: complex(1, 2),
        lambda: datetime.datetime(2024, 1, 1),
        lambda: decimal.Decimal("1.5"),
        lambda: range(3),
        lambda: print,
    ]
).map(lambda make: make())
surrogate_text = st.text(st.characters(categories=["Cs"]), min_size=1)


def with_poison(poison: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A valid structure with one bad value somewhere inside it (or the bad value alone)."""
    return st.tuples(poison, st.lists(good_values, max_size=3)).flatmap(
        lambda case: st.sampled_from(
            [
                case[0],
                [*case[1], case[0]],
                {"ok": case[1], "bad": case[0]},
                ("x", {"a": [case[0]]}),
                [case[1], {"deep": (case[0],)}],
            ]
        )
    )


# -- which codec is in use -----------------------------------------------------------------------


def test_codec_in_use_matches_environment() -> None:
    """A normal install runs the compiled codec; GLIDEMQ_NO_EXTENSIONS=1 runs the pure one."""
    if PURE_MODE:
        assert _codec.USE_EXTENSIONS is False
        assert glidemq.USE_EXTENSIONS is False
        for name in FUNCTIONS:
            assert getattr(_codec, name) is getattr(_pure, name), name
    else:
        assert compiled is not None
        assert _codec.USE_EXTENSIONS is True, "the compiled codec is not in use (was the source tree imported?)"
        assert glidemq.USE_EXTENSIONS is True
        assert compiled.__file__ is not None
        assert compiled.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), compiled.__file__
        for name in FUNCTIONS:
            assert getattr(_codec, name) is getattr(compiled, name), name
            assert not inspect.isfunction(getattr(_codec, name)), f"{name} is a Python function"


def test_library_goes_through_the_selector() -> None:
    """No glidemq module holds a codec function other than the one ``_codec`` picked."""
    twins = {"glidemq._codec", "glidemq._pure", "glidemq._speedups"}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("glidemq.") or module_name in twins or module is None:
            continue
        for attr, value in vars(module).items():
            for name in FUNCTIONS:
                candidates = [getattr(_pure, name)] + ([getattr(compiled, name)] if compiled else [])
                if any(value is candidate for candidate in candidates):
                    assert value is getattr(_codec, name), f"{module_name}.{attr} bypasses glidemq._codec"


@pytest.mark.parametrize(("setting", "pure"), [(None, False), ("", False), ("0", False), ("1", True)])
def test_environment_variable_picks_the_twin(tmp_path: Path, setting: str | None, pure: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GLIDEMQ_NO_EXTENSIONS"}
    if setting is not None:
        env["GLIDEMQ_NO_EXTENSIONS"] = setting
    code = "import glidemq._codec as c; print(c.__file__); print(c.USE_EXTENSIONS); print(c.pack.__module__)"
    lines = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert lines[0] == _codec.__file__, "the subprocess imported another copy of glidemq"
    expect_compiled = compiled is not None and not pure
    assert lines[1:] == [str(expect_compiled), "glidemq._speedups" if expect_compiled else "glidemq._pure"]


@needs_compiled
def test_twins_have_the_same_interface() -> None:
    stub = ast.parse(Path(_pure.__file__).with_name("_speedups.pyi").read_text())
    stubbed = {node.name: [a.arg for a in node.args.args] for node in stub.body if isinstance(node, ast.FunctionDef)}
    assert sorted(stubbed) == sorted(FUNCTIONS)
    for name in FUNCTIONS:
        pure_params = list(inspect.signature(getattr(_pure, name)).parameters)
        assert stubbed[name] == pure_params, name
        assert list(inspect.signature(getattr(compiled, name)).parameters) == pure_params, name
    assert compiled.ADD_FIELDS == _pure.ADD_FIELDS
    assert compiled.ACTIVE_FIELDS == _pure.ACTIVE_FIELDS


# -- pack / unpack -------------------------------------------------------------------------------


@needs_compiled
@PARITY
@given(good_values)
def test_pack_same_bytes_and_round_trip(value: Any) -> None:
    kind, result_type, _ = same("pack", value)
    assert kind == "returns" and result_type is bytes
    packed = _pure.pack(value)
    for twin in (_pure, compiled):
        back = twin.unpack(packed)
        assert repr(back) == repr(plain(value))
        assert twin.pack(back) == packed  # the same bytes again: NaN payloads, -0.0 and key order survive


@needs_compiled
@PARITY
@given(any_floats)
def test_floats_round_trip_bit_for_bit(value: float) -> None:
    same("pack", value)
    for twin in (_pure, compiled):
        back = twin.unpack(twin.pack(value))
        assert type(back) is float and float_bits(back) == float_bits(value)


@needs_compiled
@PARITY
@given(st.recursive(scalars | big_ints, containers, max_leaves=15))
def test_pack_with_any_ints(value: Any) -> None:
    kind, result_type, _ = same("pack", value)
    if kind == "raises":
        assert result_type is SerializationError


@needs_compiled
@PARITY
@given(with_poison(big_ints))
def test_ints_beyond_64_bits_are_refused(value: Any) -> None:
    assert same("pack", value)[:2] == ("raises", SerializationError)


@needs_compiled
@PARITY
@given(with_poison(st.dictionaries(bad_keys, scalars, min_size=1, max_size=3)))
def test_non_str_dict_keys_are_refused(value: Any) -> None:
    _, error, message = same("pack", value)
    assert error is SerializationError and message.startswith("dict keys must be str")


@needs_compiled
@PARITY
@given(with_poison(unsupported))
def test_unsupported_types_are_refused(value: Any) -> None:
    _, error, message = same("pack", value)
    assert error is SerializationError and message.startswith("cannot serialize")


@needs_compiled
@PARITY
@given(with_poison(surrogate_text))
def test_unencodable_text_is_refused(value: Any) -> None:
    assert same("pack", value)[:2] == ("raises", SerializationError)


@needs_compiled
@pytest.mark.parametrize("depth", [1, 100, 255, 256, 257, 300, 1000])
def test_nesting_limit(depth: int) -> None:
    nested: Any = "leaf"
    for _ in range(depth):
        nested = [nested]
    kind, _, _ = same("pack", nested)
    assert (kind == "returns") == (depth <= 256 + 1)  # the leaf is a scalar: containers may nest 257 deep
    nested_dict: Any = 1
    for _ in range(depth):
        nested_dict = {"k": nested_dict}
    same("pack", nested_dict)


@needs_compiled
def test_self_containing_values_are_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    table: dict[str, Any] = {}
    table["me"] = table
    for value in (loop, table):
        assert same("pack", value)[:2] == ("raises", SerializationError)


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


Pair = collections.namedtuple("Pair", "a b")


@needs_compiled
@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        False,
        0,
        -1,
        2**64 - 1,
        -(2**63),
        2**64,
        -(2**63) - 1,
        math.nan,
        math.inf,
        -math.inf,
        -0.0,
        "",
        "é☃😀",
        b"",
        b"\x00\xff",
        (),
        (1, (2, (3,))),
        [(), {}],
        {"a": (1, 2), "b": {"c": [b"x", None]}},
        Colour.RED,
        Name("sub"),
        Pair(1, "x"),
        collections.OrderedDict(b=1, a=2),
        {1: "x"},
        {b"k": 1},
        {None: 1},
        {(1, 2): 1},
        {1.5: 1},
        {True: 1},
        {"ok": {2: "nested"}},
        {1, 2},
        bytearray(b"x"),
        1j,
        object(),
    ],
    ids=lambda value: re.sub(r" at 0x[0-9a-f]+", "", repr(value)),
)
def test_pack_examples(value: Any) -> None:
    same("pack", value)


# Where msgpack moves to the next size of a form: the last value of one size and the first of
# the next (ints; str, bytes, list and dict lengths).
INT_EDGES = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, -1, -32, -33, -128, -129,
             -32768, -32769, -(2**31), -(2**31) - 1]
LENGTH_EDGES = [15, 16, 31, 32, 255, 256, 65535, 65536]


@needs_compiled
@pytest.mark.parametrize("value", INT_EDGES + [-n for n in INT_EDGES[1:10]], ids=repr)
def test_pack_int_edges(value: int) -> None:
    same("pack", value)
    same("pack", [value, {"k": value}])
    same("unpack", _pure.pack(value))


@needs_compiled
@pytest.mark.parametrize("n", LENGTH_EDGES)
def test_pack_length_edges(n: int) -> None:
    for value in ("é" * (n // 2) + "x" * (n % 2), b"\x01" * n, [1] * n, {str(k): k for k in range(n)}):
        packed = same("pack", value)
        assert packed[0] == "returns"
        same("unpack", _pure.pack(value))


@needs_compiled
@PARITY
@given(st.binary(max_size=64) | good_values.map(_pure.pack))
def test_unpack_any_bytes(data: bytes) -> None:
    same("unpack", data)


@needs_compiled
@pytest.mark.parametrize(
    "data", [None, b"", bytearray(b"\x93\x01\x02\x03"), memoryview(b"\xc0"), b"\xc1", "text", 0, 5]
)
def test_unpack_examples(data: Any) -> None:
    same("unpack", data)


# msgpack the packer never writes but a job's data may hold (written by another client): other
# map keys, float32, bin and str forms, extension types. The compiled reader of job data reads
# the usual ones itself and hands the rest to msgpack: both twins must give the same.
odd_keys = st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.binary(max_size=4) | st.none() | st.booleans()
odd_keys |= st.floats(allow_nan=False) | st.text(max_size=4) | st.tuples(st.integers())
odd_values = st.recursive(
    scalars | st.builds(msgpack.ExtType, st.integers(min_value=0, max_value=127), st.binary(max_size=4)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_keys, children, max_size=4),
    max_leaves=12,
)
packer_options = st.fixed_dictionaries({"use_bin_type": st.booleans(), "use_single_float": st.booleans()})


@needs_compiled
@PARITY
@given(odd_values, packer_options)
def test_unpack_msgpack_of_other_writers(value: Any, options: dict[str, bool]) -> None:
    try:
        data = msgpack.packb(value, **options)
    except OverflowError:  # a float beyond float32's range with use_single_float
        reject()
    same("unpack", data)


def nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\x01"


ODD_ENCODINGS = [
    b"\xcc\x05", b"\xcd\x00\x05", b"\xce\xff\xff\xff\xff", b"\xcf" + b"\xff" * 8,  # uints, not minimal
    b"\xd0\xff", b"\xd0\x80", b"\xd1\x80\x00", b"\xd2\x80\x00\x00\x00", b"\xd3\x80" + b"\x00" * 7,  # ints
    b"\xd3\x7f" + b"\xff" * 7, b"\xe0", b"\xff", b"\x7f",
    b"\xca\x3f\xc0\x00\x00", b"\xca\x7f\xc0\x00\x01", b"\xcb\x80" + b"\x00" * 7,  # floats, -0.0
    b"\xd9\x03abc", b"\xda\x00\x01a", b"\xdb\x00\x00\x00\x01a", b"\xa2\xc3\x28", b"\xa1\xff",  # str, bad UTF-8
    b"\xc4\x01x", b"\xc5\x00\x00", b"\xc6\x00\x00\x00\x01x",  # bin
    b"\xdc\x00\x01\x01", b"\xdd\x00\x00\x00\x00", b"\xde\x00\x01\x01\x02", b"\xdf\x00\x00\x00\x00",
    b"\x81\x91\x01\x02", b"\x81\x80\x02", b"\x82\x01\x02\x01\x03", b"\x81\xc0\xc3",  # odd keys, repeats
    b"\xd4\x01\x00", b"\xd6\xff\x00\x00\x00\x01", b"\xc1", b"\x91\xc1", b"\x92\x01",  # ext, reserved, short
    b"\x01\x02", b"\xa3ab", b"\xcd\x01", b"\xdc\xff\xff", b"\x8f", b"\xdf\xff\xff\xff\xff",  # trailing, truncated
    nested(31), nested(32), nested(33), nested(200),  # nesting around the reader's limit and far beyond
]


@needs_compiled
@pytest.mark.parametrize("data", ODD_ENCODINGS, ids=lambda data: data[:12].hex())
def test_unpack_odd_encodings(data: bytes) -> None:
    same("unpack", data)
    blob = msgpack.packb([b"t", b"1", [b"d", data, b"pg", data]], use_bin_type=False)
    same("decode_active", blob, 5)


# -- encode_add_batch ----------------------------------------------------------------------------

add_jobs = st.tuples(
    st.text(max_size=12),  # job id ("" = auto)
    st.text(min_size=1, max_size=12),  # name
    good_values.map(_pure.pack),  # encoded data
    st.integers(min_value=0, max_value=10**13),  # delay_ms
    st.integers(min_value=0, max_value=2**21),  # priority
    st.integers(min_value=1, max_value=1000),  # attempts
    st.sampled_from(["", "f:1000", "e:500:0.25"]) | st.text(max_size=10),  # backoff spec
    st.integers(min_value=0, max_value=10**9),  # timeout_ms
    st.booleans(),  # lifo
    st.booleans() | st.integers(min_value=0, max_value=10**6),  # remove_on_complete
    st.booleans() | st.integers(min_value=0, max_value=10**6),  # remove_on_fail
    st.dictionaries(st.sampled_from(["di", "dt", "dx", "dr"]), st.text(max_size=8), max_size=4),  # extras
)
# jobs whose options are all at their default, as encode_job gives them: a short row
default_add_jobs = st.tuples(
    st.text(max_size=12), st.text(min_size=1, max_size=12), good_values.map(_pure.pack),
    st.just(0), st.just(0), st.just(1), st.just(""), st.just(0), st.just(False), st.just(-1), st.just(-1),
    st.just({}),
)


@needs_compiled
@PARITY
@given(st.lists(add_jobs | default_add_jobs, max_size=6))
def test_encode_add_batch(jobs: list[tuple[Any, ...]]) -> None:
    assert _pure.ADD_FIELDS == 12
    kind, result_type, _ = same("encode_add_batch", jobs)
    assert kind == "returns" and result_type is bytes
    rows = msgpack.unpackb(_pure.encode_add_batch(jobs), raw=True)
    assert len(rows) == len(jobs)
    for row, job in zip(rows, jobs, strict=True):
        job_id, name, data, delay, priority, attempts, backoff, timeout, lifo, rc, rf, extras = job
        if (delay, priority, attempts, backoff, timeout, lifo, rc, rf) == _pure.DEFAULT_OPTIONS and not extras:
            assert row == [job_id.encode(), name.encode(), data]  # the library fills in the defaults
            continue
        assert row == [
            job_id.encode(),
            name.encode(),
            data,
            str(delay).encode(),
            str(priority).encode(),
            str(attempts).encode(),
            backoff.encode(),
            str(timeout).encode(),
            b"1" if lifo else b"0",
            str(rc).encode(),
            str(rf).encode(),
            {k.encode(): v.encode() for k, v in extras.items()},
        ]


@needs_compiled
@PARITY
@given(
    st.lists(
        st.one_of(
            add_jobs,
            add_jobs.map(list),
            st.lists(st.integers(), max_size=14).map(tuple),
            scalars,
            add_jobs.map(lambda job: Pair(*job[:2])),
            add_jobs.map(lambda job: ("\ud800", *job[1:])),
        ),
        max_size=4,
    )
)
def test_encode_add_batch_malformed(jobs: list[Any]) -> None:
    same("encode_add_batch", jobs)


@needs_compiled
@pytest.mark.parametrize("jobs", [[], (), None, 5, "abc", [()], [tuple(range(13))]], ids=repr)
def test_encode_add_batch_odd_containers(jobs: Any) -> None:
    same("encode_add_batch", jobs)


# -- encode_jobs: add_bulk's items ---------------------------------------------------------------

bulk_names = st.sampled_from(["send", "send", "resize", "", "x" * 257, "tab\there"]) | st.text(max_size=8) | scalars
bulk_options = st.sampled_from([{}, {}, {"priority": 0}, {"priority": 3}, {"bogus": 1}, {"delay": -1}]) | scalars
plain_items = st.tuples(st.sampled_from(["send", "resize"]), good_values)  # the fast path, once a name passed
bulk_items = st.one_of(
    plain_items,
    plain_items,
    st.tuples(st.sampled_from(["send", "resize"]), good_values, st.just({})),
    st.tuples(bulk_names, good_values),
    st.tuples(bulk_names, good_values, bulk_options),
    st.tuples(bulk_names, st.just(object())),  # data that cannot be packed
    st.tuples(bulk_names, st.binary(min_size=60, max_size=80)),  # over the limit used below
    st.lists(st.text(), max_size=3),
    st.tuples(st.text()),
    scalars,
)


@needs_compiled
@PARITY
@given(st.lists(bulk_items, max_size=8))
def test_encode_jobs(items: list[Any]) -> None:
    """Items checked one by one in both twins (the compiled one skips the checks of a name it
    has seen pass): the same rows and data, or the same exception for the first bad item."""
    kind = same("encode_jobs", items, 64, encode_item)[0]
    if kind == "returns":
        rows, datas = _pure.encode_jobs(items, 64, encode_item)
        assert datas == [item[1] for item in items]
        assert rows == [encode_item(item, 64) for item in items]
    for container in (iter(items), tuple(items)):  # any iterable
        assert outcome(compiled.encode_jobs, container, 64, encode_item)[0] == kind


@needs_compiled
def test_encode_jobs_repeated_names() -> None:
    items = [("send", 1), ("send", {"to": "a"}), ("send", 2, {}), ("send", b"x" * 100), ("resize", None)]
    same("encode_jobs", items[:3], 64, encode_item)
    same("encode_jobs", items, 64, encode_item)  # the fourth is over the limit
    same("encode_jobs", [items[0], items[4], ("send", object())], 64, encode_item)


# -- decode_active -------------------------------------------------------------------------------

# The job hash fields decode_active reads: (field, what it holds, its value when absent). The
# Lua library sends each activated job's whole hash; fields at their default are not stored.
ACTIVE_HASH_FIELDS = (
    (b"n", "text", ""),  # name
    (b"d", "payload", None),  # data
    (b"ts", "int", 0),  # timestamp_ms
    (b"at", "int", 1),  # attempts
    (b"am", "int", 0),  # attempts_made
    (b"p", "int", 0),  # priority
    (b"dl", "int", 0),  # delay_ms
    (b"bo", "text", ""),  # backoff spec
    (b"to", "int_or_empty", 0),  # timeout_ms
    (b"pg", "payload", None),  # progress
    (b"rc", "int", -1),  # remove_on_complete
    (b"rf", "int", -1),  # remove_on_fail
    (b"tc", "raw", None),  # trace context
)

wire_ints = st.integers(min_value=-(2**53), max_value=2**53)
FIELD_STRATEGIES: dict[str, st.SearchStrategy[tuple[Any, Any]]] = {
    # (what goes on the wire, what decode_active gives back)
    "text": st.text(max_size=12).map(lambda s: (s.encode(), s)),
    "int": wire_ints.map(lambda n: (n, n)) | wire_ints.map(lambda n: (str(n).encode(), n)),
    "int_or_empty": wire_ints.map(lambda n: (str(n).encode(), n)) | st.just((b"", 0)),
    "payload": st.just((b"", None)) | good_values.map(lambda v: (_pure.pack(v), plain(v))),
    "raw": st.binary(max_size=12).map(lambda b: (b, b)),
}
# a job's stored fields: any subset of those read, plus fields decode_active ignores
job_hash = st.fixed_dictionaries(
    {},
    optional={
        **{field: FIELD_STRATEGIES[kind] for field, kind, _ in ACTIVE_HASH_FIELDS},
        b"s": st.just((b"waiting", None)),
        b"fr": st.just((b"boom", None)),
    },
)
active_job = st.tuples(FIELD_STRATEGIES["text"], job_hash)


ActiveJob = tuple[tuple[bytes, str], dict[bytes, tuple[Any, Any]]]  # (id on the wire and decoded, fields)


def wire_job(job: ActiveJob) -> list[Any]:
    (wire_id, _), fields = job
    return [wire_id, [item for field, (wire, _) in fields.items() for item in (field, wire)]]


def expected_record(job: ActiveJob, token: str, now: int) -> tuple[Any, ...]:
    (_, job_id), fields = job
    values = tuple(fields[name][1] if name in fields else default for name, _, default in ACTIVE_HASH_FIELDS)
    return (job_id, token, now, *values)


@needs_compiled
@PARITY
@given(FIELD_STRATEGIES["text"], wire_ints, st.lists(active_job, max_size=4))
def test_decode_active(token: tuple[bytes, str], now: int, jobs: list[Any]) -> None:
    assert len(ACTIVE_HASH_FIELDS) + 3 == _pure.ACTIVE_FIELDS, "the record layout changed: update ACTIVE_HASH_FIELDS"
    flat = [token[0], *(item for job in jobs for item in wire_job(job))]
    blob = msgpack.packb(flat, use_bin_type=False)
    kind, _, result = same("decode_active", blob, now)
    assert kind == "returns"
    assert result == repr([expected_record(job, token[1], now) for job in jobs])


odd_numbers = st.sampled_from([b"+5", b" 5", b"1_0", b"007", b"-0", b"9" * 19, b"-", b"", b"\xff", b"1.5"])


@needs_compiled
@PARITY
@given(st.lists(st.tuples(st.sampled_from([b"ts", b"at", b"am", b"p", b"dl", b"to", b"rc", b"rf", b"n"]), odd_numbers),
                max_size=4))
def test_decode_active_numbers_in_odd_text(fields: list[tuple[bytes, bytes]]) -> None:
    """Text that int() reads but that is not plain digits (and text it refuses) decodes the same
    in both twins: the compiled reader hands anything unusual to the general path."""
    blob = msgpack.packb([b"t", b"1", [item for pair in fields for item in pair]], use_bin_type=False)
    same("decode_active", blob, 5)


wire_items = st.one_of(
    st.binary(max_size=8),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.none(),
    st.booleans(),
    st.floats(),
    st.just(b"\xff\xfe"),
    st.lists(in_range_ints, max_size=2),
    good_values.map(_pure.pack),
)


@needs_compiled
@PARITY
@given(
    st.one_of(
        st.binary(max_size=80),
        st.lists(wire_items, max_size=32).map(lambda flat: msgpack.packb(flat, use_bin_type=False)),
        st.lists(active_job, min_size=1, max_size=2).map(
            lambda jobs: msgpack.packb([b"t", *(i for job in jobs for i in wire_job(job))][:-1], use_bin_type=False)
        ),
        st.lists(st.lists(wire_items, max_size=5), max_size=3).map(
            lambda hashes: msgpack.packb([b"t", *(i for h in hashes for i in (b"id", h))], use_bin_type=False)
        ),
        st.dictionaries(st.binary(max_size=3), in_range_ints, max_size=3).map(msgpack.packb),
        scalars.map(lambda v: msgpack.packb(v, use_bin_type=False)),
    )
)
def test_decode_active_malformed(blob: bytes) -> None:
    same("decode_active", blob, 1)


@needs_compiled
@pytest.mark.parametrize("blob", [None, b"", bytearray(msgpack.packb([])), "text", 7, [b"x"]], ids=repr)
def test_decode_active_odd_containers(blob: Any) -> None:
    same("decode_active", blob, 1)


# -- hash_to_dict --------------------------------------------------------------------------------


@needs_compiled
@PARITY
@given(st.dictionaries(st.text(max_size=6), st.binary(max_size=8), max_size=8))
def test_hash_to_dict(fields: dict[str, bytes]) -> None:
    flat = [item for key, value in fields.items() for item in (key.encode(), value)]
    kind, _, result = same("hash_to_dict", flat)
    assert kind == "returns" and result == repr(fields)


@needs_compiled
@PARITY
@given(st.lists(wire_items, max_size=9))
def test_hash_to_dict_malformed(flat: list[Any]) -> None:
    same("hash_to_dict", flat)


@needs_compiled
@pytest.mark.parametrize("flat", [[], (b"a", b"1"), None, b"ab", [b"a", b"1", b"a", b"2"]], ids=repr)
def test_hash_to_dict_odd_containers(flat: Any) -> None:
    same("hash_to_dict", flat)


# -- encode_finished -----------------------------------------------------------------------------

completion_entries = st.tuples(
    st.text(min_size=1, max_size=8),  # id
    st.text(max_size=8),  # token
    st.just("c"),  # kind
    st.binary(max_size=16),  # payload (return value)
    st.integers(min_value=0, max_value=100).map(str),  # attempts_made
    st.integers(min_value=-1, max_value=1000),  # keep
)
failure_entries = st.tuples(
    st.text(min_size=1, max_size=8),  # id
    st.text(max_size=8),  # token
    st.sampled_from(["f", "r"]),  # kind
    st.binary(max_size=16),  # payload (reason)
    st.integers(min_value=0, max_value=100).map(str),  # attempts_made
    st.integers(min_value=-1, max_value=1000),  # keep
    st.binary(max_size=16),  # extra (stack)
    wire_ints,  # retry_ms
    st.integers(min_value=0, max_value=2**21),  # priority
)
finished_entries = completion_entries | failure_entries


@needs_compiled
@PARITY
@given(st.lists(finished_entries, max_size=5))
def test_encode_finished(entries: list[tuple[Any, ...]]) -> None:
    kind, _, _ = same("encode_finished", entries)
    assert kind == "returns"
    packed = _pure.encode_finished(entries)
    if entries:
        wire = [tuple(field.encode() if isinstance(field, str) else field for field in entry) for entry in entries]
        flat = msgpack.unpackb(packed, raw=True)  # str and bytes both travel as msgpack str
        assert ungroup(flat) == wire
        runs = 1 + sum(1 for a, b in itertools.pairwise(wire) if (a[1], a[5], a[2]) != (b[1], b[5], b[2]))
        assert len(groups(flat)) == runs  # one group per run of entries sharing token, keep, kind
    else:
        assert packed == b""


def groups(flat: list[Any]) -> list[tuple[Any, Any, Any, list[list[Any]]]]:
    """The groups of an encoded finished batch: (token, keep, kind, rows)."""
    out, i = [], 0
    while i < len(flat):
        token, keep, kind, count = flat[i : i + 4]
        i += 4
        width = 3 if kind == b"c" else 6
        out.append((token, keep, kind, [flat[i + k * width : i + (k + 1) * width] for k in range(count)]))
        i += count * width
    assert i == len(flat)
    return out


def ungroup(flat: list[Any]) -> list[tuple[Any, ...]]:
    """The entries an encoded finished batch was made of."""
    return [
        (row[0], token, kind, row[2], row[1], keep, *row[3:])
        for token, keep, kind, rows in groups(flat)
        for row in rows
    ]


@needs_compiled
@pytest.mark.parametrize("short", [("a", "t", "f", b"r", "1", -1), ("a", "t", "c", b"r", "1", -1, b"", 0, 0)], ids=repr)
def test_encode_finished_rejects_an_entry_of_the_wrong_width(short: tuple[Any, ...]) -> None:
    for module in (_pure, compiled):
        with pytest.raises(ValueError, match="finished entry"):
            module.encode_finished([short])


@needs_compiled
@PARITY
@given(
    st.lists(st.one_of(finished_entries.map(list), scalars, st.tuples(unsupported), st.tuples(big_ints)), max_size=3)
)
def test_encode_finished_malformed(entries: list[Any]) -> None:
    same("encode_finished", entries)


@needs_compiled
@pytest.mark.parametrize("n", LENGTH_EDGES)
def test_encode_finished_length_and_int_edges(n: int) -> None:
    text, raw = "é" * (n // 2) + "x" * (n % 2), b"\x01" * n
    entries = [(text, "t", "c", raw, "1", value) for value in INT_EDGES]
    entries.append(("id", text, "f", raw, str(n), -1, raw, -n, n))
    same("encode_finished", entries)


@needs_compiled
@pytest.mark.parametrize("entries", [[], (), None, 0, [("a",)], [("\ud800",)]], ids=repr)
def test_encode_finished_odd_containers(entries: Any) -> None:
    same("encode_finished", entries)
