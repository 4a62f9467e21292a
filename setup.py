"""Build the optional C++ extension ``recfast._cpu`` (metadata lives in pyproject.toml).

Environment switches:
  RECFAST_BUILD_EXT=0    skip the extension; recfast then runs on its Numba fallback.
  RECFAST_REQUIRE_EXT=1  a failed native build is fatal (CI sets it, so CI never passes on the fallback).
  RECFAST_NATIVE=1       add -march=native (the default build picks AVX-512/AVX2 at run time instead).
  RECFAST_SANITIZE=1     build with -fsanitize=address,undefined (for the CI sanitizer job).
"""

import os
import re
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'^version\s*=\s*"([^"]+)"', (HERE / "pyproject.toml").read_text(), re.M).group(1)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class OptionalBuildExt(build_ext):
    """Build the extension; on failure warn and fall back unless RECFAST_REQUIRE_EXT=1."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all ends up here
            self._failed(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._failed(exc)

    def _failed(self, exc):
        if env_flag("RECFAST_REQUIRE_EXT"):
            raise
        print(f"WARNING: recfast native extension not built ({exc}); using the Numba fallback.",
              file=sys.stderr)


def extensions():
    if os.environ.get("RECFAST_BUILD_EXT", "1").strip() == "0":
        return []
    try:
        from pybind11.setup_helpers import Pybind11Extension
    except ImportError:
        if env_flag("RECFAST_REQUIRE_EXT"):
            raise
        return []
    # -fno-trapping-math lets GCC if-convert (and so vectorize) the branch-free selects of
    # fastmath.hpp; nothing here reads floating-point exception flags.
    cflags = ["-O3", "-fvisibility=hidden", "-fopenmp", "-fno-math-errno", "-fno-trapping-math"]
    cflags += ["-ffp-contract=fast"]
    lflags = ["-fopenmp"]
    if env_flag("RECFAST_NATIVE"):
        cflags.append("-march=native")
    if env_flag("RECFAST_SANITIZE"):
        san = "-fsanitize=address,undefined"
        cflags = [f for f in cflags if f != "-O3"]
        cflags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fno-wrapv", san]
        lflags.append(san)
    sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*/*.cpp"))
    # cxx_std is explicit: pybind11's probe raises "Unsupported compiler" when no compiler exists.
    return [
        Pybind11Extension(
            "recfast._cpu",
            sources,
            include_dirs=["csrc/include"],
            define_macros=[("VERSION_INFO", f'"{VERSION}"')],
            extra_compile_args=cflags,
            extra_link_args=lflags,
            cxx_std=17,
        )
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
