"""Every shape, dtype, range and contiguity check, written against the call's array namespace
``xp`` (NumPy, CuPy, array_api_strict ...; a PyTorch CPU tensor arrives here as its NumPy view).
Messages name the argument, the expected and the actual value. Nothing here modifies a caller's
array; checks run before any kernel does.

NumPy arrays take fast paths (``type(a) is np.ndarray``): the per-step ops spend a few
microseconds in all, and these checks are most of it.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np

from recfast._codes import ACTIVATION_CODES, ACTIVATIONS, CELL_CODES, CELLS, GATES
from recfast._kernel_args import Conv2dGeometry, Pool2dGeometry

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_CODES",
    "CELLS",
    "CELL_CODES",
    "FLOAT_DTYPES",
    "GATES",
    "INDEX_DTYPES",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))
_ARRAY_HINT = "pass a NumPy array, torch tensor or CuPy array"


def _type_name(a: Any) -> str:
    return type(a).__name__


def dtype_name(dt: Any) -> str:
    """ "float32" for NumPy's, CuPy's and array_api_strict's float32 alike."""
    return str(dt).rsplit(".", 1)[-1]


def _is_array(a: Any) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, (type, np.generic))


def _is_float(xp: Any, dt: Any) -> bool:
    if xp is np:
        return dt.char in "fd"
    return dt == xp.float32 or dt == xp.float64


def _is_integer(xp: Any, dt: Any) -> bool:
    if xp is np:
        return dt.kind in "iu"
    return bool(xp.isdtype(dt, "integral"))


def contiguous(xp: Any, a: Any) -> Any:
    """``a`` C-contiguous (copied if needed) where the namespace has strides; else ``a``."""
    if xp is np:
        return a if a.flags.c_contiguous else np.ascontiguousarray(a)
    flags = getattr(a, "flags", None)
    if flags is not None and not flags.c_contiguous:
        return xp.ascontiguousarray(a)
    return a


def may_share_memory(xp: Any, a: Any, b: Any) -> bool:
    """Whether two arrays may overlap (False where the namespace cannot tell)."""
    if a is None or b is None:
        return False
    if xp is np:
        return bool(np.may_share_memory(a, b))
    fn = getattr(xp, "may_share_memory", None)
    return bool(fn(a, b)) if fn is not None else a is b


def no_overlap(xp: Any, outputs: dict[str, Any], inputs: dict[str, Any]) -> None:
    """Refuse an output that overlaps another output or any input: the kernel would read what it
    has already overwritten (or write one result over another)."""
    outs = [(k, v) for k, v in outputs.items() if v is not None]
    for j, (name, out) in enumerate(outs):
        for other, arr in outs[j + 1 :] + list(inputs.items()):
            if arr is not None and may_share_memory(xp, out, arr):
                raise ValueError(f"{name} must not share memory with {other}")


def float_array(
    name: str,
    a: Any,
    xp: Any = np,
    *,
    ndim: int,
    dtype: Any = None,
    first: str | None = None,
    writable: bool = False,
) -> Any:
    """A float32/float64 array of rank ``ndim``.

    ``dtype`` is the call's float dtype, taken from its first float input (named ``first``); a
    mismatch blames this argument and suggests converting it. Output arrays (``writable``) must
    also be C-contiguous and writable, since the kernel updates them in place.
    """
    if (
        type(a) is np.ndarray
        and a.ndim == ndim
        and a.dtype.char in "fd"
        and (dtype is None or a.dtype == dtype)
        and not writable
    ):
        return a  # the common case, checked fast (per-step ops spend microseconds in all)
    if not _is_array(a):
        raise TypeError(
            f"{name} must be an array ({_ARRAY_HINT} of float32 or float64), got {_type_name(a)}"
        )
    if not _is_float(xp, a.dtype):
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype_name(a.dtype)}")
    if dtype is not None and a.dtype != dtype:
        have, want = dtype_name(a.dtype), dtype_name(dtype)
        lib = "np" if xp is np else xp.__name__.split(".")[-1]
        tail = " (or pass every float input as float32, the fast path)" if want == "float64" else ""
        raise TypeError(
            f"{name} has dtype {have} but {first or 'the other inputs'} has dtype {want}: the "
            f"float inputs of one call share one dtype; convert {name} "
            f"(e.g. {name}.astype({lib}.{want})){tail}"
        )
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(a.shape)}")
    if writable:
        flags = getattr(a, "flags", None)
        if flags is not None and not flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous (it is updated in place); "
                f"pass a contiguous copy of {name} and keep that copy"
            )
        if flags is not None and not getattr(flags, "writeable", True):
            raise ValueError(f"{name} is read-only; it is updated in place")
    return a


def index_array(name: str, a: Any, upper: int | None = None, xp: Any = np) -> Any:
    """A 1-D int32/int64 array with entries in [0, upper); contiguous (copied if needed).

    Python sequences of ints are accepted and converted; other integer dtypes are widened to
    int64 deliberately (never a silent cast that could change a value)."""
    if not _is_array(a):
        try:
            a = xp.asarray(a)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be an integer array, got {_type_name(a)}") from exc
    if not _is_integer(xp, a.dtype):
        raise TypeError(
            f"{name} must be an integer array (int32 or int64), got dtype {dtype_name(a.dtype)}"
        )
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(a.shape)}")
    if a.dtype != xp.int32 and a.dtype != xp.int64:
        # Lossless widening: uint64 above int64's range is refused here.
        if dtype_name(a.dtype) == "uint64" and a.shape[0] and int(xp.max(a)) > 2**63 - 1:
            raise ValueError(f"{name} has entries >= 2**63")
        a = xp.astype(a, xp.int64) if xp is not np else a.astype(np.int64)
    a = contiguous(xp, a)
    if upper is not None and a.shape[0]:
        lo, hi = int(xp.min(a)), int(xp.max(a))
        if lo < 0 or hi >= upper:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} has entry {bad} outside the valid range [0, {upper})")
    return a


def scalar(
    name: str,
    x: Any,
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
) -> float:
    """A finite real number, optionally bounded below (``low``, exclusive when ``low_open``)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_type_name(x)}")
    x = float(x)
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and (x <= low if low_open else x < low):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be <= {high}, got {x}")
    return x


def positive_int(name: str, x: Any) -> int:
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {_type_name(x)}")
    if int(x) < 1:
        raise ValueError(f"{name} must be >= 1, got {x}")
    return int(x)


@functools.cache
def _memory_bytes() -> int:
    """Physical memory of this machine (what an allocation can never exceed)."""
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 1 << 50


def itemsize(dt: Any) -> int:
    """Bytes per element of a float dtype of any namespace."""
    return 4 if dtype_name(dt) == "float32" else 8


def allocation(what: str, shape: tuple[int, ...], itemsize: int, cause: str) -> None:
    """Refuse, before allocating, an array larger than this machine's memory, naming the
    argument that asked for it (NumPy's own MemoryError names none)."""
    n = 1
    for s in shape:
        n *= int(s)
    if n * itemsize > _memory_bytes():
        raise ValueError(
            f"{cause}: {what} would have shape {tuple(int(s) for s in shape)} "
            f"({n * itemsize / 2**30:.3g} GiB), more than this machine's memory "
            f"({_memory_bytes() / 2**30:.3g} GiB)"
        )


def all_finite(xp: Any, a: Any) -> bool:
    if xp is np:
        return bool(np.isfinite(a).all())
    return bool(xp.all(xp.isfinite(a)))


def _as_int64(xp: Any, a: Any) -> Any:
    if a.dtype == xp.int64:
        return a
    return a.astype(np.int64) if xp is np else xp.astype(a, xp.int64)


# --- matrix factorization (recfast/mf.py) ------------------------------------------------------


def ratings_triplet(
    rows: Any, cols: Any, values: Any, n_users: int, n_items: int, xp: Any = np
) -> tuple[Any, Any, Any]:
    """Rows and cols as one index dtype (range-checked), values finite floats."""
    values = float_array("values", values, xp, ndim=1)
    rows = index_array("rows", rows, n_users, xp)
    cols = index_array("cols", cols, n_items, xp)
    if not (rows.shape[0] == cols.shape[0] == values.shape[0]):
        raise ValueError(
            f"rows, cols and values must have the same length, got {rows.shape[0]}, "
            f"{cols.shape[0]}, {values.shape[0]}"
        )
    if rows.dtype != cols.dtype:  # the kernels take one index type: widen the int32 one
        rows, cols = _as_int64(xp, rows), _as_int64(xp, cols)
    if values.shape[0] and not all_finite(xp, values):
        mask = ~xp.isfinite(values)
        bad = int(xp.argmax(xp.astype(mask, xp.int8) if xp is not np else mask))
        raise ValueError(f"values must be finite; values[{bad}] = {float(values[bad])}")
    return rows, cols, contiguous(xp, values)


def _half_factors(name: str, a: Any) -> Any:
    """A float16 factor matrix (storage only: the arithmetic is float32), updated in place."""
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {tuple(a.shape)}")
    flags = getattr(a, "flags", None)
    if flags is not None and not flags.c_contiguous:
        raise ValueError(
            f"{name} must be C-contiguous (it is updated in place); "
            f"pass a contiguous copy of {name} and keep that copy"
        )
    if flags is not None and not getattr(flags, "writeable", True):
        raise ValueError(f"{name} is read-only; it is updated in place")
    return a


def is_half(a: Any) -> bool:
    """True for a float16 array (any namespace)."""
    return _is_array(a) and dtype_name(a.dtype) == "float16"


def factor_pair(user_factors: Any, item_factors: Any, dtype: Any, xp: Any = np) -> tuple[Any, Any]:
    """The two factor matrices, of the values' dtype, or both float16 (storage) with float32
    values (the arithmetic): each update widens the two rows to float32 and rounds them back."""
    if is_half(user_factors) or is_half(item_factors):
        if not (is_half(user_factors) and is_half(item_factors)):
            raise TypeError(
                "user_factors and item_factors must both be float16 (factor storage) or both "
                f"the values' dtype; got {dtype_name(user_factors.dtype)} and "
                f"{dtype_name(item_factors.dtype)}"
            )
        if dtype_name(dtype) != "float32":
            raise TypeError(
                "float16 factors store float32 arithmetic: values (and biases, accumulators) "
                f"must be float32, got {dtype_name(dtype)}"
            )
        U = _half_factors("user_factors", user_factors)
        V = _half_factors("item_factors", item_factors)
        if U.shape[1] != V.shape[1]:
            raise ValueError(
                f"user_factors and item_factors must have the same number of factors k, got "
                f"{U.shape[1]} and {V.shape[1]}"
            )
        if may_share_memory(xp, U, V):
            raise ValueError("user_factors and item_factors must not share memory")
        return U, V
    U = float_array(
        "user_factors", user_factors, xp, ndim=2, dtype=dtype, first="values", writable=True
    )
    V = float_array(
        "item_factors", item_factors, xp, ndim=2, dtype=dtype, first="values", writable=True
    )
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have the same number of factors k, got "
            f"{U.shape[1]} and {V.shape[1]}"
        )
    if may_share_memory(xp, U, V):
        raise ValueError("user_factors and item_factors must not share memory")
    return U, V


def row_vector_pair(
    names: tuple[str, str],
    a: Any,
    b: Any,
    lengths: tuple[int, int],
    dtype: Any,
    xp: Any = np,
) -> tuple[Any, Any]:
    """Two optional per-row arrays (biases or accumulators), both given or neither."""
    if (a is None) != (b is None):
        raise ValueError(f"give both {names[0]} and {names[1]}, or neither")
    if a is None:
        return None, None
    out = []
    for name, x, n in zip(names, (a, b), lengths):
        x = float_array(name, x, xp, ndim=1, dtype=dtype, first="values", writable=True)
        if tuple(x.shape) != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(x.shape)}")
        out.append(x)
    return out[0], out[1]


def positive_accumulators(ua: Any, ia: Any, xp: Any = np) -> None:
    if (ua.shape[0] and not float(xp.min(ua)) > 0) or (ia.shape[0] and not float(xp.min(ia)) > 0):
        raise ValueError("user_accum and item_accum must be > 0 (AdaGrad accumulators start at 1)")


def block_ptr(a: Any, n_blocks: Any, nnz: int, xp: Any = np) -> tuple[Any, int]:
    nb = positive_int("n_blocks", n_blocks)
    a = index_array("block_ptr", a, None, xp)
    if tuple(a.shape) != (nb * nb + 1,):
        raise ValueError(
            f"block_ptr must have shape ({nb * nb + 1},) for n_blocks={nb}, got {tuple(a.shape)}"
        )
    rising = bool(xp.all(a[1:] >= a[:-1]))
    if int(a[0]) != 0 or int(a[-1]) != nnz or not rising:
        raise ValueError(f"block_ptr must rise from 0 to nnz={nnz}")
    return _as_int64(xp, a), nb


# --- dense layer (recfast/dense.py) -----------------------------------------------------------


def activation(name: str, value: Any) -> str | None:
    if value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {ACTIVATIONS}, got {value!r}")
    return None if value == "identity" else value


def dense_inputs(x: Any, W: Any, b: Any, xp: Any = np) -> tuple[Any, Any, Any, bool]:
    """x (N, D) or (D,), W (H, D), b (H,): one float dtype (x's), no silent casts. Returns the
    2-D x and whether the caller passed a single vector."""
    nd = x.ndim if _is_array(x) and x.ndim in (1, 2) else 2
    x = float_array("x", x, xp, ndim=nd)
    W = float_array("W", W, xp, ndim=2, dtype=x.dtype, first="x")
    vector = x.ndim == 1
    x2 = contiguous(xp, x[None, :] if vector else x)
    if x2.shape[1] != W.shape[1]:
        raise ValueError(
            f"x has {x2.shape[1]} features but W has shape {tuple(W.shape)}: expected W of "
            f"shape (H, {x2.shape[1]})"
        )
    if b is not None:
        b = float_array("b", b, xp, ndim=1, dtype=x.dtype, first="x")
        if tuple(b.shape) != (W.shape[0],):
            raise ValueError(
                f"b must have shape ({W.shape[0]},) to match W {tuple(W.shape)}, got "
                f"{tuple(b.shape)}"
            )
        b = contiguous(xp, b)
    return x2, contiguous(xp, W), b, vector


def same_shape(
    name: str, a: Any, shape: tuple[int, ...], dtype: Any, first: str, xp: Any, dims: str = ""
) -> Any:
    """``a`` of exactly ``shape`` (not just its size) and the call's dtype, C-contiguous.
    ``dims`` names the axes in the message, e.g. "(T, N, H)"."""
    a = float_array(name, a, xp, ndim=len(shape), dtype=dtype, first=first)
    if tuple(a.shape) != shape:
        want = f"{dims} = {shape}" if dims else f"{shape}"
        raise ValueError(f"{name} must have shape {want}, got {tuple(a.shape)}")
    return contiguous(xp, a)


def out_array(name: str, out: Any, shape: tuple[int, ...], dtype: Any, xp: Any = np) -> Any:
    """A caller-provided output: exact shape and dtype, C-contiguous, writable; or a new one."""
    if out is None:
        return xp.empty(shape, dtype=dtype)
    out = float_array(name, out, xp, ndim=len(shape), dtype=dtype, first="x", writable=True)
    if tuple(out.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(out.shape)}")
    return out


# --- recurrent layers (recfast/rnn.py) --------------------------------------------------------

# Parameter names each cell takes. The RNN and LSTM add one bias to all gate pre-activations, so
# PyTorch's pair (b_ih, b_hh) may be given instead of b (summed); the GRU needs both apart.
PARAM_NAMES = {
    "rnn": ("W", "U", "b", "b_ih", "b_hh"),
    "gru": ("W", "U", "b_ih", "b_hh"),
    "lstm": ("W", "U", "b", "b_ih", "b_hh"),
}


def cell(value: Any) -> str:
    if value not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {value!r}")
    return value


def _rnn_param(key, a, shape, dtype, G, H, first, xp):
    if type(a) is np.ndarray and a.shape == shape and a.dtype == dtype and a.flags.c_contiguous:
        return a  # the common case, checked fast
    a = float_array(f"params[{key!r}]", a, xp, ndim=len(shape), dtype=dtype, first=first)
    if tuple(a.shape) != shape:
        gate_note = "" if G == 1 else f" ({G} gates x H={H})"
        raise ValueError(
            f"params[{key!r}] must have shape {shape}{gate_note}, got {tuple(a.shape)}"
        )
    return contiguous(xp, a)


def rnn_weights(
    kind: str,
    W: Any,
    U: Any,
    b: Any,
    b_ih: Any,
    b_hh: Any,
    dtype: Any,
    D: int,
    H: int,
    first: str = "xs",
    xp: Any = np,
) -> tuple[Any, Any, Any, Any]:
    """W (G H, D), U (G H, H) and the biases of cell ``kind`` as (W, U, b_ih, b_hh); the RNN's and
    LSTM's single bias (``b``, or the sum of PyTorch's pair) comes back as b_ih, b_hh as None."""
    G = GATES[kind]
    GH = G * H
    W = _rnn_param("W", W, (GH, D), dtype, G, H, first, xp)
    U = _rnn_param("U", U, (GH, H), dtype, G, H, first, xp)
    if b is not None:
        if b_ih is not None or b_hh is not None:
            raise ValueError("give params['b'] or params['b_ih'] / params['b_hh'], not both")
        b = _rnn_param("b", b, (GH,), dtype, G, H, first, xp)
    if b_ih is not None:
        b_ih = _rnn_param("b_ih", b_ih, (GH,), dtype, G, H, first, xp)
    if b_hh is not None:
        b_hh = _rnn_param("b_hh", b_hh, (GH,), dtype, G, H, first, xp)
    if kind == "gru":
        return W, U, b_ih, b_hh
    if b is None and (b_ih is not None or b_hh is not None):
        b = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    return W, U, b, None


def rnn_params(
    kind: str, params: Any, dtype: Any, D: int, H: int, xp: Any = np, values: Any = None
) -> tuple[Any, Any, Any, Any]:
    """:func:`rnn_weights` from a mapping with keys from ``PARAM_NAMES[kind]``; ``values``, when
    given, are the mapping's W, U, b, b_ih, b_hh already in the kernels' form."""
    if not hasattr(params, "keys"):
        raise TypeError(
            f"params must be a mapping of arrays (keys from {PARAM_NAMES[kind]}), "
            f"got {_type_name(params)}"
        )
    allowed = PARAM_NAMES[kind]
    for key in params.keys():
        if key not in allowed:
            unknown = sorted(k for k in params.keys() if k not in allowed)
            raise ValueError(
                f"params has keys {unknown} that a {kind!r} cell does not take; expected {allowed}"
            )
    for key in ("W", "U"):
        if params.get(key) is None:
            raise ValueError(f"params must contain {key!r}")
    get = params.get
    vals = (get("W"), get("U"), get("b"), get("b_ih"), get("b_hh"))
    if values is not None and len(values) == 5:
        vals = tuple(values)
    return rnn_weights(kind, *vals, dtype, D, H, "xs", xp)


def rnn_state(name: str, a: Any, N: int, H: int, dtype: Any, first: str, xp: Any = np) -> Any:
    if type(a) is np.ndarray and a.shape == (N, H) and a.dtype == dtype and a.flags.c_contiguous:
        return a  # the common case, checked fast
    a = float_array(name, a, xp, ndim=2, dtype=dtype, first=first)
    if tuple(a.shape) != (N, H):
        raise ValueError(f"{name} must have shape (N, H) = ({N}, {H}), got {tuple(a.shape)}")
    return contiguous(xp, a)


def lengths(a: Any, N: int, T: int, xp: Any = np) -> Any:
    """Per-sequence lengths: (N,) integers in [0, T], as int64."""
    if a is None:
        return None
    arr = a if _is_array(a) else xp.asarray(a)
    if not _is_integer(xp, arr.dtype):
        raise TypeError(f"lengths must be an integer array, got dtype {dtype_name(arr.dtype)}")
    if tuple(arr.shape) != (N,):
        raise ValueError(f"lengths must have shape (N,) = ({N},), got {tuple(arr.shape)}")
    if N:
        lo, hi = int(xp.min(arr)), int(xp.max(arr))
        if lo < 0 or hi > T:
            raise ValueError(f"lengths must lie in [0, T={T}], got {lo if lo < 0 else hi}")
    return contiguous(xp, _as_int64(xp, arr))


def rnn_cache(
    cell_: Any, act: Any, xs: Any, states: Any, cells: Any, gates: Any, lens: Any, xp: Any = np
) -> tuple[Any, ...]:
    """The arrays of an ``RNNCache``, checked as the forward pass would have made them (a cache
    is a plain dataclass: a hand-built or modified one must not reach a kernel unchecked)."""
    cell_ = cell(cell_)
    act = activation("cache.activation", act) if cell_ == "rnn" else None
    xs = float_array("cache.xs", xs, xp, ndim=3)
    T, N, _ = xs.shape
    states = float_array("cache.states", states, xp, ndim=3, dtype=xs.dtype, first="cache.xs")
    if states.shape[0] != T + 1 or states.shape[1] != N:
        raise ValueError(
            f"cache.states must have shape (T + 1, N, H) = ({T + 1}, {N}, H), got "
            f"{tuple(states.shape)}"
        )
    H = states.shape[2]
    if cell_ == "lstm":
        if cells is None:
            raise ValueError("cache.cells is required for the LSTM")
        cells = same_shape("cache.cells", cells, (T + 1, N, H), xs.dtype, "cache.xs", xp)
    elif cells is not None:
        raise ValueError(f"cache.cells belongs to the LSTM; this cache is a {cell_!r} cell")
    if cell_ != "rnn":
        if gates is None:
            raise ValueError(f"cache.gates is required for the {cell_!r} cell")
        gates = same_shape("cache.gates", gates, (T, N, 4 * H), xs.dtype, "cache.xs", xp)
    elif gates is not None:
        raise ValueError("cache.gates must be None for the 'rnn' cell")
    lens = lengths(lens, N, T, xp)
    return cell_, act, contiguous(xp, xs), contiguous(xp, states), cells, gates, lens


# --- convolution and pooling (recfast/conv2d.py) ----------------------------------------------

PADDING_MODES = ("valid", "same", "full")
LAYOUTS = ("NHWC", "NCHW")


def int_pair(name: str, value: Any, *, low: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``low``."""
    vals = value if isinstance(value, (tuple, list)) else (value, value)
    if len(vals) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        if int(v) < low:
            raise ValueError(f"{name} must be >= {low}, got {value!r}")
        out.append(int(v))
    return out[0], out[1]


def layout(name: str, value: Any) -> str:
    if value not in LAYOUTS:
        raise ValueError(f"{name} must be one of {LAYOUTS}, got {value!r}")
    return value


def _image_rank(name: str, a: Any, xp: Any) -> Any:
    if not _is_array(a):
        raise TypeError(
            f"{name} must be an array ({_ARRAY_HINT} of float32 or float64), got {_type_name(a)}"
        )
    if not _is_float(xp, a.dtype):
        raise TypeError(f"{name} must have dtype float32 or float64, got {dtype_name(a.dtype)}")
    if a.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be 4-D (N, H, W, C) or 3-D (H, W, C), got shape {tuple(a.shape)}"
        )
    return a


def conv2d_arrays(x: Any, w: Any, bias: Any, xp: Any = np) -> tuple[Any, Any, Any, bool]:
    """x (N, H, W, C) or (H, W, C), w (KH, KW, C, C_out), bias (C_out,): one float dtype (x's), no
    silent casts, C-contiguous (copied if needed). Returns the 4-D x and whether it was 3-D."""
    x = _image_rank("x", x, xp)
    single = x.ndim == 3
    w = float_array("w", w, xp, ndim=4, dtype=x.dtype, first="x")
    x4 = x[None, ...] if single else x
    if min(w.shape) < 1:
        raise ValueError(
            f"w must have non-zero dimensions (KH, KW, C, C_out), got {tuple(w.shape)}"
        )
    if x4.shape[3] != w.shape[2]:
        raise ValueError(
            f"x has {x4.shape[3]} channels (last axis) but w has shape {tuple(w.shape)}: expected "
            f"w of shape (KH, KW, {x4.shape[3]}, C_out)"
        )
    if x4.shape[1] < 1 or x4.shape[2] < 1:
        raise ValueError(f"x must have a non-empty image (H, W >= 1), got shape {tuple(x.shape)}")
    if bias is not None:
        bias = float_array("bias", bias, xp, ndim=1, dtype=x.dtype, first="x")
        if tuple(bias.shape) != (w.shape[3],):
            raise ValueError(
                f"bias must have shape ({w.shape[3]},) to match w {tuple(w.shape)}, got "
                f"{tuple(bias.shape)}"
            )
        bias = contiguous(xp, bias)
    return contiguous(xp, x4), contiguous(xp, w), bias, single


def _padding_pairs(
    value: Any, k_eff: tuple[int, int], size: tuple[int, int], stride: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(value, str):
        if value not in PADDING_MODES:
            raise ValueError(
                f"padding must be one of {PADDING_MODES}, an int, a pair or ((top, bottom), "
                f"(left, right)), got {value!r}"
            )
        pairs = []
        for k, n, s in zip(k_eff, size, stride):
            if value == "valid":
                pairs.append((0, 0))
            elif value == "full":
                pairs.append((k - 1, k - 1))
            else:  # "same": output ceil(n / s), TensorFlow's split (the extra one at the end)
                total = max((-(-n // s) - 1) * s + k - n, 0)
                pairs.append((total // 2, total - total // 2))
        return pairs[0], pairs[1]
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, (tuple, list)) for v in value)
    ):
        a = int_pair("padding", tuple(value[0]), low=0)
        b = int_pair("padding", tuple(value[1]), low=0)
        return a, b
    ph, pw = int_pair("padding", value, low=0)
    return (ph, ph), (pw, pw)


def conv2d_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any
) -> Conv2dGeometry:
    """Strides, dilations and paddings parsed once; the output's (OH, OW) checked >= 1. Cached for
    hashable arguments (a network calls the same few layers over and over; parsing costs ~10 us,
    a third of a small convolution)."""
    args = (tuple(x_shape), tuple(w_shape), stride, padding, dilation)
    # Only exact ints, strings and tuples of them hit the cache: 1.0 == True == 1 as dict keys, and
    # those must still be refused (or parsed) here, not served from a cached int's entry.
    if all(_plain(a) for a in args[2:]):
        return _conv2d_geometry_cached(*args)
    return _conv2d_geometry(*args)


def _plain(v: Any) -> bool:
    t = type(v)
    return t is int or t is str or (t is tuple and all(_plain(e) for e in v))


def _conv2d_geometry(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Any, padding: Any, dilation: Any
) -> Conv2dGeometry:
    sh, sw = int_pair("stride", stride)
    dh, dw = int_pair("dilation", dilation)
    _, h, w_, _ = x_shape
    kh, kw = w_shape[0], w_shape[1]
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    (pt, pb), (pl, pr) = _padding_pairs(padding, (keh, kew), (h, w_), (sh, sw))
    if h + pt + pb < keh or w_ + pl + pr < kew:
        raise ValueError(
            f"kernel larger than the padded input: the dilated kernel spans {keh}x{kew} but the "
            f"padded image (x) is {h + pt + pb}x{w_ + pl + pr} (w shape {tuple(w_shape)}, "
            f"padding {padding!r}, dilation {(dh, dw)})"
        )
    oh = (h + pt + pb - keh) // sh + 1
    ow = (w_ + pl + pr - kew) // sw + 1
    return Conv2dGeometry(sh, sw, dh, dw, pt, pb, pl, pr, oh, ow)


_conv2d_geometry_cached = functools.lru_cache(maxsize=512)(_conv2d_geometry)


def pool2d_geometry(
    x_shape: tuple[int, ...], size: Any, stride: Any, padding: Any
) -> Pool2dGeometry:
    kh, kw = int_pair("size", size)
    sh, sw = (kh, kw) if stride is None else int_pair("stride", stride)
    ph, pw = int_pair("padding", padding, low=0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(
            f"padding must be at most half the window size, got padding {(ph, pw)} for size "
            f"{(kh, kw)}"
        )
    _, h, w_, _ = x_shape
    if h + 2 * ph < kh or w_ + 2 * pw < kw:
        raise ValueError(
            f"pooling window {(kh, kw)} larger than the padded input (x is {h}x{w_}, padding "
            f"{(ph, pw)})"
        )
    return Pool2dGeometry(
        kh, kw, sh, sw, ph, pw, (h + 2 * ph - kh) // sh + 1, (w_ + 2 * pw - kw) // sw + 1
    )


def image_array(
    name: str, a: Any, xp: Any = np, dtype: Any = None, first: str = "x"
) -> tuple[Any, bool]:
    """A float (N, H, W, C) or (H, W, C) array, C-contiguous; returns it 4-D and whether it was
    3-D."""
    a = _image_rank(name, a, xp)
    a = float_array(name, a, xp, ndim=a.ndim, dtype=dtype, first=first)
    single = a.ndim == 3
    return contiguous(xp, a[None, ...] if single else a), single


def shape_tuple(name: str, value: Any) -> tuple[int, ...]:
    """A shape given as a sequence of non-negative ints."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}") from exc
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must hold non-negative sizes, got {value!r}")
    return out


def pool_indices(name: str, a: Any, shape: tuple[int, ...], plane: int, xp: Any = np) -> Any:
    """int64 argmax indices of the given shape, each in [0, plane) (H * W of the input)."""
    if not _is_array(a):
        raise TypeError(f"{name} must be an integer array (int64), got {_type_name(a)}")
    if not _is_integer(xp, a.dtype):
        raise TypeError(f"{name} must be an integer array (int64), got dtype {dtype_name(a.dtype)}")
    if tuple(a.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (that of grad_out), got {tuple(a.shape)}")
    a = contiguous(xp, _as_int64(xp, a))
    if a.size if xp is np else int(np.prod(a.shape)):
        lo, hi = int(xp.min(a)), int(xp.max(a))
        if lo < 0 or hi >= plane:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name} has entry {bad} outside [0, {plane}) (flat index into the H x W plane)"
            )
    return a


# --- implicit feedback (recfast/implicit.py) ----------------------------------------------------


def csr_arrays(
    indptr: Any,
    indices: Any,
    n_rows: int,
    n_cols: int,
    *,
    names: tuple[str, str] = ("indptr", "indices"),
    sorted_rows: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A CSR structure on the host: ``indptr`` (n_rows + 1,) rising from 0 to nnz (returned as
    int64), ``indices`` (nnz,) int32/int64 in [0, n_cols), ascending within each row when
    ``sorted_rows``."""
    p_name, i_name = names
    indptr = _as_int64(np, index_array(p_name, indptr))
    if indptr.shape[0] != n_rows + 1:
        raise ValueError(f"{p_name} must have shape ({n_rows + 1},), got {indptr.shape}")
    if indptr[0] != 0 or (n_rows and bool((np.diff(indptr) < 0).any())):
        raise ValueError(
            f"{p_name} must rise from 0 (got {int(indptr[0])} first) without decreasing"
        )
    indices = index_array(i_name, indices, n_cols)
    if indices.shape[0] != int(indptr[-1]):
        raise ValueError(
            f"{i_name} must have {int(indptr[-1])} entries ({p_name}[-1]), got {indices.shape[0]}"
        )
    if sorted_rows and indices.shape[0] > 1:
        step_up = np.diff(indices.astype(np.int64)) > 0
        starts = indptr[1:-1]
        step_up[starts[(starts > 0) & (starts < indices.shape[0])] - 1] = True  # row boundaries
        if not step_up.all():
            raise ValueError(
                f"{i_name} must be strictly ascending within each row (call sort_indices() and "
                "sum_duplicates() on the matrix)"
            )
    return indptr, indices


def positive_finite(name: str, a: Any) -> None:
    """Every entry finite and > 0 (confidences), else ValueError naming the first bad one."""
    if a.shape[0] and not bool((np.isfinite(a) & (a > 0)).all()):
        bad = int(np.argmax(~(np.isfinite(a) & (a > 0))))
        raise ValueError(f"{name} must be finite and > 0; {name}[{bad}] = {float(a[bad])}")
