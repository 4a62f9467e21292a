"""The ``cpu`` backend: the C++ kernels of ``recfast._cpu`` (OpenMP, per-ISA SIMD copies), with
thin adapters where an op is a BLAS call followed by a fused native pass."""

from __future__ import annotations

import importlib
import os


def probe() -> str:
    if os.environ.get("RECFAST_DISABLE_EXT", "") == "1":
        return "disabled by RECFAST_DISABLE_EXT=1"
    try:
        mod = importlib.import_module("recfast._cpu")
    except ImportError as exc:
        return f"C++ extension recfast._cpu not built or not importable ({exc})"
    from recfast import __version__

    if mod.__version__ != __version__:
        return f"recfast._cpu is version {mod.__version__}, package is {__version__}: rebuild"
    return ""
