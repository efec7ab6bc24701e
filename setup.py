"""Builds the optional Cython codec ``glidemq._speedups``.

A failed build (no Cython, a Cython error, no C compiler, a compile error) installs the
pure-Python twin with a banner, except under ``CIBUILDWHEEL=1`` where it is an error.
``GLIDEMQ_NO_EXTENSIONS=1`` skips the build and gives a pure ``py3-none-any`` wheel.
Everything else (metadata, package data) lives in pyproject.toml.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = os.environ.get("GLIDEMQ_NO_EXTENSIONS", "") not in ("", "0")
STRICT = os.environ.get("CIBUILDWHEEL", "") == "1"
BANNER = """
************************************************************************
  glidemq: the compiled codec could not be built ({reason}).
  Installing the pure-Python version: everything works, a bit slower.
************************************************************************
"""


def give_up(reason: object) -> None:
    """Falls back to pure Python, or re-raises when wheels are being built."""
    if STRICT:
        if isinstance(reason, BaseException):
            raise reason
        raise RuntimeError(f"glidemq: the compiled codec could not be built ({reason})")
    if isinstance(reason, BaseException):
        reason = f"{type(reason).__name__}: {reason}"
    sys.stderr.write(BANNER.format(reason=reason))


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "install pure"
            give_up(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            give_up(exc)


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        return []
    try:
        import Cython  # noqa: F401 - only needed to compile; setuptools' build_ext then cythonizes
    except ImportError:
        give_up("Cython is not installed")
        return []
    # The .pyx is the source: the .c is generated at build time, in the build directory, by the
    # Cython of the build environment. It is never shipped, and a .c left next to the .pyx is
    # never compiled, so a new Python never meets an old generated file.
    speedups = Extension("glidemq._speedups", ["glidemq/_speedups.pyx"])
    speedups.cython_c_in_temp = True  # type: ignore[attr-defined]  # read by Cython's build_ext
    return [speedups]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
