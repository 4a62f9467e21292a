"""``MatrixFactorization.fit`` on device arrays (CuPy arrays, PyTorch CUDA tensors).

The ratings stay on the device: validated there (only a few counts and extremes reach the host),
shuffled there once per fit, and every epoch is the GPU backend's Hogwild pass in that order
(cuMF_SGD's scheme: a warp per rating; an FPSGD stratum would be one launch of a few warps, far
too little work for a GPU). The factors start from the same host draw as the host fit, so the two
fits differ only in the update order. The code is generic over the array namespace: the CPU tests
run it on NumPy arrays with a CPU backend.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check

# splitmix64's constants as signed int64 (every namespace wraps int64 products the same way).
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)


def _shr(x: Any, s: int) -> Any:
    """Logical right shift of int64 values (``>>`` is arithmetic on signed integers)."""
    return (x >> s) & ((1 << (64 - s)) - 1)


def shuffle_order(xp: Any, n: int, seed: int, device: Any = None) -> Any:
    """A permutation of ``range(n)`` computed in ``xp`` on ``device``: the argsort of splitmix64
    of ``0..n-1`` (a bijection on 64-bit words, so no ties). No host round trip, and the same
    permutation on NumPy, CuPy and PyTorch for the same seed."""
    kw = {} if device is None else {"device": device}
    x = (xp.arange(n, dtype=xp.int64, **kw) + 1) * _GOLDEN + (seed & ((1 << 62) - 1))
    x = (x ^ _shr(x, 30)) * _MIX1
    x = (x ^ _shr(x, 27)) * _MIX2
    x = x ^ _shr(x, 31)
    return xp.argsort(x)


def _device_of(a: Any) -> Any:
    from array_api_compat import device

    return device(a)


def device_triplet(ratings: Any, name: str, dtype: Any, xp: Any, shape: tuple[int, int] | None):
    """``(rows, cols, values, shape)`` of a device ``(rows, cols, values)`` tuple, validated on
    the device; integer ratings are converted to ``dtype`` deliberately, as on the host."""
    if not (isinstance(ratings, tuple) and len(ratings) == 3):
        raise TypeError(f"{name} on a device must be a (rows, cols, values) tuple of device arrays")
    r, c, v = ratings
    if check._is_integer(xp, v.dtype):
        v = xp.astype(v, xp.float32 if dtype == np.float32 else xp.float64)
    elif not check._is_float(xp, v.dtype):
        raise TypeError(f"{name} values must be float32 or float64, got dtype {v.dtype}")
    else:
        v = xp.astype(v, xp.float32 if dtype == np.float32 else xp.float64)
    r, c = check.index_array("rows", r, None, xp), check.index_array("cols", c, None, xp)
    if shape is None:
        shape = tuple(int(xp.max(a)) + 1 if a.shape[0] else 0 for a in (r, c))
    r, c, v = check.ratings_triplet(r, c, v, shape[0], shape[1], xp)
    return r, c, v, shape


def fit(model: Any, ratings: Any, kind: Any, validation: Any, early_stopping: int | None):
    """Train ``model`` on device ``ratings``; returns ``(state, history)`` with the state's arrays
    on the device (the caller copies them to the host)."""
    from recfast.models.mf import _State

    xp = kind.xp
    if xp is None:
        raise TypeError(
            "MatrixFactorization.fit on the device takes CuPy arrays or PyTorch CUDA tensors, "
            "not bare __cuda_array_interface__ objects"
        )
    p = model._checked_params()
    dtype, k = p["dtype"], p["k"]
    rows, cols, values, shape = device_triplet(ratings, "ratings", dtype, xp, None)
    val = None
    if validation is not None:
        names = ("validation rows", "validation cols", "validation values")
        vkind = kinds.of(validation, names) if isinstance(validation, tuple) else None
        if vkind is not kind:
            raise TypeError(
                f"validation must be a (rows, cols, values) tuple of the same array kind as "
                f"ratings ({kind.name}): no implicit host/device copies"
            )
        val = device_triplet(validation, "validation", dtype, xp, shape)[:3]
    if early_stopping is not None:
        early_stopping = check.positive_int("early_stopping", early_stopping)
        if val is None:
            raise ValueError("early_stopping needs validation ratings")
    n_users, n_items = shape
    nnz = values.shape[0]
    for what, n in (("user", n_users), ("item", n_items)):
        check.allocation(f"the {what} factors", (n, k), p["factor_dtype"].itemsize,
                         f"ratings has {what} ids up to {n - 1}")  # fmt: skip
    if nnz == 0:
        raise ValueError("ratings is empty: fit needs at least one rating")
    dev = _device_of(values)
    rng = np.random.default_rng(model.random_state)
    # The same draws, in the same order, as the host fit.
    U0 = (rng.standard_normal((n_users, k)) * p["init_std"]).astype(p["factor_dtype"])
    V0 = (rng.standard_normal((n_items, k)) * p["init_std"]).astype(p["factor_dtype"])

    def put(a: np.ndarray) -> Any:
        return xp.asarray(a, device=dev) if xp is not np else a

    ada = model.solver == "adagrad"
    st = _State(
        put(U0),
        put(V0),
        put(np.zeros(n_users, dtype)) if model.biases else None,
        put(np.zeros(n_items, dtype)) if model.biases else None,
        float(xp.mean(xp.astype(values, xp.float64))),
        (float(xp.min(values)), float(xp.max(values))),
    )
    ua = put(np.ones(n_users, dtype)) if ada else None
    ia = put(np.ones(n_items, dtype)) if ada else None
    history: dict[str, Any] = {"loss": [], "train_rmse": [], "val_rmse": [], "seconds": [],
                               "layout_seconds": 0.0}  # fmt: skip
    if not p["epochs"]:
        return st, history
    t0 = time.perf_counter()
    order = shuffle_order(xp, nnz, int(rng.integers(2**62)), None if xp is np else dev)
    rows, cols, values = (xp.take(a, order, axis=0) for a in (rows, cols, values))
    del order
    float(xp.sum(values[:1]))  # the shuffle is done (device work is asynchronous)
    history["layout_seconds"] = time.perf_counter() - t0
    from recfast.mf import prepare_sgd_mf_epoch

    epoch_fn = prepare_sgd_mf_epoch(
        rows, cols, values, st.U, st.V, user_bias=st.ub, item_bias=st.ib, global_mean=st.mu,
        learning_rate=p["lr"], regularization=p["reg"], bias_regularization=p["breg"],
        user_accum=ua, item_accum=ia, num_threads=p["nt"] if kind.host else None,
        backend=model.backend,
    )  # fmt: skip
    model._run_epochs(epoch_fn, st, val, p, history, early_stopping, nnz, xp)
    return st, history
