"""The ``numba`` backend: the CPU fallback when the C++ extension is not built; the same
algorithms and schedules as the ``cpu`` kernels, JIT-compiled (cached in the user cache folder)."""

from __future__ import annotations

import importlib


def probe() -> str:
    try:
        importlib.import_module("numba")
    except Exception as exc:  # a broken llvmlite raises more than ImportError
        return f"numba not importable ({type(exc).__name__}: {exc})"
    return ""
