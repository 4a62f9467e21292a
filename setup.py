"""Build the optional C++ extension ``recfast._cpu`` (metadata lives in pyproject.toml).

Environment switches:
  RECFAST_BUILD_EXT=0    skip the extension; recfast then runs on its Numba fallback.
  RECFAST_REQUIRE_EXT=1  a failed native build is fatal (CI sets it, so CI never passes on the fallback).
  RECFAST_NATIVE=1       add -march=native (the default build picks AVX-512/AVX2 at run time instead).
  RECFAST_SANITIZE=1     build with -fsanitize=address,undefined (for the CI sanitizer job).
  RECFAST_BUILD_JOBS=n   compile n sources at a time (default: one per core; pybind11's ParallelCompile,
                         so setuptools stays the backend and no CMake/ninja is needed).
"""

import hashlib
import os
import re
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'^version\s*=\s*"([^"]+)"', (HERE / "pyproject.toml").read_text(), re.M).group(1)
CSRC = HERE / "csrc"
# Each extension's sources, by folder: its kernels, then its bindings. `recfast._cuda` will be the
# second row, ("csrc/cuda", "csrc/bindings/cuda"), built only when nvcc is found.
EXTENSIONS = {
    "recfast._cpu": ("csrc/cpu", "csrc/bindings/cpu"),
}
HEADER_SUFFIXES = (".h", ".hpp", ".inc", ".cuh")


def rel(path: Path) -> str:
    return str(path.relative_to(HERE))


def sources(folders) -> list:
    return [rel(p) for folder in folders for p in sorted((HERE / folder).glob("*.cpp"))]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def flags() -> tuple:
    """(compile flags, link flags) of this configuration."""
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
    return cflags, lflags


def config_key() -> str:
    """Names this build configuration: flags, compiler, Python, version."""
    parts = [*flags()[0], "|", *flags()[1], os.environ.get("CC", ""), os.environ.get("CXX", ""),
             os.environ.get("CFLAGS", ""), sys.version, VERSION]  # fmt: skip
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


class OptionalBuildExt(build_ext):
    """Build the extension; on failure warn and fall back unless RECFAST_REQUIRE_EXT=1.

    Objects go to a build_temp per configuration (config_key), and a module built with another
    configuration is rebuilt even when it is newer than its sources: setuptools alone compares
    only timestamps, so `RECFAST_SANITIZE=1 pip wheel .` after a first build reused the optimized
    module."""

    def finalize_options(self):
        super().finalize_options()
        self.build_temp = f"{self.build_temp}-{config_key()}"

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all ends up here
            self._failed(exc)

    def build_extension(self, ext):
        out = self.get_ext_fullpath(ext.name)
        where = hashlib.sha256(os.path.abspath(out).encode()).hexdigest()[:12]
        stamp = Path(self.build_temp).parent / f"recfast-config-{where}.txt"
        force = self.force
        if not (os.path.exists(out) and stamp.is_file() and stamp.read_text() == config_key()):
            self.force = True  # built with other flags (or never): rebuild whatever the timestamps
        try:
            super().build_extension(ext)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(config_key())
        except Exception as exc:
            self._failed(exc)
        finally:
            self.force = force

    def _failed(self, exc):
        if env_flag("RECFAST_REQUIRE_EXT"):
            raise
        print(f"WARNING: recfast native extension not built ({exc}); using the Numba fallback.",
              file=sys.stderr)


def extensions():
    if os.environ.get("RECFAST_BUILD_EXT", "1").strip() == "0":
        return []
    try:
        from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
    except ImportError:
        if env_flag("RECFAST_REQUIRE_EXT"):
            raise
        return []
    ParallelCompile("RECFAST_BUILD_JOBS").install()  # compile the sources in parallel
    cflags, lflags = flags()
    # Every header and .inc under csrc: an edit to one rebuilds the extensions.
    depends = sorted(rel(p) for p in CSRC.rglob("*") if p.suffix in HEADER_SUFFIXES)
    # cxx_std is explicit: pybind11's probe raises "Unsupported compiler" when no compiler exists.
    return [
        Pybind11Extension(
            name,
            sources(folders),
            include_dirs=["csrc/include"],
            depends=depends,
            define_macros=[("VERSION_INFO", f'"{VERSION}"')],
            extra_compile_args=cflags,
            extra_link_args=lflags,
            cxx_std=17,
        )
        for name, folders in EXTENSIONS.items()
    ]


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
