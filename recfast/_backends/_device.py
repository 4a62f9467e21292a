"""Device arrays for the ``cuda`` and ``cupy`` backends: pointers, checks, streams, allocation.

Both GPU backends take CuPy arrays and PyTorch CUDA tensors (anything with
``__cuda_array_interface__``). Before a pointer reaches a kernel this module checks what the
interface says: the dtype (typestr), C-contiguity (strides), the read-only flag of outputs, and
that every array of a call lives on one device. Kernels run on the caller's current stream (CuPy's
or PyTorch's), and results are allocated by the caller's library (CuPy's memory pool, PyTorch's
caching allocator), never as managed memory. Nothing here imports CuPy or PyTorch by itself.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

_TYPESTR = {"<f2": "float16", "<f4": "float32", "<f8": "float64", "<i4": "int32", "<i8": "int64"}


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch")


def interface(a: Any, name: str) -> dict:
    try:
        return a.__cuda_array_interface__
    except AttributeError:
        raise TypeError(
            f"{name} must be a CUDA device array (CuPy array or PyTorch CUDA tensor), got "
            f"{type(a).__module__}.{type(a).__name__}"
        ) from None


def pointer(a: Any, name: str, *, writable: bool = False, dtype: str | None = None) -> int:
    """The device address of ``a`` (0 for None) after checking its ``__cuda_array_interface__``:
    dtype, C-contiguous strides, and (for outputs) the read-only flag."""
    if a is None:
        return 0
    ci = interface(a, name)
    got = _TYPESTR.get(ci["typestr"], ci["typestr"])
    if dtype is not None and got != dtype:
        raise TypeError(f"{name} must be {dtype}, got {got}")
    shape, strides = tuple(ci["shape"]), ci.get("strides")
    if strides is not None:
        itemsize = int(ci["typestr"][2:])
        expect = itemsize
        for n, s in zip(reversed(shape), reversed(strides)):
            if n != 1 and s != expect:
                raise ValueError(
                    f"{name} must be C-contiguous on the device, got strides {tuple(strides)} for "
                    f"shape {shape}; pass a contiguous copy (e.g. cupy.ascontiguousarray)"
                )
            expect *= n
    ptr, readonly = ci["data"]
    if writable and readonly:
        raise ValueError(f"{name} is a read-only device array but is written in place")
    return int(ptr or 0)


def dtype_name(a: Any, name: str = "array") -> str:
    ci = interface(a, name)
    return _TYPESTR.get(ci["typestr"], ci["typestr"])


def device_id(a: Any) -> int:
    if _is_torch(a):
        return int(a.device.index or 0)
    dev = getattr(a, "device", None)
    if dev is not None and hasattr(dev, "id"):
        return int(dev.id)
    return 0


def same_device(arrays: dict[str, Any]) -> int:
    """The one device all given arrays live on; ValueError naming two that differ."""
    found: tuple[str, int] | None = None
    for name, a in arrays.items():
        if a is None:
            continue
        d = device_id(a)
        if found is None:
            found = (name, d)
        elif d != found[1]:
            raise ValueError(
                f"arrays on two devices: {found[0]} is on GPU {found[1]} but {name} is on GPU "
                f"{d}; move them to one device"
            )
    return found[1] if found is not None else 0


def current_stream(a: Any) -> int:
    """The caller's current stream for ``a``'s library, as an integer handle."""
    if _is_torch(a):
        torch = sys.modules["torch"]
        return int(torch.cuda.current_stream(a.device).cuda_stream)
    cupy = sys.modules["cupy"]
    return int(cupy.cuda.get_current_stream().ptr)


@contextlib.contextmanager
def on_device(a: Any) -> Iterator[None]:
    """Make ``a``'s device current (kernels launch there)."""
    if _is_torch(a):
        with sys.modules["torch"].cuda.device(a.device):
            yield
    elif "cupy" in sys.modules:
        with sys.modules["cupy"].cuda.Device(device_id(a)):
            yield
    else:  # pragma: no cover - a bare __cuda_array_interface__ object
        yield


def empty(like: Any, shape: tuple[int, ...], dtype: str, zero: bool = False) -> Any:
    """A new device array of the caller's library, on ``like``'s device."""
    if _is_torch(like):
        torch = sys.modules["torch"]
        make = torch.zeros if zero else torch.empty
        return make(shape, dtype=getattr(torch, dtype), device=like.device)
    cupy = sys.modules["cupy"]
    return (cupy.zeros if zero else cupy.empty)(shape, dtype=np.dtype(dtype))


def matmul_into(a: Any, b: Any, out: Any) -> Any:
    """out = a @ b through the caller's library (cuBLAS), on its current stream."""
    if _is_torch(out):
        return sys.modules["torch"].matmul(a, b, out=out)
    return sys.modules["cupy"].matmul(a, b, out=out)


def host_values(a: Any) -> np.ndarray:
    """Copy a small device array to the host (waits for its stream)."""
    return a.cpu().numpy() if _is_torch(a) else a.get()


def mf_pointers(a: Any) -> dict[str, int]:
    """The epoch's arrays by name, checked (one device, contiguous, outputs writable)."""
    named = {"rows": a.rows, "cols": a.cols, "values": a.values, "user_factors": a.user_factors,
             "item_factors": a.item_factors, "user_bias": a.user_bias, "item_bias": a.item_bias,
             "user_accum": a.user_accum, "item_accum": a.item_accum, "order": a.order,
             "block_ptr": a.block_ptr}  # fmt: skip
    same_device(named)
    writable = {
        "user_factors",
        "item_factors",
        "user_bias",
        "item_bias",
        "user_accum",
        "item_accum",
    }
    return {n: pointer(v, n, writable=n in writable) for n, v in named.items()}
