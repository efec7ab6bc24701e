"""Compiled codec against its pure-Python twin, on the work a job's trip needs.

    python bench/codec.py [--jobs 50] [--rounds 3000]

Times each codec function of ``glidemq._speedups`` and ``glidemq._pure`` on the same input
(a batch of ``--jobs`` jobs, as ``add`` and ``take`` carry them) and prints µs per call and
the ratio. Needs the compiled codec built (``python setup.py build_ext --inplace``).
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from typing import Any

import msgpack

from glidemq import _pure
from glidemq.options import encode_item

try:
    from glidemq import _speedups
except ImportError:
    _speedups = None  # type: ignore[assignment]

DATA = {"user": 42, "email": "a@b.c", "tags": ["x", "y"], "score": 1.5}


def inputs(jobs: int) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Per scenario: the function and its arguments."""
    packed = _pure.pack(DATA)
    plain: list[tuple[Any, ...]] = [("", "email", packed, 0, 0, 1, "", 0, False, -1, -1, {}) for _ in range(jobs)]
    with_options: tuple[Any, ...] = ("", "email", packed, 1000, 2, 3, "e:500:0.1", 30000, False, 100, -1, {})
    options = [with_options] * jobs
    activated: list[Any] = [b"17-1732812345678"]
    fields = [b"n", b"email", b"d", packed, b"ts", b"1732812345678", b"s", b"waiting"]
    for i in range(jobs):
        activated += [str(10_000 + i).encode(), fields]
    finished = [(str(i), "17-1732812345678", "c", b"\xc0", "1", -1) for i in range(jobs)]
    items = [("email", DATA)] * jobs
    return {
        "encode_jobs (add_bulk's items)": ("encode_jobs", (items, 1 << 20, encode_item)),
        "encode_add_batch, default options": ("encode_add_batch", (plain,)),
        "encode_add_batch, with options": ("encode_add_batch", (options,)),
        "decode_active": ("decode_active", (msgpack.packb(activated, use_bin_type=False), 1732812345999)),
        "encode_finished": ("encode_finished", (finished,)),
        "pack (one job's data)": ("pack", (DATA,)),
        "unpack (one job's data)": ("unpack", (packed,)),
    }


def per_call(func: Callable[..., Any], args: tuple[Any, ...], rounds: int) -> float:
    """Best of three timings, µs per call."""
    return min(timeit.repeat(lambda: func(*args), number=rounds, repeat=3)) / rounds * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="compiled codec against the pure twin")
    parser.add_argument("--jobs", type=int, default=50, help="jobs per batch (default 50, a worker's batch)")
    parser.add_argument("--rounds", type=int, default=3000, help="calls per timing (default 3000)")
    args = parser.parse_args(argv)
    if _speedups is None:
        print("the compiled codec is not built: python setup.py build_ext --inplace", file=sys.stderr)
        return 1
    print(f"{'function':<36} {'compiled µs':>12} {'pure µs':>10} {'ratio':>7}")
    for label, (name, call_args) in inputs(args.jobs).items():
        compiled = per_call(getattr(_speedups, name), call_args, args.rounds)
        pure = per_call(getattr(_pure, name), call_args, args.rounds)
        print(f"{label:<36} {compiled:>12.2f} {pure:>10.2f} {pure / compiled:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
