"""Every shape, dtype, range and contiguity check. Messages name the argument, the expected and the
actual value. Nothing here modifies a caller's array; checks run before any kernel does."""

from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def array_kind(*arrays: Any) -> str:
    """ "numpy" or "cupy" for the given arrays (None entries skipped); mixing kinds is a TypeError."""
    if all(type(a) is np.ndarray or a is None for a in arrays):  # the common case, fast
        return "numpy"
    kinds = set()
    for a in arrays:
        if a is None:
            continue
        mod = type(a).__module__.split(".")[0]
        kinds.add("cupy" if mod == "cupy" else "numpy")
    if len(kinds) > 1:
        raise TypeError(
            "cannot mix NumPy and CuPy arrays in one call; move them to one device first"
        )
    return kinds.pop() if kinds else "numpy"


def _type_name(a: Any) -> str:
    return type(a).__name__


def float_array(
    name: str, a: Any, *, ndim: int, dtype: np.dtype | None = None, writable: bool = False
) -> np.ndarray:
    """A float32/float64 NumPy array of rank ``ndim``. Output arrays (``writable``) must also be
    C-contiguous and writable, since the kernel updates them in place."""
    if (
        type(a) is np.ndarray
        and a.ndim == ndim
        and a.dtype.char in "fd"
        and (dtype is None or a.dtype.char == dtype.char)
        and not writable
    ):
        return a  # the common case, checked fast (per-step ops spend microseconds in all)
    if not isinstance(a, np.ndarray):
        if writable:
            raise TypeError(
                f"{name} must be a numpy.ndarray (updated in place), got {_type_name(a)}"
            )
        a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {a.dtype} but the other inputs are {dtype}; convert it explicitly "
            f"(e.g. {name}.astype(np.{dtype}))"
        )
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if writable:
        if not a.flags.c_contiguous:
            raise ValueError(
                f"{name} must be C-contiguous (it is updated in place); "
                f"pass np.ascontiguousarray({name}) and keep that copy"
            )
        if not a.flags.writeable:
            raise ValueError(f"{name} is read-only; it is updated in place")
    return a


def index_array(name: str, a: Any, upper: int | None = None) -> np.ndarray:
    """A 1-D int32/int64 array with entries in [0, upper); contiguous (copied if needed)."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (int32 or int64), got dtype {a.dtype}")
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.dtype not in INDEX_DTYPES:
        # Deliberate, lossless widening (never forcecast): uint64 above int64 is caught below.
        if a.dtype == np.uint64 and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"{name} has entries >= 2**63")
        a = a.astype(np.int64)
    a = np.ascontiguousarray(a)
    if upper is not None and a.size:
        lo, hi = int(a.min()), int(a.max())
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


def ratings_triplet(
    rows: Any, cols: Any, values: Any, n_users: int, n_items: int, dtype: np.dtype | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows and cols as one index dtype (range-checked), values finite in the factors' dtype."""
    values = float_array("values", values, ndim=1, dtype=dtype)
    rows = index_array("rows", rows, n_users)
    cols = index_array("cols", cols, n_items)
    if not (len(rows) == len(cols) == len(values)):
        raise ValueError(
            f"rows, cols and values must have the same length, got {len(rows)}, {len(cols)}, "
            f"{len(values)}"
        )
    if rows.dtype != cols.dtype:  # the kernels take one index type: widen the int32 one
        rows, cols = rows.astype(np.int64), cols.astype(np.int64)
    if values.size and not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"values must be finite; values[{bad}] = {values[bad]}")
    return rows, cols, np.ascontiguousarray(values)


def factor_pair(user_factors: Any, item_factors: Any) -> tuple[np.ndarray, np.ndarray]:
    U = float_array("user_factors", user_factors, ndim=2, writable=True)
    V = float_array("item_factors", item_factors, ndim=2, dtype=U.dtype, writable=True)
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have the same number of factors k, got "
            f"{U.shape[1]} and {V.shape[1]}"
        )
    if np.shares_memory(U, V):
        raise ValueError("user_factors and item_factors must not share memory")
    return U, V


def row_vector_pair(
    names: tuple[str, str], a: Any, b: Any, lengths: tuple[int, int], dtype: np.dtype
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Two optional per-row arrays (biases or accumulators), both given or neither."""
    if (a is None) != (b is None):
        raise ValueError(f"give both {names[0]} and {names[1]}, or neither")
    if a is None:
        return None, None
    out = []
    for name, x, n in zip(names, (a, b), lengths):
        x = float_array(name, x, ndim=1, dtype=dtype, writable=True)
        if x.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {x.shape}")
        out.append(x)
    return out[0], out[1]


def positive_accumulators(ua: np.ndarray, ia: np.ndarray) -> None:
    if (ua.size and not ua.min() > 0) or (ia.size and not ia.min() > 0):
        raise ValueError("user_accum and item_accum must be > 0 (AdaGrad accumulators start at 1)")


def block_ptr(a: Any, n_blocks: Any, nnz: int) -> tuple[np.ndarray, int]:
    nb = positive_int("n_blocks", n_blocks)
    a = index_array("block_ptr", a)
    if a.shape != (nb * nb + 1,):
        raise ValueError(
            f"block_ptr must have shape ({nb * nb + 1},) for n_blocks={nb}, got {a.shape}"
        )
    if a[0] != 0 or a[-1] != nnz or (np.diff(a) < 0).any():
        raise ValueError(f"block_ptr must rise from 0 to nnz={nnz}")
    return a.astype(np.int64, copy=False), nb


ACTIVATIONS = (None, "identity", "relu", "sigmoid", "tanh")
# The codes the native and Numba kernels switch on (csrc/include/recfast/activation.hpp: Act).
ACTIVATION_CODES = {None: 0, "identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def activation(name: str, value: Any) -> str | None:
    if value not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {ACTIVATIONS}, got {value!r}")
    return None if value == "identity" else value


def dense_inputs(x: Any, W: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """x (N, D) or (D,), W (H, D), b (H,): one float dtype, no silent casts. Returns the 2-D x
    and whether the caller passed a single vector."""
    x = float_array("x", x, ndim=x.ndim if isinstance(x, np.ndarray) and x.ndim in (1, 2) else 2)
    W = float_array("W", W, ndim=2, dtype=x.dtype)
    vector = x.ndim == 1
    x2 = np.ascontiguousarray(x[None, :] if vector else x)
    if x2.shape[1] != W.shape[1]:
        raise ValueError(
            f"x has {x2.shape[1]} features but W has shape {W.shape}: expected W of shape (H, {x2.shape[1]})"
        )
    if b is not None:
        b = float_array("b", b, ndim=1, dtype=x.dtype)
        if b.shape != (W.shape[0],):
            raise ValueError(
                f"b must have shape ({W.shape[0]},) to match W {W.shape}, got {b.shape}"
            )
        b = np.ascontiguousarray(b)
    return x2, np.ascontiguousarray(W), b, vector


def out_array(name: str, out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A caller-provided output: exact shape and dtype, C-contiguous, writable; or a new one."""
    if out is None:
        return np.empty(shape, dtype)
    out = float_array(name, out, ndim=len(shape), dtype=dtype, writable=True)
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    return out


CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# The codes the native kernels switch on (csrc/include/recfast/rnn_cells.hpp: Cell).
CELL_CODES = {"rnn": 0, "gru": 1, "lstm": 2}
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


def _contiguous(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def _rnn_param(key: str, a: Any, shape: tuple[int, ...], dtype: np.dtype, G: int, H: int):
    a = float_array(f"params[{key!r}]", a, ndim=len(shape), dtype=dtype)
    if a.shape != shape:
        gate_note = "" if G == 1 else f" ({G} gates x H={H})"
        raise ValueError(f"params[{key!r}] must have shape {shape}{gate_note}, got {a.shape}")
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def rnn_weights(
    kind: str, W: Any, U: Any, b: Any, b_ih: Any, b_hh: Any, dtype: np.dtype, D: int, H: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """W (G H, D), U (G H, H) and the biases of cell ``kind`` as (W, U, b_ih, b_hh); the RNN's and
    LSTM's single bias (``b``, or the sum of PyTorch's pair) comes back as b_ih, b_hh as None."""
    G = GATES[kind]
    GH = G * H
    W = _rnn_param("W", W, (GH, D), dtype, G, H)
    U = _rnn_param("U", U, (GH, H), dtype, G, H)
    if b is not None:
        if b_ih is not None or b_hh is not None:
            raise ValueError("give params['b'] or params['b_ih'] / params['b_hh'], not both")
        b = _rnn_param("b", b, (GH,), dtype, G, H)
    if b_ih is not None:
        b_ih = _rnn_param("b_ih", b_ih, (GH,), dtype, G, H)
    if b_hh is not None:
        b_hh = _rnn_param("b_hh", b_hh, (GH,), dtype, G, H)
    if kind == "gru":
        return W, U, b_ih, b_hh
    if b is None and (b_ih is not None or b_hh is not None):
        b = b_ih if b_hh is None else (b_hh if b_ih is None else b_ih + b_hh)
    return W, U, b, None


def rnn_params(
    kind: str, params: Any, dtype: np.dtype, D: int, H: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`rnn_weights` from a mapping with keys from ``PARAM_NAMES[kind]``."""
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
    return rnn_weights(kind, get("W"), get("U"), get("b"), get("b_ih"), get("b_hh"), dtype, D, H)


def rnn_state(name: str, a: Any, N: int, H: int, dtype: np.dtype) -> np.ndarray:
    a = float_array(name, a, ndim=2, dtype=dtype)
    if a.shape != (N, H):
        raise ValueError(f"{name} must have shape (N, H) = ({N}, {H}), got {a.shape}")
    return _contiguous(a)


def lengths(a: Any, N: int, T: int) -> np.ndarray | None:
    """Per-sequence lengths: (N,) integers in [0, T], as int64."""
    if a is None:
        return None
    arr = np.asarray(a)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be an integer array, got dtype {arr.dtype}")
    if arr.shape != (N,):
        raise ValueError(f"lengths must have shape (N,) = ({N},), got {arr.shape}")
    if N and (arr.min() < 0 or arr.max() > T):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(f"lengths must lie in [0, T={T}], got {bad}")
    return np.ascontiguousarray(arr, dtype=np.int64)


# --- convolution and pooling (recfast/conv.py) -------------------------------------------------

PADDING_MODES = ("valid", "same", "full")
LAYOUTS = ("NHWC", "NCHW")


class Conv2dGeometry(NamedTuple):
    """Everything a conv2d kernel needs besides the arrays: strides, dilations, the four paddings
    and the output's spatial size. Built once by :func:`conv2d_geometry`."""

    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int


class Pool2dGeometry(NamedTuple):
    """Window, stride, padding (symmetric) and output size of a 2-D pooling."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    oh: int
    ow: int


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


def _image_rank(name: str, a: Any) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype.kind not in "f" or a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if a.ndim not in (3, 4):
        raise ValueError(f"{name} must be 4-D (N, H, W, C) or 3-D (H, W, C), got shape {a.shape}")
    return a


def conv2d_arrays(
    x: Any, w: Any, bias: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """x (N, H, W, C) or (H, W, C), w (KH, KW, C, C_out), bias (C_out,): one float dtype, no
    silent casts, C-contiguous (copied if needed). Returns the 4-D x and whether it was 3-D."""
    x = _image_rank("x", x)
    x = float_array("x", x, ndim=x.ndim)
    single = x.ndim == 3
    w = float_array("w", w, ndim=4)
    if w.dtype != x.dtype:
        raise TypeError(
            f"w has dtype {w.dtype} but x has dtype {x.dtype}; recfast does not upcast silently: "
            f"convert one of them explicitly (e.g. w.astype(np.{x.dtype}))"
        )
    x4 = x[None] if single else x
    if min(w.shape) < 1:
        raise ValueError(f"w must have non-zero dimensions (KH, KW, C, C_out), got {w.shape}")
    if x4.shape[3] != w.shape[2]:
        raise ValueError(
            f"x has {x4.shape[3]} channels (last axis) but w has shape {w.shape}: expected "
            f"w of shape (KH, KW, {x4.shape[3]}, C_out)"
        )
    if x4.shape[1] < 1 or x4.shape[2] < 1:
        raise ValueError(f"x must have a non-empty image (H, W >= 1), got shape {x.shape}")
    if bias is not None:
        bias = float_array("bias", bias, ndim=1)
        if bias.dtype != x.dtype:
            raise TypeError(f"bias has dtype {bias.dtype} but x has dtype {x.dtype}")
        if bias.shape != (w.shape[3],):
            raise ValueError(
                f"bias must have shape ({w.shape[3]},) to match w {w.shape}, got {bias.shape}"
            )
        bias = np.ascontiguousarray(bias)
    return np.ascontiguousarray(x4), np.ascontiguousarray(w), bias, single


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


def image_array(name: str, a: Any, dtype: np.dtype | None = None) -> tuple[np.ndarray, bool]:
    """A float (N, H, W, C) or (H, W, C) array, C-contiguous; returns it 4-D and whether it was
    3-D."""
    a = _image_rank(name, a)
    a = float_array(name, a, ndim=a.ndim, dtype=dtype)
    single = a.ndim == 3
    return np.ascontiguousarray(a[None] if single else a), single


def shape_tuple(name: str, value: Any) -> tuple[int, ...]:
    """A shape given as a sequence of non-negative ints."""
    try:
        out = tuple(int(v) for v in value)
    except TypeError as exc:
        raise TypeError(f"{name} must be a tuple of ints, got {value!r}") from exc
    if any(v < 0 for v in out):
        raise ValueError(f"{name} must hold non-negative sizes, got {value!r}")
    return out


def pool_indices(name: str, a: Any, shape: tuple[int, ...], plane: int) -> np.ndarray:
    """int64 argmax indices of the given shape, each in [0, plane) (H * W of the input)."""
    if not isinstance(a, np.ndarray):
        a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (int64), got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (that of grad_out), got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.size:
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= plane:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"{name} has entry {bad} outside [0, {plane}) (flat index into the H x W plane)"
            )
    return a
