"""The ``cuda`` backend: hand-written CUDA kernels in the extension ``recfast._cuda``."""

from __future__ import annotations

import importlib


def probe() -> str:
    try:
        importlib.import_module("recfast._cuda")
    except ImportError:
        return "the CUDA extension recfast._cuda is not part of this build"
    return ""
