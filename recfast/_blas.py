"""Hands SciPy's BLAS to the C++ kernels: the ``sgemm``/``dgemm`` pointers that
``scipy.linalg.cython_blas`` exports, and its OpenBLAS's thread-count setter, so the native
sequence and convolution kernels call a tuned GEMM without linking one at build time."""

from __future__ import annotations

import ctypes
from types import ModuleType

# Names under which SciPy's bundled OpenBLAS (and a plain system OpenBLAS) export the pool setter.
_SETTERS = (
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
)


def thread_functions() -> tuple[int, int]:
    """Addresses of the BLAS's (set, get) thread-count functions, or (0, 0)."""
    try:
        from scipy.linalg import cython_blas

        lib = ctypes.CDLL(cython_blas.__file__)  # dlsym through it searches its dependencies
    except (ImportError, OSError):
        return 0, 0
    for set_name, get_name in _SETTERS:
        try:
            setter, getter = getattr(lib, set_name), getattr(lib, get_name)
        except AttributeError:
            continue
        as_int = ctypes.cast  # function pointers to integers
        return (
            int(as_int(setter, ctypes.c_void_p).value or 0),
            int(as_int(getter, ctypes.c_void_p).value or 0),
        )
    return 0, 0


def install(cpu: ModuleType) -> bool:
    """Install SciPy's GEMM into ``recfast._cpu``; False (fallback loop kept) if SciPy lacks it."""
    try:
        from scipy.linalg import cython_blas

        caps = cython_blas.__pyx_capi__
        sgemm, dgemm = caps["sgemm"], caps["dgemm"]
    except (ImportError, AttributeError, KeyError):
        return False
    cpu.blas_install(sgemm, dgemm, *thread_functions())
    return bool(cpu.blas_installed())
