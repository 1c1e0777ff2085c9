"""Build the optional Cython extensions in ``src/hs/_native``.

Every extension has a pure-Python twin, so a failed or impossible build is not fatal:
setup falls back to a pure-Python install and says so. ``HS_NO_EXTENSIONS=1`` skips the
build entirely (and, at run time, forces the pure twins).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
NATIVE = HERE / "src" / "hs" / "_native"
NO_EXTENSIONS = bool(os.environ.get("HS_NO_EXTENSIONS"))
# Set by CI and cibuildwheel so that a broken build fails loudly instead of falling back.
REQUIRE_EXTENSIONS = bool(os.environ.get("HS_REQUIRE_EXTENSIONS"))


def _extensions() -> list:
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        if REQUIRE_EXTENSIONS:
            raise
        print("hs: Cython not available, installing the pure-Python twins only", file=sys.stderr)
        return []
    from setuptools import Extension

    modules = []
    for pyx in sorted(NATIVE.glob("_*_c.pyx")):
        name = "hs._native." + pyx.stem
        modules.append(
            Extension(
                name,
                [str(pyx.relative_to(HERE))],
                extra_compile_args=["-O3"] if sys.platform != "win32" else [],
            )
        )
    return cythonize(
        modules,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
        },
        quiet=True,
    )


class OptionalBuildExt(build_ext):
    """Keep installing when a C compiler is missing or an extension fails to build."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "pure Python"
            if REQUIRE_EXTENSIONS:
                raise
            print(f"hs: building the native extensions failed ({exc}); using pure Python",
                  file=sys.stderr)

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            if REQUIRE_EXTENSIONS:
                raise
            print(f"hs: building {ext.name} failed ({exc}); its pure twin will be used",
                  file=sys.stderr)


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
