"""Build the optional C++ extension ``recfast._cpu`` (metadata lives in pyproject.toml).

Environment switches:
  RECFAST_BUILD_EXT=0    skip the extension; recfast then runs on its Numba fallback.
  RECFAST_REQUIRE_EXT=1  a failed native build is fatal (CI sets it, so CI never passes on the fallback).
  RECFAST_NATIVE=1       add -march=native (the default build picks AVX-512/AVX2 at run time instead).
  RECFAST_SANITIZE=1     build with -fsanitize=address,undefined (for the CI sanitizer job).
  RECFAST_BUILD_JOBS=n   compile n sources at a time (default: one per core; pybind11's ParallelCompile,
                         so setuptools stays the backend and no CMake/ninja is needed).
  RECFAST_CUDA=auto|0|1  build recfast._cuda when nvcc is found (auto: a failed CUDA build only warns;
                         1: nvcc missing or a failed CUDA build is fatal; 0: never).
  RECFAST_CUDA_ARCH      nvcc -gencode list, e.g. "90" or "80;90" (default: sm_80, sm_90 + compute_90 PTX).
  RECFAST_CUDA_PTXAS_LOG=path  keep nvcc's -Xptxas -v register/spill report there (CI reads it).
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
VERSION = re.search(r'^version\s*=\s*"([^"]+)"', (HERE / "pyproject.toml").read_text(), re.M).group(1)
CSRC = HERE / "csrc"
# Each extension's sources, by folder: its kernels, then its bindings. The .cu kernels of
# recfast._cuda go through nvcc (cuda_objects) and are linked into the g++-built bindings.
EXTENSIONS = {
    "recfast._cpu": ("csrc/cpu", "csrc/bindings/cpu"),
    "recfast._cuda": ("csrc/cuda", "csrc/bindings/cuda"),
}
KERNELS = HERE / "recfast" / "_kernels"  # the .cuh GPU sources, shipped for the cupy backend
HEADER_SUFFIXES = (".h", ".hpp", ".inc", ".cuh")


def rel(path: Path) -> str:
    return str(path.relative_to(HERE))


def sources(folders) -> list:
    return [rel(p) for folder in folders for p in sorted((HERE / folder).glob("*.cpp"))]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class CudaBuildError(RuntimeError):
    """recfast._cuda failed to build with RECFAST_CUDA=1: always fatal."""


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
        except CudaBuildError:
            raise
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
            if ext.name == "recfast._cuda":
                ext.extra_objects = cuda_objects(Path(self.build_temp) / "cuda")
                ext.depends = ext.depends + ext.extra_objects  # a new object relinks the module
            super().build_extension(ext)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(config_key())
        except Exception as exc:
            if ext.name != "recfast._cuda":
                self._failed(exc)
            elif cuda_mode() == "1":
                raise CudaBuildError(f"recfast._cuda failed to build (RECFAST_CUDA=1): {exc}") from exc
            else:
                print(f"WARNING: recfast._cuda not built ({exc}); the cupy backend remains.",
                      file=sys.stderr)
        finally:
            self.force = force

    def _failed(self, exc):
        if env_flag("RECFAST_REQUIRE_EXT"):
            raise
        print(f"WARNING: recfast native extension not built ({exc}); using the Numba fallback.",
              file=sys.stderr)


def cuda_mode() -> str:
    return os.environ.get("RECFAST_CUDA", "auto").strip().lower()


def nvcc_path():
    home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    found = shutil.which("nvcc") or (home and shutil.which("nvcc", path=str(Path(home) / "bin")))
    return str(Path(found).resolve()) if found else None


def cuda_objects(tmp: Path) -> list:
    """nvcc each csrc/cuda/*.cu into tmp (skipping objects newer than every source they read)."""
    nvcc = nvcc_path()
    archs = os.environ.get("RECFAST_CUDA_ARCH", "").replace(",", ";").split(";")
    archs = [a.strip() for a in archs if a.strip()] or ["80", "90"]
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    gencode.append(f"-gencode=arch=compute_{archs[-1]},code=compute_{archs[-1]}")  # PTX for later GPUs
    flags = ["-O3", "-std=c++17", "-Xcompiler=-fPIC,-fvisibility=hidden", "-Xfatbin=-compress-all",
             "-Icsrc/include", f"-I{rel(KERNELS)}", "-Xptxas=-v", *gencode]
    log_path = os.environ.get("RECFAST_CUDA_PTXAS_LOG")
    deps = [p for p in [*CSRC.rglob("*"), *KERNELS.glob("*.cuh")] if p.suffix in HEADER_SUFFIXES]
    newest = max(p.stat().st_mtime for p in deps)
    tmp.mkdir(parents=True, exist_ok=True)
    units = sorted((CSRC / "cuda").glob("*.cu"))
    objs = [tmp / (cu.stem + ".o") for cu in units]
    todo = [(cu, o) for cu, o in zip(units, objs)
            if not (o.exists() and o.stat().st_mtime > max(newest, cu.stat().st_mtime))]

    def compile_one(job):
        cu, obj = job
        print(f"nvcc {rel(cu)}", file=sys.stderr)
        r = subprocess.run([nvcc, *flags, "-c", rel(cu), "-o", str(obj)], cwd=HERE,
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"nvcc failed on {rel(cu)}:\n{r.stderr[-4000:]}")
        return f"### {rel(cu)}\n{r.stderr}"

    jobs = int(os.environ.get("RECFAST_BUILD_JOBS") or os.cpu_count() or 1)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max(1, jobs)) as pool:  # nvcc runs as a subprocess: threads suffice
        log = list(pool.map(compile_one, todo))
    objs = [str(o) for o in objs]
    if log_path and log:  # only when something was compiled (CI builds from scratch)
        Path(log_path).write_text("".join(log))
    return objs


def cuda_link_args() -> list:
    # Static cudart: the wheel needs only a driver, and imports without one.
    homes = [os.environ.get("CUDA_HOME"), str(Path(nvcc_path()).parent.parent), "/usr/local/cuda"]
    libs = [Path(h) / "lib64" for h in homes if h]
    lib = next((d for d in libs if (d / "libcudart_static.a").exists()), libs[0])
    return [f"-L{lib}", "-lcudart_static", "-ldl", "-lrt", "-lpthread"]


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
    mode = cuda_mode()
    if mode == "1" and not nvcc_path():
        raise RuntimeError("RECFAST_CUDA=1 but nvcc was not found (put it on PATH or set CUDA_HOME)")
    build_cuda = mode != "0" and nvcc_path() is not None
    cuda_deps = sorted(rel(p) for p in (CSRC / "cuda").glob("*.cu")) + sorted(
        rel(p) for p in KERNELS.glob("*.cuh"))
    return [
        Pybind11Extension(
            name,
            sources(folders),
            include_dirs=["csrc/include"],
            depends=depends + (cuda_deps if name == "recfast._cuda" else []),
            define_macros=[("VERSION_INFO", f'"{VERSION}"')],
            extra_compile_args=cflags,
            extra_link_args=lflags + (cuda_link_args() if name == "recfast._cuda" else []),
            cxx_std=17,
        )
        for name, folders in EXTENSIONS.items()
        if name != "recfast._cuda" or build_cuda
    ]


class BuildPy(build_py):
    """Ship csrc/include/recfast/*.hpp with the .cuh kernels: the cupy backend compiles them with
    NVRTC at run time (an editable install reads csrc/include directly)."""

    def run(self):
        super().run()
        dest = Path(self.build_lib) / "recfast" / "_kernels" / "include" / "recfast"
        dest.mkdir(parents=True, exist_ok=True)
        for h in (CSRC / "include" / "recfast").glob("*.hpp"):
            shutil.copy2(h, dest / h.name)


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy})
