"""Array kinds: which library's arrays a call was given, found once per call.

Every public op starts with :func:`of`. The kind says

* ``xp``: the namespace its arrays are validated and allocated in (after :meth:`ArrayKind.unwrap`);
* ``device``: ``"cpu"`` (host memory: NumPy arrays, PyTorch CPU tensors), ``"cuda"`` (CuPy arrays,
  PyTorch CUDA tensors, any ``__cuda_array_interface__`` object) or ``"other"`` (any other
  array-API namespace, such as ``array_api_strict``); backends are chosen by it;
* how to get from the caller's arrays to the kernels' and back: PyTorch CPU tensors reach the
  kernels as NumPy views of the same memory (``Tensor.numpy()``), and results go back through
  ``torch.from_numpy``, which shares memory too. Nothing is ever copied between host and device.

NumPy and PyTorch are recognised by type (a few hundred nanoseconds); anything else goes through
array-api-compat's ``array_namespace`` (about 2 us, measured), which is why the per-step ops do
not call it for NumPy input.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["NUMPY", "Array", "ArrayKind", "inputs", "of", "kind_named"]

# What the public API takes and returns: a NumPy array, a PyTorch tensor or a CuPy array (any
# array-API array for the reference backend). One alias, so signatures say it once.
Array = Any


class ArrayKind:
    """One library's arrays: how to validate, allocate and convert them."""

    __slots__ = ("name", "device", "xp", "host")

    def __init__(self, name: str, device: str, xp: Any, host: bool) -> None:
        self.name = name
        self.device = device
        self.xp = xp  # None for a bare __cuda_array_interface__ object (no namespace to use)
        self.host = host  # arrays reach the kernels as NumPy arrays

    def __repr__(self) -> str:
        return f"ArrayKind({self.name!r}, device={self.device!r})"

    # The caller's arrays -> the kernels' (identity except for PyTorch CPU tensors).
    def unwrap(self, arrays: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(arrays)

    def unwrap_one(self, a: Any) -> Any:
        return a

    # The kernels' arrays -> the caller's kind (identity except for PyTorch CPU tensors).
    def wrap(self, a: Any) -> Any:
        return a

    def wrap_all(self, obj: Any) -> Any:
        """:meth:`wrap` applied through tuples, lists, dicts and NamedTuples."""
        return obj

    def to_numpy(self, a: Any) -> np.ndarray:
        """A NumPy array holding ``a``'s values (a copy from the device; a view on the host)."""
        return np.asarray(a)

    def from_numpy(self, a: np.ndarray) -> Any:
        return self.xp.asarray(a)


class _TorchCPU(ArrayKind):
    """PyTorch CPU tensors: zero-copy NumPy views in, ``torch.from_numpy`` out."""

    def unwrap(self, arrays: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.unwrap_one(a) for a in arrays)

    def unwrap_one(self, a: Any) -> Any:
        if type(a) is np.ndarray or not _is_torch(a):
            return a
        return _tensor_to_numpy(a)

    def wrap(self, a: Any) -> Any:
        if type(a) is np.ndarray:
            return sys.modules["torch"].from_numpy(a)  # torch is loaded: a tensor came in
        return a

    def wrap_all(self, obj: Any) -> Any:
        if type(obj) is np.ndarray:
            return self.wrap(obj)
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # NamedTuple
            return type(obj)(*(self.wrap_all(v) for v in obj))
        if isinstance(obj, (tuple, list)):
            return type(obj)(self.wrap_all(v) for v in obj)
        if isinstance(obj, dict):
            return {k: self.wrap_all(v) for k, v in obj.items()}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # e.g. RNNCache
            changes = {f.name: self.wrap_all(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
            return dataclasses.replace(obj, **changes)
        return obj

    def to_numpy(self, a: Any) -> np.ndarray:
        return _tensor_to_numpy(a) if _is_torch(a) else np.asarray(a)

    def from_numpy(self, a: np.ndarray) -> Any:
        import torch

        return torch.from_numpy(np.ascontiguousarray(a))


class _Device(ArrayKind):
    """CuPy arrays and PyTorch CUDA tensors: validated and allocated in their own namespace."""

    def to_numpy(self, a: Any) -> np.ndarray:
        if hasattr(a, "get"):  # CuPy
            return a.get()
        return a.detach().cpu().numpy()  # torch


NUMPY = ArrayKind("numpy", "cpu", np, host=True)
_TORCH_CPU = _TorchCPU("torch", "cpu", np, host=True)
_lock = threading.Lock()
_cache: dict[Any, ArrayKind] = {}


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch") and hasattr(a, "requires_grad")


def _tensor_to_numpy(t: Any) -> np.ndarray:
    if t.requires_grad:
        raise TypeError(
            "a torch tensor that requires grad was passed: recfast's ops are not autograd "
            "functions (they compute gradients with their *_backward ops); pass tensor.detach()"
        )
    try:
        return t.numpy()  # a view of the same memory
    except (TypeError, RuntimeError) as exc:  # bfloat16, sparse, conjugate bit ...
        raise TypeError(f"this torch tensor has no NumPy view ({exc})") from None


def _torch_kind(t: Any) -> ArrayKind:
    dev = t.device.type
    key = ("torch", dev)
    kind = _cache.get(key)
    if kind is None:
        with _lock:
            if dev == "cpu":
                kind = _TORCH_CPU
            else:
                from array_api_compat import array_namespace

                name = "torch-cuda" if dev == "cuda" else f"torch-{dev}"
                kind = _Device(
                    name, "cuda" if dev == "cuda" else "other", array_namespace(t), False
                )
            _cache[key] = kind
    if t.requires_grad:
        _tensor_to_numpy(t)  # raises with the .detach() hint, for device tensors too
    return kind


def _namespace_kind(a: Any) -> ArrayKind:
    from array_api_compat import array_namespace

    xp = array_namespace(a)
    kind = _cache.get(xp)
    if kind is None:
        with _lock:
            name = xp.__name__.split(".")[-1]
            if name == "cupy":
                kind = _Device("cupy", "cuda", xp, False)
            else:
                kind = ArrayKind(name, "other", xp, False)
            _cache[xp] = kind
    return kind


CUDA_INTERFACE = _Device("cuda array", "cuda", None, False)


def _kind_of_one(a: Any) -> ArrayKind | None:
    """The kind of one argument, or None when it is no array (a list, a scalar, None)."""
    if isinstance(a, np.ndarray):
        return NUMPY
    if _is_torch(a):
        return _torch_kind(a)
    if hasattr(a, "__array_namespace__") or type(a).__module__.startswith("cupy"):
        return _namespace_kind(a)
    if hasattr(a, "__cuda_array_interface__"):
        return CUDA_INTERFACE
    return None


def _describe(a: Any, kind: ArrayKind) -> str:
    t = type(a)
    dev = f" on {a.device}" if hasattr(a, "device") and kind.device != "cpu" else ""
    return f"{t.__module__.split('.')[0]}.{t.__name__}{dev}"


def of(arrays: Sequence[Any], names: Sequence[str] = ()) -> ArrayKind:
    """The kind of ``arrays`` (None and non-array entries skipped; NumPy when there is none).

    Raises TypeError when two kinds are mixed, naming both, or for a tensor that requires grad.
    """
    for a in arrays:  # the common case, checked fast: NumPy arrays and None only
        if a is not None and type(a) is not np.ndarray:
            break
    else:
        return NUMPY
    found: ArrayKind | None = None
    first = -1
    for j, a in enumerate(arrays):
        if a is None:
            continue
        kind = _kind_of_one(a)
        if kind is None:
            continue
        if found is None:
            found, first = kind, j
        elif kind is not found:
            raise TypeError(
                f"cannot mix array kinds in one call: {_label(names, first)} is a "
                f"{_describe(arrays[first], found)} but {_label(names, j)} is a "
                f"{_describe(a, kind)}; "
                "convert them to one kind first (no implicit host/device copies)"
            )
    return found if found is not None else NUMPY


def _torch_type() -> Any:
    """``torch.Tensor`` if torch has been imported (by anyone), else None: never imports it."""
    mod = sys.modules.get("torch")
    return getattr(mod, "Tensor", None) if mod is not None else None


def inputs(arrays: tuple[Any, ...], names: Sequence[str] = ()) -> tuple[ArrayKind, tuple[Any, ...]]:
    """``(kind, arrays as the kernels take them)`` in one pass: :func:`of` and
    :meth:`ArrayKind.unwrap` together. NumPy input comes back as the same tuple; a PyTorch CPU
    tensor costs one ``Tensor.numpy()`` (~0.7 us, the floor of zero-copy conversion)."""
    for a in arrays:  # the common case, checked fast: NumPy arrays and None only
        if a is not None and type(a) is not np.ndarray:
            break
    else:
        return NUMPY, arrays
    T = _torch_type()
    out = list(arrays)
    found: ArrayKind | None = None
    first = -1
    for j, a in enumerate(arrays):
        if a is None:
            continue
        if type(a) is np.ndarray:
            kind: ArrayKind | None = NUMPY
        elif T is not None and isinstance(a, T):
            try:
                out[j] = a.numpy()  # a view; raises for grad, device and odd tensors
                kind = _TORCH_CPU
            except (TypeError, RuntimeError):
                kind = _torch_kind(a)  # raises the .detach() hint, or names the device
                if kind.host:
                    out[j] = _tensor_to_numpy(a)  # raises with torch's reason
        else:
            kind = _kind_of_one(a)
            if kind is None:
                continue
        if found is None:
            found, first = kind, j
        elif kind is not found:
            of((arrays[first], a), (_label(names, first), _label(names, j)))  # raises
    return (found if found is not None else NUMPY), tuple(out)


def _label(names: Sequence[str], k: int) -> str:
    return names[k] if k < len(names) else f"argument {k}"


def kind_named(name: str) -> ArrayKind:
    """The kind for ``load(..., array_kind=name)``: "numpy", "torch" or "cupy"."""
    if name == "numpy":
        return NUMPY
    if name == "torch":
        import torch

        return _torch_kind(torch.empty(0))
    if name == "cupy":
        import cupy

        return _namespace_kind(cupy.empty(0))
    raise ValueError(f"array_kind must be 'numpy', 'torch' or 'cupy', got {name!r}")
