"""Implicit-feedback inputs shared by the models: the user x item matrix and its checks, the
rows of the requested users, and top-N selection with the usual filters."""

from __future__ import annotations

from typing import Any

import numpy as np

from recfast import _validate as check


def as_user_items(name: str, user_items: Any, dtype: np.dtype, n_items: int | None = None):
    """A canonical CSR copy (duplicates summed, indices sorted) of a scipy.sparse matrix of
    non-negative, finite interaction strengths, in ``dtype``; ``n_items`` checks the width."""
    import scipy.sparse as sp

    if not sp.issparse(user_items):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (users x items), got "
            f"{type(user_items).__name__}; for a dense array use scipy.sparse.csr_matrix(a)"
        )
    if user_items.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users x items), got shape {user_items.shape}")
    if n_items is not None and user_items.shape[1] != n_items:
        raise ValueError(
            f"{name} has {user_items.shape[1]} columns but the model was fitted on {n_items} items"
        )
    X = sp.csr_matrix(user_items, dtype=dtype, copy=True)
    X.sum_duplicates()
    X.sort_indices()
    if X.nnz and not np.isfinite(X.data).all():
        raise ValueError(f"{name} holds NaN or infinite strengths")
    if X.nnz and (X.data < 0).any():
        raise ValueError(f"{name} holds negative strengths; interactions must be >= 0")
    X.eliminate_zeros()
    return X


def requested_rows(userid: Any, user_items: Any, dtype: np.dtype, n_items: int):
    """``(ids, rows, scalar)``: the requested users' rows of ``user_items``, which holds exactly
    one row per requested user (implicit >= 0.5's convention) or else the whole matrix with rows
    indexed by the ids."""
    scalar = np.ndim(userid) == 0
    ids = check.index_array("userid", np.atleast_1d(np.asarray(userid)))
    if (ids < 0).any():
        raise ValueError("userid must be >= 0")
    X = as_user_items("user_items", user_items, dtype, n_items=n_items)
    if X.shape[0] == ids.size:
        return ids, X, scalar
    if ids.size and int(ids.max()) < X.shape[0]:
        return ids, X[ids], scalar
    raise ValueError(
        f"user_items has {X.shape[0]} rows but {ids.size} users were requested (largest id "
        f"{int(ids.max(initial=0))}): pass one row per requested user (user_items[userid]) or the "
        "whole user x item matrix"
    )


def topk_rows(
    S: np.ndarray,
    n: int,
    seen: Any = None,
    filter_items: Any = None,
    items: Any = None,
    n_items: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row of ``S`` (m, n_items), best first, leaving out each
    row's stored entries of ``seen`` (scipy.sparse (m, n_items)), the ids in ``filter_items``,
    and, when ``items`` is given, every id not in it. ``S`` is overwritten. Where fewer than
    ``n`` are left: ids -1, scores -inf."""
    n_items = S.shape[1] if n_items is None else n_items
    if filter_items is not None:
        f = check.index_array("filter_items", np.atleast_1d(np.asarray(filter_items)), n_items)
        S[:, f] = -np.inf
    if items is not None:
        keep = check.index_array("items", np.atleast_1d(np.asarray(items)), n_items)
        mask = np.ones(n_items, bool)
        mask[keep] = False
        S[:, mask] = -np.inf
    if seen is not None and seen.nnz:
        r = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
        S[r, seen.indices] = -np.inf
    m = S.shape[0]
    k = min(n, n_items)
    part = (
        np.argpartition(-S, k - 1, axis=1)[:, :k]
        if k < n_items
        else np.tile(np.arange(n_items), (m, 1))
    )
    ps = np.take_along_axis(S, part, axis=1)
    order = np.argsort(-ps, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    sc = np.take_along_axis(ps, order, axis=1)
    ids[~np.isfinite(sc) & (sc < 0)] = -1
    if k < n:
        ids = np.concatenate([ids, np.full((m, n - k), -1, np.int64)], axis=1)
        sc = np.concatenate([sc, np.full((m, n - k), -np.inf, sc.dtype)], axis=1)
    return ids, sc
