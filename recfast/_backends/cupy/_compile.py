"""Run-time compilation of recfast/_kernels/*.cuh with ``cupy.RawModule`` (NVRTC), cached per
device and instantiation (dtype, index dtype, coordinates per lane): the `cupy` backend runs the
very sources the `cuda` extension is built from."""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Any

import numpy as np

from recfast._backends import _device as dev
from recfast._backends.cupy import _sources


@functools.cache
def _module(name: str, exprs: tuple[str, ...], device: int) -> Any:
    import cupy

    with cupy.cuda.Device(device):
        mod = cupy.RawModule(
            code=_sources.source(name), options=_sources.options(), name_expressions=exprs
        )
        mod.compile()
    return mod


def _synced(kernel: Any) -> Any:
    """RECFAST_CUDA_SYNC=1: wait for every launch and surface its error there (as the ``cuda``
    backend's launchers do)."""
    import cupy

    def launch(*args: Any, **kw: Any) -> None:
        kernel(*args, **kw)
        cupy.cuda.get_current_stream().synchronize()

    return launch


def kernels(name: str, names: dict[str, str], device: int) -> dict[str, Any]:
    """Kernel file ``name``'s instantiations ``names`` (key -> name expression) on ``device``."""
    mod = _module(name, tuple(sorted(names.values())), device)
    found = {key: mod.get_function(expr) for key, expr in names.items()}
    if os.environ.get("RECFAST_CUDA_SYNC", "") == "1":
        found = {key: _synced(k) for key, k in found.items()}
    return found


@contextmanager
def stream_of(a: Any):
    """CuPy launches on its current stream: make it the caller's (PyTorch's, for a tensor)."""
    import cupy

    if dev._is_torch(a):
        with cupy.cuda.Device(dev.device_id(a)), cupy.cuda.ExternalStream(dev.current_stream(a)):
            yield
    else:
        with cupy.cuda.Device(dev.device_id(a)):
            yield


def ptr(p: int) -> np.uint64:
    """A device pointer as a kernel argument (any array kind; 0 is the null pointer)."""
    return np.uint64(p)


def grid_for(items: int, per_block: int, device: int) -> int:
    import cupy

    sms = cupy.cuda.Device(device).attributes["MultiProcessorCount"]
    return int(max(1, min(-(-items // per_block), sms * 16)))
