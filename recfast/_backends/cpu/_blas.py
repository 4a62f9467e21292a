"""Hands a tuned BLAS to the C++ kernels, so the native sequence and convolution kernels call a
GEMM without linking one at build time.

First choice: the ILP64 OpenBLAS inside NumPy's wheels (``scipy_sgemm_64_``...; 64-bit sizes, and
measured 1.5-4x faster than SciPy's copy on this project's small and mid-size products). Else the
``sgemm``/``dgemm`` pointers that ``scipy.linalg.cython_blas`` exports. Else the kernels' own
plain loop. The pool's thread-count functions come along so each call can set its count.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from types import ModuleType

# (sgemm, dgemm, sgemv, dgemv, set threads, get threads) in NumPy's bundled ILP64 OpenBLAS.
_NUMPY_OPENBLAS = (
    "scipy_sgemm_64_",
    "scipy_dgemm_64_",
    "scipy_sgemv_64_",
    "scipy_dgemv_64_",
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_get_num_threads64_",
)
# Names under which SciPy's bundled OpenBLAS (and a plain system OpenBLAS) export the pool setter.
_SETTERS = (
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)

source = "none"  # which BLAS the kernels call: "numpy-openblas64", "scipy", or "none"


def _address(lib: ctypes.CDLL, name: str) -> int:
    return int(ctypes.cast(getattr(lib, name), ctypes.c_void_p).value or 0)


def numpy_openblas64() -> tuple[int, ...] | None:
    """Addresses of NumPy's bundled ILP64 OpenBLAS functions, or None when NumPy has none."""
    import numpy

    folder = Path(numpy.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(folder.glob("libscipy_openblas64_*.so*")):
        try:
            lib = ctypes.CDLL(str(path))  # already loaded by NumPy: this only finds it
            return tuple(_address(lib, n) for n in _NUMPY_OPENBLAS)  # type: ignore[return-value]
        except (OSError, AttributeError):
            continue
    return None


def thread_functions() -> tuple[int, int]:
    """Addresses of SciPy's BLAS's (set, get) thread-count functions, or (0, 0)."""
    try:
        from scipy.linalg import cython_blas

        lib = ctypes.CDLL(cython_blas.__file__)  # dlsym through it searches its dependencies
    except (ImportError, OSError):
        return 0, 0
    for set_name, get_name in _SETTERS:
        try:
            return _address(lib, set_name), _address(lib, get_name)
        except AttributeError:
            continue
    return 0, 0


def install_scipy(cpu: ModuleType) -> bool:
    """Install SciPy's cython_blas GEMM; False (nothing changed) if SciPy lacks it."""
    global source
    try:
        from scipy.linalg import cython_blas

        caps = cython_blas.__pyx_capi__
        sgemm, dgemm = caps["sgemm"], caps["dgemm"]
    except (ImportError, AttributeError, KeyError):
        return False
    cpu.blas_install(sgemm, dgemm, *thread_functions())
    source = "scipy"
    return bool(cpu.blas_installed())


def install(cpu: ModuleType) -> bool:
    """Install the best GEMM found into ``recfast._cpu``; False keeps the fallback loop."""
    global source
    found = numpy_openblas64()
    if found is not None:
        cpu.blas_install64(*found)
        source = "numpy-openblas64"
        return True
    return install_scipy(cpu)
