"""``recfast.show_config()``: what runs here and why."""

from __future__ import annotations

import platform
import sys


def show_config(file=None) -> None:
    """Print the version, every backend (live or not, and why), the SIMD level and thread counts."""
    import numpy as np

    from recfast import __version__
    from recfast._backends import backends, cpu_module
    from recfast._threads import get_num_threads

    out = file or sys.stdout
    mod = cpu_module()
    print(
        f"recfast {__version__} (Python {platform.python_version()}, NumPy {np.__version__}, "
        f"{platform.machine()})",
        file=out,
    )
    print("backends:", file=out)
    for b in backends():
        print(f"  {b.name:<10} {'live' if b.available else 'unavailable: ' + b.reason}", file=out)
    if mod is not None:
        import recfast._cpu_backend  # noqa: F401  (installs the BLAS)
        from recfast import _blas

        print(
            f"cpu SIMD level: {mod.simd_level()}; OpenMP: {'yes' if mod.openmp else 'no'}; "
            f"GEMM in native kernels: {_blas.source}",
            file=out,
        )
    print(
        f"threads: {get_num_threads()} (recfast.set_num_threads / num_threads= / "
        "OMP_NUM_THREADS / threadpoolctl)",
        file=out,
    )
    try:
        import numba

        print(f"numba {numba.__version__}, {numba.config.NUMBA_NUM_THREADS} threads max", file=out)
    except Exception:
        pass
