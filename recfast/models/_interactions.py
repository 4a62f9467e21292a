"""Implicit-feedback inputs shared by the models: the checked user x item matrix, and the rows
of the requested users (the whole matrix, or one row per user as implicit takes it)."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_user_items(matrix: Any, name: str = "user_items") -> Any:
    """``matrix`` as a new float64 CSR with duplicates summed, sorted indices and explicit zeros
    dropped; strengths must be finite and >= 0. The caller's matrix is never modified."""
    import scipy.sparse as sp

    if not sp.issparse(matrix):
        raise TypeError(
            f"{name} must be a scipy.sparse matrix (rows x items of interaction strengths), got "
            f"{type(matrix).__name__}; convert a dense array with scipy.sparse.csr_matrix(a)"
        )
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {matrix.shape}")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {matrix.dtype}")
    csr = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    csr.sum_duplicates()  # also sorts the indices
    d = csr.data
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        j = int(np.argmax(bad))
        row = int(np.searchsorted(csr.indptr, j, side="right") - 1)
        raise ValueError(
            f"{name} must hold finite strengths >= 0; entry ({row}, {int(csr.indices[j])}) is "
            f"{float(d[j])} (NaN, inf and negative strengths are refused)"
        )
    csr.eliminate_zeros()
    return csr


def checked_rows(matrix: Any, name: str) -> Any:
    """A CSR of ``matrix`` for reading: the matrix itself when it is already a canonical CSR
    (sorted, no duplicates) of finite strengths >= 0 (no copy: the recommend hot path),
    else :func:`as_user_items`'s checked copy."""
    import scipy.sparse as sp

    if (
        isinstance(matrix, sp.csr_matrix)
        and matrix.dtype.kind == "f"
        and matrix.has_canonical_format
        and bool(np.isfinite(matrix.data).all())
        and not bool((matrix.data < 0).any())
    ):
        return matrix
    return as_user_items(matrix, name)


def requested_rows(users: np.ndarray, user_items: Any, n_rows_model: int, n_items: int,
               name: str = "user_items") -> Any:  # fmt: skip
    """The CSR rows of ``user_items`` that belong to ``users``: ``user_items`` is one row
    per requested user (implicit's convention, preferred when both readings fit) or the
    whole matrix, indexed by user id."""
    import scipy.sparse as sp

    if not sp.issparse(user_items):
        as_user_items(user_items, name)  # raises the TypeError
    m = len(users)
    shape = user_items.shape
    if len(shape) == 2 and shape[1] != n_items:
        raise ValueError(f"{name} has {shape[1]} columns, but the model has {n_items} items")
    need = max(n_rows_model, int(users.max()) + 1)
    if shape[0] == m:
        return checked_rows(user_items, name)
    if shape[0] >= need:
        # Rows first, checks on them only: recommend for a few users of a large matrix
        # must not copy and re-validate all of it.
        csr = user_items if isinstance(user_items, sp.csr_matrix) else user_items.tocsr()
        if not np.array_equal(users, np.arange(shape[0])):
            csr = csr[users]
        return checked_rows(csr, name)
    raise ValueError(
        f"{name} has {shape[0]} rows; expected one row per requested user ({m} rows) or "
        f"the whole user x item matrix (at least {need} rows, indexed by user id)"
    )
