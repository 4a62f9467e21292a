"""The ``cuda`` backend: hand-written CUDA kernels in the extension ``recfast._cuda``.

``recfast._cuda`` links the CUDA runtime statically, so it imports on a machine with no GPU or
driver; the probe then reports the runtime's reason ("no CUDA device (...)") instead of failing.
"""

from __future__ import annotations

import importlib
import os


def probe() -> str:
    if os.environ.get("RECFAST_DISABLE_EXT", "").strip() == "1":
        return "disabled by RECFAST_DISABLE_EXT=1"
    try:
        mod = importlib.import_module("recfast._cuda")
    except ImportError as exc:
        if "No module named" in str(exc):
            return "the CUDA extension recfast._cuda is not part of this build (built when nvcc is found)"
        return f"recfast._cuda cannot be loaded ({exc})"
    from recfast import __version__

    if mod.__version__ != __version__:
        return f"recfast._cuda is version {mod.__version__}, the package {__version__}: rebuild"
    return mod.device_status()
