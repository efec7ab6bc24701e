"""Picks the codec once at import: compiled ``_speedups`` if built, else ``_pure``.

``GLIDEMQ_NO_EXTENSIONS=1`` forces the pure twin.
"""

from __future__ import annotations

import os

USE_EXTENSIONS = os.environ.get("GLIDEMQ_NO_EXTENSIONS", "") in ("", "0")

if USE_EXTENSIONS:
    try:
        from ._speedups import (
            decode_active,
            encode_add_batch,
            encode_finished,
            encode_jobs,
            hash_to_dict,
            pack,
            unpack,
        )
    except ImportError:
        USE_EXTENSIONS = False

if not USE_EXTENSIONS:
    from ._pure import decode_active, encode_add_batch, encode_finished, encode_jobs, hash_to_dict, pack, unpack

__all__ = [
    "USE_EXTENSIONS", "decode_active", "encode_add_batch", "encode_finished", "encode_jobs", "hash_to_dict", "pack",
    "unpack",
]
