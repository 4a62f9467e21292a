"""``recfast.show_config()``: what runs here and why."""

from __future__ import annotations

import platform
import sys


def show_config(file=None) -> None:
    """Print the version, every backend (live or not, and why), the op x backend matrix, which
    backend NumPy input gets for each op, the SIMD level and thread counts."""
    import numpy as np

    from recfast import __version__
    from recfast import _registry as reg
    from recfast._backends import backends, cpu_module, select
    from recfast._threads import get_num_threads

    out = file or sys.stdout
    mod = cpu_module()
    print(
        f"recfast {__version__} (Python {platform.python_version()}, NumPy {np.__version__}, "
        f"{platform.machine()})",
        file=out,
    )
    infos = backends()
    print("backends:", file=out)
    for b in infos:
        state = "live" if b.available else "unavailable: " + b.reason
        print(f"  {b.name:<10} {b.device:<5} {state}", file=out)
    width = max(len(op) for op in reg.OPS)
    print(
        "ops (x: implemented and live, o: implemented but not live, -: not implemented;", file=out
    )
    print("     'runs' is the backend NumPy arrays get):", file=out)
    print(f"  {'':<{width}} " + " ".join(f"{b.name:>9}" for b in infos) + "  runs", file=out)
    for op in reg.OPS:
        cells = []
        for b in infos:
            mark = "-" if op not in b.ops else ("x" if b.available else "o")
            cells.append(f"{mark:>9}")
        try:
            runs = select(op)[0]
        except Exception as exc:  # nothing live: say so instead of failing
            runs = f"none ({type(exc).__name__})"
        print(f"  {op:<{width}} " + " ".join(cells) + f"  {runs}", file=out)
    if mod is not None:
        from recfast._backends.cpu import _blas, _native  # noqa: F401  (_native installs the BLAS)

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
    try:  # issue 10: which CUDA runtime the GPU extension carries, and the devices it sees
        import recfast._cuda as cu  # type: ignore[import-not-found]

        status = cu.device_status() or f"{cu.device_count()} device(s)"
        print(f"recfast._cuda: CUDA runtime {cu.runtime_version()} (static); {status}", file=out)
    except Exception:
        pass
