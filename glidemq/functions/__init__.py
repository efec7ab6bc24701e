"""The server-side function library: its source and versioned function names."""

from __future__ import annotations

from importlib import resources

LIBRARY_VERSION = 1
LIBRARY_NAME = f"glidemq_{LIBRARY_VERSION}"


def function_name(name: str) -> str:
    """The full name of one library function, e.g. ``glidemq_1_take``."""
    return f"{LIBRARY_NAME}_{name}"


def library_source() -> str:
    """The Lua source to hand to FUNCTION LOAD."""
    text = resources.files(__package__).joinpath("glidemq.lua").read_text(encoding="utf-8")
    return text.replace("glidemq___V__", LIBRARY_NAME)
