"""The ``cupy`` backend: the GPU fallback when ``recfast._cuda`` is not built (CuPy array ops and
the same kernel sources compiled at run time with NVRTC)."""

from __future__ import annotations

import importlib


def probe() -> str:
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:
        return f"cupy not importable ({type(exc).__name__})"
    try:
        if not cupy.is_available():
            return "cupy is installed but sees no CUDA device"
    except Exception as exc:  # pragma: no cover - driver trouble
        return f"cupy cannot reach a device ({exc})"
    return ""
