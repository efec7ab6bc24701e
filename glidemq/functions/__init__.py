"""The server-side function library: its source and versioned function names."""

from __future__ import annotations

from importlib import resources

LIBRARY_VERSION = 6
LIBRARY_NAME = f"glidemq_{LIBRARY_VERSION}"


def function_name(name: str) -> str:
    """The full name of one library function, e.g. ``glidemq_4_take``."""
    return f"{LIBRARY_NAME}_{name}"


def call_keys(base: str) -> list[str]:
    """The keys every FCALL declares: the queue's key base (never a key of its own) and its id
    counter, both in the queue's slot.

    The functions use only the first and derive the others from it. Declaring two keys, one of
    which never exists, makes a node whose slot is half way through a classic migration
    (``SETSLOT MIGRATING``/``IMPORTING``) answer ``TRYAGAIN`` instead of running the function
    against part of the queue's keys; the caller retries until the slot has moved.
    """
    return [base, base + "id"]


def library_source() -> str:
    """The Lua source to hand to FUNCTION LOAD."""
    text = resources.files(__package__).joinpath("glidemq.lua").read_text(encoding="utf-8")
    return text.replace("glidemq___V__", LIBRARY_NAME)
