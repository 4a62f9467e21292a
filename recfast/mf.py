"""Sparse SGD matrix factorization kernels: ``R ~ mu + b_u + b_i + U V^T``.

The public functions validate once (``recfast._validate``), pick a backend once
(``recfast._backends``) and call it; the arrays passed in are updated in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfast import _validate as check
from recfast._backends import select
from recfast._threads import resolve_num_threads

__all__ = ["sgd_mf_epoch", "mf_block_layout", "recommend_topk", "DivergenceError"]


class DivergenceError(FloatingPointError):
    """SGD diverged (the loss or the factors became inf/NaN); lower the learning rate."""


def sgd_mf_epoch(
    rows: Any,
    cols: Any,
    values: Any,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    *,
    user_bias: np.ndarray | None = None,
    item_bias: np.ndarray | None = None,
    global_mean: float = 0.0,
    learning_rate: float,
    regularization: float,
    bias_regularization: float | None = None,
    user_accum: np.ndarray | None = None,
    item_accum: np.ndarray | None = None,
    order: Any = None,
    block_ptr: Any = None,
    n_blocks: int | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> float:
    """One pass of stochastic gradient descent over the given ratings, in place.

    For each rating ``(u, i, r)``: ``e = r - (global_mean + b_u + b_i + U[u] @ V[i])``, then
    ``U[u] += lr (e V[i] - reg U[u])``, ``V[i] += lr (e U[u] - reg V[i])`` (both from the old
    values) and ``b_u += lr (e - bias_reg b_u)``, ``b_i`` likewise.

    Parameters
    ----------
    rows, cols : (nnz,) int32 or int64
        User and item index of each rating; range-checked against the factor shapes.
    values : (nnz,) float, same dtype as the factors
        The ratings; must be finite.
    user_factors : (n_users, k) float32 or float64, C-contiguous, writable
    item_factors : (n_items, k) same dtype
    user_bias, item_bias : (n_users,), (n_items,) optional, both or neither
    global_mean : float
        ``mu``, added to every prediction (not updated).
    learning_rate, regularization : float
        Step size (> 0) and L2 weight on the factors (>= 0).
    bias_regularization : float, optional
        L2 weight on the biases; defaults to ``regularization``.
    user_accum, item_accum : (n_users,), (n_items,) optional, > 0
        When given, LIBMF's row-wise AdaGrad: each row's step is ``learning_rate / sqrt(G_row)``
        where ``G_row`` (updated in place) accumulates the mean squared gradient of the row's
        coordinates. Start them at 1.
    order : (n,) int, optional
        Process ratings ``order[0], order[1], ...`` (repeats allowed) instead of storage order.
    block_ptr, n_blocks : optional
        The ratings are laid out by :func:`mf_block_layout`; run the FPSGD block schedule, whose
        result equals the sequential pass in storage order for any thread count.
    num_threads : int, optional
        Threads for the ``cpu``/``numba`` backends (default :func:`recfast.get_num_threads`).
        Without ``block_ptr`` several threads run lock-free Hogwild over contiguous slices of the
        order (not reproducible bit for bit); one thread is exactly sequential.
    backend : str, optional
        ``"cpu"``, ``"numba"`` or ``"reference"``; default: the fastest live one.

    Returns
    -------
    float
        The epoch's training loss: the sum of squared errors ``sum e**2``, each taken before its
        own update (regularization not included). Divide by ``len(values)`` for the MSE.

    Raises
    ------
    TypeError, ValueError
        Bad input, before anything is modified.
    FloatingPointError
        (:class:`DivergenceError`) the loss or the factors became non-finite: the learning rate
        is too large. The factors are then left as the diverged pass wrote them.
    """
    U, V = check.factor_pair(user_factors, item_factors)
    rows, cols, values = check.ratings_triplet(rows, cols, values, U.shape[0], V.shape[0], U.dtype)
    ub, ib = check.row_vector_pair(
        ("user_bias", "item_bias"), user_bias, item_bias, (U.shape[0], V.shape[0]), U.dtype
    )
    ua, ia = check.row_vector_pair(
        ("user_accum", "item_accum"), user_accum, item_accum, (U.shape[0], V.shape[0]), U.dtype
    )
    if ua is not None:
        check.positive_accumulators(ua, ia)
    lr = check.scalar("learning_rate", learning_rate, low=0.0, low_open=True)
    reg = check.scalar("regularization", regularization, low=0.0)
    breg = (
        reg
        if bias_regularization is None
        else check.scalar("bias_regularization", bias_regularization, low=0.0)
    )
    mu = check.scalar("global_mean", global_mean)
    nnz = len(values)
    if order is not None and block_ptr is not None:
        raise ValueError("order and block_ptr are exclusive: a block layout fixes the order")
    if order is not None:
        order = check.index_array("order", order, nnz).astype(np.int64, copy=False)
    nb = 0
    if block_ptr is not None:
        block_ptr, nb = check.block_ptr(block_ptr, n_blocks, nnz)
    elif n_blocks is not None:
        raise ValueError("n_blocks is only meaningful with block_ptr")
    nt = resolve_num_threads(num_threads)
    _, kernel = select("sgd_mf_epoch", backend, check.array_kind(U, V, values))
    if nnz == 0 or (order is not None and len(order) == 0) or U.shape[1] == 0:
        return 0.0
    sse = kernel(
        rows,
        cols,
        values,
        U,
        V,
        ub,
        ib,
        ua,
        ia,
        order,
        block_ptr,
        nb,
        learning_rate=lr,
        regularization=reg,
        bias_regularization=breg,
        global_mean=mu,
        num_threads=nt,
    )
    raise_if_diverged(sse, U, V, ub, ib)
    return float(sse)


def raise_if_diverged(sse: float, *arrays: np.ndarray | None, where: str = "") -> None:
    """Raise :class:`DivergenceError` when the loss or any array is not finite."""
    # A sum is inf/NaN when any entry is (or, harmlessly, when it overflows: diverged anyway);
    # summing in the array's own dtype keeps this check ~1 ms per epoch for 3M factors.
    bad = not np.isfinite(sse) or any(
        a is not None and a.size and not np.isfinite(a.sum()) for a in arrays
    )
    if bad:
        raise DivergenceError(
            f"SGD diverged{where}: the training loss is {sse} and the factors hold inf/NaN; "
            "lower learning_rate"
        )


def mf_block_layout(
    rows: Any,
    cols: Any,
    values: Any,
    n_users: int,
    n_items: int,
    n_blocks: int,
    *,
    seed: int | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lay ratings out for the blocked (FPSGD) schedule of :func:`sgd_mf_epoch`.

    Users are cut into ``n_blocks`` contiguous ranges (user block ``u * n_blocks // n_users``) and
    so are items; the ``n_blocks**2`` blocks are grouped in strata (stratum ``s`` holds the blocks
    whose item block minus user block is ``s`` mod ``n_blocks``), and the blocks of one stratum
    share no user and no item, so they can be updated in parallel. Blocks are stored
    stratum-major; users ascend within a block, so user rows stream through memory. One user's
    ratings inside a block keep their input order, or are shuffled when ``seed`` is given.

    Returns
    -------
    rows, cols, values : (nnz,) the ratings in the new order (new arrays, same dtypes)
    block_ptr : (n_blocks**2 + 1,) int64
        Block ``b`` spans ``[block_ptr[b], block_ptr[b+1])``; pass it with ``n_blocks`` to
        :func:`sgd_mf_epoch`.
    """
    n_users = check.positive_int("n_users", n_users)
    n_items = check.positive_int("n_items", n_items)
    nb = check.positive_int("n_blocks", n_blocks)
    if nb > 4096:
        raise ValueError(f"n_blocks must be <= 4096, got {nb}")
    rows, cols, values = check.ratings_triplet(rows, cols, values, n_users, n_items, None)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        seed = int(seed) % 2**64
    nt = resolve_num_threads(num_threads)
    _, kernel = select("mf_block_layout", backend, check.array_kind(rows, cols, values))
    return kernel(rows, cols, values, n_users, n_items, nb, seed, nt)


def recommend_topk(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    users: Any,
    n: int = 10,
    *,
    item_bias: np.ndarray | None = None,
    offset: np.ndarray | None = None,
    exclude: Any = None,
    batch_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` items by score ``U[u] @ V.T + item_bias (+ offset[u])`` for each user.

    Parameters
    ----------
    user_factors : (n_users, k); item_factors : (n_items, k) same dtype
    users : (m,) int
        User indices to recommend for.
    item_bias : (n_items,), optional; offset : (n_users,), optional
        Added to the scores (the offset, e.g. ``mu + b_u``, does not change the ranking).
    exclude : scipy.sparse matrix (n_users, n_items), optional
        Stored entries of row ``u`` (e.g. already-rated items) are never recommended to ``u``.

    Returns
    -------
    items : (m, n) int64, best first; ``-1`` where fewer than ``n`` items are left.
    scores : (m, n) same dtype as the factors; ``-inf`` where ``items`` is ``-1``.
    """
    U = check.float_array("user_factors", user_factors, ndim=2)
    V = check.float_array("item_factors", item_factors, ndim=2, dtype=U.dtype)
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have the same k, got {U.shape[1]} and {V.shape[1]}"
        )
    users = check.index_array("users", np.atleast_1d(users), U.shape[0])
    n = check.positive_int("n", n)
    n_items = V.shape[0]
    n_out = min(n, n_items)
    if item_bias is not None:
        item_bias = check.float_array("item_bias", item_bias, ndim=1, dtype=U.dtype)
        if item_bias.shape != (n_items,):
            raise ValueError(f"item_bias must have shape ({n_items},), got {item_bias.shape}")
    if offset is not None:
        offset = check.float_array("offset", offset, ndim=1, dtype=U.dtype)
        if offset.shape != (U.shape[0],):
            raise ValueError(f"offset must have shape ({U.shape[0]},), got {offset.shape}")
    if exclude is not None:
        import scipy.sparse as sp

        if not sp.issparse(exclude):
            raise TypeError(f"exclude must be a scipy.sparse matrix, got {type(exclude).__name__}")
        if exclude.shape != (U.shape[0], n_items):
            raise ValueError(
                f"exclude must have shape {(U.shape[0], n_items)}, got {exclude.shape}"
            )
        exclude = exclude.tocsr()
    items_out = np.full((len(users), n), -1, np.int64)
    scores_out = np.full((len(users), n), -np.inf, U.dtype)
    for lo in range(0, len(users), batch_size):
        batch = users[lo : lo + batch_size]
        s = U[batch] @ V.T  # one GEMM per batch (BLAS)
        if item_bias is not None:
            s += item_bias
        if offset is not None:
            s += offset[batch][:, None]
        if exclude is not None:
            sub = exclude[batch]
            s[np.repeat(np.arange(len(batch)), np.diff(sub.indptr)), sub.indices] = -np.inf
        top = (
            np.argpartition(-s, n_out - 1, axis=1)[:, :n_out]
            if n_out < n_items
            else np.broadcast_to(np.arange(n_items), (len(batch), n_items))
        )
        ts = np.take_along_axis(s, top, axis=1)
        srt = np.argsort(-ts, axis=1, kind="stable")
        top, ts = np.take_along_axis(top, srt, axis=1), np.take_along_axis(ts, srt, axis=1)
        top = np.where(np.isneginf(ts), -1, top)
        items_out[lo : lo + len(batch), :n_out] = top
        scores_out[lo : lo + len(batch), :n_out] = ts
    return items_out, scores_out
