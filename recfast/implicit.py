"""Implicit-feedback kernels: native top-k selection, the iALS half-sweep and the BPR epoch.

Each public function validates once (``recfast._validate``), picks a backend once
(``recfast._backends``) and calls it. ``prepare_*`` return the validated call, to run again
every iteration (the estimators do), without re-checking millions of indices each time.
Host arrays only (NumPy, or PyTorch CPU tensors: results in the same kind).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import BackendUnavailableError, select
from recfast._kernel_args import AlsArgs, BprArgs, TopkArgs
from recfast._kinds import NUMPY, Array
from recfast._threads import resolve_num_threads

__all__ = [
    "BprEpochResult",
    "als_half_sweep",
    "bpr_epoch",
    "prepare_als_half_sweep",
    "prepare_bpr_epoch",
    "topk",
]


def _host_kind(arrays: tuple, names: tuple[str, ...], what: str):
    kind = kinds.of(arrays, names)
    if not kind.host:
        raise BackendUnavailableError(
            f"{what} runs on the host; {kind.name} arrays need a GPU kernel, which this build "
            "does not have"
        )
    return kind, (kind.unwrap(arrays) if kind is not NUMPY else arrays)


def _exclusion(exclude: Any, m: int, n_items: int) -> tuple[Any, Any]:
    """``exclude`` as a CSR ``(indptr int64, indices)``: scipy.sparse (m, n_items) or a tuple."""
    if exclude is None:
        return None, None
    import scipy.sparse as sp

    if sp.issparse(exclude):
        if exclude.shape != (m, n_items):
            raise ValueError(f"exclude must have shape {(m, n_items)}, got {exclude.shape}")
        csr = exclude.tocsr()
        return check.csr_arrays(csr.indptr, csr.indices, m, n_items,
                                names=("exclude.indptr", "exclude.indices"))  # fmt: skip
    if isinstance(exclude, tuple) and len(exclude) == 2:
        return check.csr_arrays(kinds_host(exclude[0]), kinds_host(exclude[1]), m, n_items,
                                names=("exclude_indptr", "exclude_indices"))  # fmt: skip
    raise TypeError(
        "exclude must be a scipy.sparse matrix (one row per query row) or an (indptr, indices) "
        f"tuple, got {type(exclude).__name__}"
    )


def topk(
    user_factors: Array,
    item_factors: Array,
    n: int = 10,
    *,
    item_bias: Array | None = None,
    items: Any = None,
    banned: Any = None,
    exclude: Any = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Array, Array]:
    """The ``n`` best items of each query row by ``score = user_factors[q] @ item_factors[j] +
    item_bias[j]``, in one native pass (tiles of one GEMM each, a heap per row).

    Parameters
    ----------
    user_factors : (m, k) float32/float64, the query rows (e.g. ``U[users]``)
    item_factors : (n_items, k) same dtype
    n : int >= 1
    item_bias : (n_items,), optional
    items : (c,) int, optional
        Candidate whitelist: only these item ids are ranked.
    banned : (b,) int, optional
        Item blacklist: never returned.
    exclude : scipy.sparse (m, n_items) or ``(indptr, indices)``, optional
        Items stored in row ``q`` are never returned for query ``q`` (already-seen items).

    Returns
    -------
    ids : (m, n) int64, best first, ties to the lower id; ``-1`` where fewer than ``n`` items
        remain after filtering.
    scores : (m, n) the factors' dtype; ``-inf`` beside ``-1``. Items scoring NaN or -inf are
        never returned.
    """
    kind, (Q, V, b) = _host_kind((user_factors, item_factors, item_bias),
                                 ("user_factors", "item_factors", "item_bias"), "topk")  # fmt: skip
    name, kernel = select("topk", backend, kind)
    Q = check.contiguous(np, check.float_array("user_factors", Q, ndim=2))
    V = check.contiguous(np, check.float_array("item_factors", V, ndim=2, dtype=Q.dtype,
                                               first="user_factors"))  # fmt: skip
    if Q.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have the same k, got {Q.shape[1]} and {V.shape[1]}"
        )
    m, n_items = Q.shape[0], V.shape[0]
    n = check.positive_int("n", n)
    if b is not None:
        b = check.float_array("item_bias", b, ndim=1, dtype=Q.dtype, first="user_factors")
        if b.shape != (n_items,):
            raise ValueError(f"item_bias must have shape ({n_items},), got {b.shape}")
        b = check.contiguous(np, b)
    if items is not None:
        # Sorted and unique: the kernels scan candidates in ascending id order (ties go to the
        # lower id) and an item listed twice must not be returned twice.
        items = np.unique(
            check._as_int64(np, check.index_array("items", kinds_host(items), n_items))
        )
    mask = None
    if banned is not None:
        banned = check.index_array("banned", kinds_host(banned), n_items)
        mask = np.zeros(n_items, np.uint8)
        mask[banned] = 1
    ex_ptr, ex_idx = _exclusion(exclude, m, n_items)
    check.allocation("the result", (m, n), 8 + Q.dtype.itemsize, f"n={n}")
    out_items = np.empty((m, n), np.int64)
    out_scores = np.full((m, n), np.nan, Q.dtype)
    nt = resolve_num_threads(num_threads)
    kernel(TopkArgs(Q, V, b, items, mask, ex_ptr, ex_idx, n, out_items, out_scores, nt))
    if kind is not NUMPY:
        return kind.wrap(out_items), kind.wrap(out_scores)
    return out_items, out_scores


def _host(a: Any) -> Any:
    return kinds_host(a)


def kinds_host(a: Any) -> Any:
    """An index argument as a NumPy array (PyTorch CPU tensors viewed, lists converted)."""
    if a is None or type(a) is np.ndarray:
        return a
    if hasattr(a, "__array__") or isinstance(a, (list, tuple, range)):
        kind = kinds.of((a,)) if not isinstance(a, (list, tuple, range)) else NUMPY
        return kind.unwrap_one(a) if kind is not NUMPY else np.asarray(a)
    return np.asarray(a)


# ------------------------------------------------------------------------------------- iALS
class AlsHalfSweep:
    """A validated iALS half-sweep: ``sweep()`` solves the rows in place; raises
    ``FloatingPointError`` when a row's system is singular or its solution not finite."""

    __slots__ = ("args", "backend", "kernel")

    def __init__(self, args: AlsArgs, backend: str, kernel: Any) -> None:
        self.args, self.backend, self.kernel = args, backend, kernel

    def __call__(self, *, where: str = "") -> None:
        failed = self.kernel(self.args)
        if failed:
            raise FloatingPointError(
                f"iALS diverged{where}: {failed} rows have a singular system or a non-finite "
                "solution; use regularization > 0"
            )


def prepare_als_half_sweep(
    indptr: Any,
    indices: Any,
    confidence: Any,
    X: Array,
    Y: Array,
    *,
    regularization: float,
    cg_steps: int = 3,
    rows: Any = None,
    gram: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> AlsHalfSweep:
    """Validate the arguments of :func:`als_half_sweep` once; returns the sweep as a callable."""
    kind, (X, Y, conf) = _host_kind((X, Y, confidence), ("X", "Y", "confidence"),
                                    "als_half_sweep")  # fmt: skip
    name, kernel = select("als_half_sweep", backend, kind)
    X = check.float_array("X", X, ndim=2, writable=True)
    Y = check.contiguous(np, check.float_array("Y", Y, ndim=2, dtype=X.dtype, first="X"))
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same k, got {X.shape[1]} and {Y.shape[1]}")
    if check.may_share_memory(np, X, Y):
        raise ValueError("X and Y must not share memory")
    indptr, indices = check.csr_arrays(kinds_host(indptr), kinds_host(indices), X.shape[0],
                                       Y.shape[0])  # fmt: skip
    conf = check.contiguous(np, check.float_array("confidence", conf, ndim=1, dtype=X.dtype,
                                                  first="X"))  # fmt: skip
    if conf.shape[0] != indices.shape[0]:
        raise ValueError(f"confidence must have shape ({indices.shape[0]},), got {conf.shape}")
    check.positive_finite("confidence", conf)
    reg = check.scalar("regularization", regularization, low=0.0)
    if isinstance(cg_steps, bool) or not isinstance(cg_steps, (int, np.integer)) or cg_steps < 0:
        raise ValueError(f"cg_steps must be an int >= 0 (0: exact Cholesky), got {cg_steps!r}")
    if rows is not None:
        rows = check._as_int64(np, check.index_array("rows", kinds_host(rows), X.shape[0]))
    if gram is not None:
        gram = check.contiguous(np, check.float_array("gram", _host(gram), ndim=2, dtype=X.dtype,
                                                      first="X"))  # fmt: skip
        if gram.shape != (X.shape[1],) * 2:
            raise ValueError(f"gram must have shape {(X.shape[1],) * 2}, got {gram.shape}")
    nt = resolve_num_threads(num_threads)
    args = AlsArgs(indptr, indices, conf, X, Y, gram, rows, reg, int(cg_steps), nt)
    return AlsHalfSweep(args, name, kernel)


def als_half_sweep(
    indptr: Any,
    indices: Any,
    confidence: Any,
    X: Array,
    Y: Array,
    *,
    regularization: float,
    cg_steps: int = 3,
    rows: Any = None,
    gram: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> None:
    """One half-sweep of implicit ALS (Hu, Koren & Volinsky 2008), in place.

    For each row ``u`` of the CSR ``(indptr, indices, confidence)`` (n_rows x n_cols, the
    confidences ``c_ui > 0``; ``1 + alpha * r_ui`` in Hu et al.), ``X[u]`` solves

        (Y^T Y + regularization I + sum_i (c_ui - 1) y_i y_i^T) x = sum_i c_ui y_i

    ``Y^T Y`` is computed once (BLAS). ``cg_steps > 0``: that many conjugate-gradient steps
    warm-started from the current ``X[u]`` (Takacs et al. 2011; implicit's default is 3);
    ``cg_steps=0``: the exact solution by Cholesky (float64 inside), for small k.

    Parameters
    ----------
    indptr : (n_rows + 1,) int; indices : (nnz,) int32/int64 in [0, n_cols)
    confidence : (nnz,) X's dtype, finite and > 0
    X : (n_rows, k) float32/float64, C-contiguous, writable: updated in place
    Y : (n_cols, k) same dtype, fixed
    rows : (r,) int, optional
        Solve only these rows (fold-in); default all.
    gram : (k, k), optional
        ``Y^T Y`` when the caller keeps it (real-time fold-in), else computed here.

    Raises
    ------
    FloatingPointError
        A row's system is singular (``regularization=0``) or its solution is not finite.
    """
    prepare_als_half_sweep(indptr, indices, confidence, X, Y, regularization=regularization,
                           cg_steps=cg_steps, rows=rows, gram=gram, num_threads=num_threads,
                           backend=backend)()  # fmt: skip


# -------------------------------------------------------------------------------------- BPR
class BprEpochResult(NamedTuple):
    loss: float  # mean of softplus(-x_uij) = -log sigmoid(x_uij) over the updated samples
    correct: float  # fraction of updated samples ranked correctly (x_uij > 0) before the update
    updated: int
    skipped: int  # sampled negatives that were positives of the user


class BprEpoch:
    """A validated BPR epoch: ``epoch(seed, learning_rate=None)`` runs it in place."""

    __slots__ = ("args", "backend", "kernel")

    def __init__(self, args: BprArgs, backend: str, kernel: Any) -> None:
        self.args, self.backend, self.kernel = args, backend, kernel

    def __call__(
        self, seed: int | None = None, learning_rate: float | None = None, *, where: str = ""
    ) -> BprEpochResult:
        a = self.args
        if seed is not None:
            a = a._replace(seed=_seed(seed))
        if learning_rate is not None:
            a = a._replace(learning_rate=check.scalar("learning_rate", learning_rate, low=0.0,
                                                      low_open=True))  # fmt: skip
        loss, correct, updated, skipped = self.kernel(a)
        bad = not np.isfinite(loss) or any(
            x is not None and x.size and not np.isfinite(float(np.sum(x)))
            for x in (a.user_factors, a.item_factors, a.item_bias)
        )
        if bad:
            raise FloatingPointError(
                f"BPR diverged{where}: the loss or the factors hold inf/NaN; lower learning_rate"
            )
        u = max(int(updated), 1)
        return BprEpochResult(float(loss) / u, int(correct) / u, int(updated), int(skipped))


def _seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return int(seed) % 2**64


def prepare_bpr_epoch(
    indptr: Any,
    indices: Any,
    user_factors: Array,
    item_factors: Array,
    *,
    item_bias: Array | None = None,
    learning_rate: float,
    regularization: float,
    n_samples: int | None = None,
    seed: int = 0,
    negatives: str = "uniform",
    row_of: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> BprEpoch:
    """Validate the arguments of :func:`bpr_epoch` once; returns the epoch as a callable."""
    kind, (U, V, b) = _host_kind((user_factors, item_factors, item_bias),
                                 ("user_factors", "item_factors", "item_bias"),
                                 "bpr_epoch")  # fmt: skip
    name, kernel = select("bpr_epoch", backend, kind)
    U, V = check.factor_pair(U, V, None, np)
    if U.dtype != V.dtype:
        raise TypeError(f"item_factors has dtype {V.dtype} but user_factors has {U.dtype}")
    indptr, indices = check.csr_arrays(kinds_host(indptr), kinds_host(indices), U.shape[0],
                                       V.shape[0], sorted_rows=True)  # fmt: skip
    if b is not None:
        b = check.float_array("item_bias", b, ndim=1, dtype=U.dtype, first="user_factors",
                              writable=True)  # fmt: skip
        if b.shape != (V.shape[0],):
            raise ValueError(f"item_bias must have shape ({V.shape[0]},), got {b.shape}")
    nnz = indices.shape[0]
    if nnz == 0:
        raise ValueError("the interaction matrix is empty: BPR needs at least one positive")
    S = nnz if n_samples is None else check.positive_int("n_samples", n_samples)
    if negatives not in ("uniform", "popularity"):
        raise ValueError(f"negatives must be 'uniform' or 'popularity', got {negatives!r}")
    if row_of is None:
        row_of = np.repeat(np.arange(U.shape[0], dtype=indices.dtype), np.diff(indptr))
    elif not (type(row_of) is np.ndarray and row_of.dtype == indices.dtype
              and row_of.shape == indices.shape):  # fmt: skip
        raise ValueError("row_of must be the (nnz,) row of each entry, in the dtype of indices")
    lr = check.scalar("learning_rate", learning_rate, low=0.0, low_open=True)
    reg = check.scalar("regularization", regularization, low=0.0)
    nt = resolve_num_threads(num_threads)
    args = BprArgs(indptr, indices, row_of, U, V, b, S, lr, reg, _seed(seed),
                   negatives == "popularity", nt)  # fmt: skip
    return BprEpoch(args, name, kernel)


def bpr_epoch(
    indptr: Any,
    indices: Any,
    user_factors: Array,
    item_factors: Array,
    *,
    item_bias: Array | None = None,
    learning_rate: float,
    regularization: float,
    n_samples: int | None = None,
    seed: int = 0,
    negatives: str = "uniform",
    num_threads: int | None = None,
    backend: str | None = None,
) -> BprEpochResult:
    """One epoch of Bayesian personalized ranking (Rendle et al. 2009) by Hogwild SGD, in place.

    ``n_samples`` (default nnz) steps, split over the threads; thread ``t`` draws from its own
    splitmix64 stream seeded by ``(seed, t)``: a positive ``(u, i)`` uniformly among the stored
    entries of the user x item CSR ``(indptr, indices)`` (indices strictly ascending per row), a
    negative ``j`` uniformly among the items (``negatives="uniform"``) or as the item of a
    second uniformly drawn entry (``"popularity"``: implicit's sampler); a ``j`` that is a positive of ``u`` skips the step.
    With ``x = U[u] . (V[i] - V[j]) + b_i - b_j`` and ``z = sigmoid(-x)``: ``U[u] += lr (z (V[i] -
    V[j]) - reg U[u])``, ``V[i] += lr (z U[u] - reg V[i])``, ``V[j] += lr (-z U[u] - reg V[j])``,
    ``b_i += lr (z - reg b_i)``, ``b_j += lr (-z - reg b_j)``. One thread is bit-reproducible.

    Returns
    -------
    BprEpochResult
        ``loss`` (mean ``-log sigmoid(x)``), ``correct`` (fraction with ``x > 0``), both taken
        before each step's update, ``updated`` and ``skipped`` counts.

    Raises
    ------
    FloatingPointError
        The loss or the factors became non-finite (learning rate too large).
    """
    return prepare_bpr_epoch(indptr, indices, user_factors, item_factors, item_bias=item_bias,
                             learning_rate=learning_rate, regularization=regularization,
                             n_samples=n_samples, seed=seed, negatives=negatives,
                             num_threads=num_threads,
                             backend=backend)()  # fmt: skip
