"""Builds the optional Cython codec ``glidemq._speedups``.

A failed compile installs the pure-Python twin with a banner, except under
``CIBUILDWHEEL=1`` where it is an error. ``GLIDEMQ_NO_EXTENSIONS=1`` skips the build.
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


class OptionalBuildExt(build_ext):
    """build_ext that falls back to pure Python instead of failing the install."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "install pure"
            self._give_up(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc)

    def _give_up(self, exc: Exception) -> None:
        if STRICT:
            raise exc
        sys.stderr.write(BANNER.format(reason=exc))


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if STRICT:
            raise
        sys.stderr.write(BANNER.format(reason="Cython is not installed"))
        return []
    return list(cythonize([Extension("glidemq._speedups", ["glidemq/_speedups.pyx"])], quiet=True))


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
