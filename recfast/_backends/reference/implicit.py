"""Reference implicit-feedback kernels: top-k by a full sort, the iALS row solves written out
step by step, and BPR one sample at a time with the kernels' splitmix64 streams. Slow and
obviously correct; array-API code where the algorithm allows (the BPR sampler is Python ints)."""

from __future__ import annotations

import math

import numpy as np

from recfast._backends.reference._xp import copy, namespace
from recfast._kernel_args import AlsArgs, BprArgs, TopkArgs

_MASK = (1 << 64) - 1
_THREAD_STRIDE = 0x632BE59BD9B4E019
_BPR_MIN_PARALLEL = 4096  # as the C++ and numba kernels: fewer samples run on one thread


def _ints(a) -> list[int]:
    return [int(v) for v in (a.tolist() if hasattr(a, "tolist") else a)]


def topk(a: TopkArgs) -> None:
    xp = namespace(a.user_factors)
    Q, V = a.user_factors, a.item_factors
    m, n, n_items = Q.shape[0], a.n, V.shape[0]
    ninf = -math.inf
    cand = list(range(n_items)) if a.items is None else _ints(a.items)
    banned = set() if a.banned is None else {j for j, b in enumerate(_ints(a.banned)) if b}
    indptr = None if a.exclude_indptr is None else _ints(a.exclude_indptr)
    ex = None if a.exclude_indices is None else _ints(a.exclude_indices)
    S = Q @ xp.permute_dims(V, (1, 0)) if Q.shape[1] else xp.zeros((m, n_items), dtype=Q.dtype)
    if a.item_bias is not None:
        S = S + a.item_bias
    for q in range(m):
        seen = set() if indptr is None else set(ex[indptr[q] : indptr[q + 1]])
        row = [float(v) for v in (S[q, :].tolist() if hasattr(S, "tolist") else S[q, :])]
        kept = [(row[j], j) for j in cand if j not in banned and j not in seen]
        kept = [(s, j) for s, j in kept if s > ninf]  # -inf and NaN never returned
        kept.sort(key=lambda t: (-t[0], t[1]))  # best first, ties to the lower id
        kept = kept[:n]
        for c in range(n):
            if c < len(kept):
                a.out_items[q, c] = kept[c][1]
                a.out_scores[q, c] = S[q, kept[c][1]]
            else:
                a.out_items[q, c] = -1
                a.out_scores[q, c] = ninf


def als_half_sweep(a: AlsArgs) -> int:
    """The row solves of the kernel, in the same order of operations (CG) or exactly (Cholesky
    in float64); returns the number of rows left unsolved (not positive definite / not finite)."""
    xp = namespace(a.X)
    X, Y = a.X, a.Y
    k = X.shape[1]
    if k == 0:
        return 0
    dt = X.dtype
    G = xp.permute_dims(Y, (1, 0)) @ Y if a.gram is None else a.gram
    A = G + xp.asarray(a.regularization, dtype=dt) * xp.eye(k, dtype=dt)
    indptr, indices = _ints(a.indptr), _ints(a.indices)
    rows = range(X.shape[0]) if a.rows is None else _ints(a.rows)
    failed = 0
    with np.errstate(all="ignore"):
        for u in rows:
            lo, hi = indptr[u], indptr[u + 1]
            ys = [Y[i, :] for i in indices[lo:hi]]
            cs = [a.confidence[e] for e in range(lo, hi)]
            if a.cg_steps == 0:
                A64 = xp.astype(A, xp.float64)
                b = xp.zeros(k, dtype=xp.float64)
                for y, c in zip(ys, cs):
                    y64 = xp.astype(y, xp.float64)
                    c = float(c)
                    A64 = A64 + (c - 1) * (y64[:, None] * y64[None, :])
                    b = b + c * y64
                # Singular to working precision: a pivot L_jj^2 below 1e-12 of A_jj (the kernels'
                # rule; rounding leaves tiny positive pivots rather than zeros).
                try:
                    L = np.linalg.cholesky(np.asarray(A64))
                except np.linalg.LinAlgError:
                    failed += 1
                    continue
                if not bool((np.diagonal(L) ** 2 > 1e-12 * np.diagonal(np.asarray(A64))).all()):
                    failed += 1
                    continue
                x = xp.astype(xp.linalg.solve(A64, b[:, None])[:, 0], dt)
            else:
                x = copy(xp, X[u, :])
                r = -(A @ x)
                for y, c in zip(ys, cs):
                    r = r + (c - (c - 1) * xp.sum(y * x)) * y
                p = copy(xp, r)
                rsold = xp.sum(r * r)
                for _ in range(a.cg_steps):
                    if not float(rsold) >= 1e-20:
                        break
                    Ap = A @ p
                    for y, c in zip(ys, cs):
                        Ap = Ap + ((c - 1) * xp.sum(y * p)) * y
                    alpha = rsold / xp.sum(p * Ap)
                    x = x + alpha * p
                    r = r - alpha * Ap
                    rsnew = xp.sum(r * r)
                    if float(rsnew) < 1e-20:
                        break
                    p = r + (rsnew / rsold) * p
                    rsold = rsnew
            if not bool(xp.all(xp.isfinite(x))):
                failed += 1
                continue
            X[u, :] = x
    return failed


def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def bpr_epoch(a: BprArgs) -> tuple[float, int, int, int]:
    """The threads' sample streams run one after another (thread 0's first): equal to the
    kernel on one thread."""
    xp = namespace(a.user_factors)
    U, V, b = a.user_factors, a.item_factors, a.item_bias
    dt = U.dtype
    lr, reg = xp.asarray(a.learning_rate, dtype=dt), xp.asarray(a.regularization, dtype=dt)
    indptr, indices, row_of = _ints(a.indptr), _ints(a.indices), _ints(a.row_of)
    nnz, n_items, S = len(indices), V.shape[0], int(a.n_samples)
    if S == 0 or nnz == 0:
        return 0.0, 0, 0, 0
    nt = a.num_threads if S >= _BPR_MIN_PARALLEL else 1
    loss, correct, updated, skipped = 0.0, 0, 0, 0
    with np.errstate(all="ignore"):
        for t in range(nt):
            state = (int(a.seed) + _THREAD_STRIDE * t) & _MASK
            for _ in range(S * t // nt, S * (t + 1) // nt):
                state, z1 = _splitmix64(state)
                state, z2 = _splitmix64(state)
                e = z1 % nnz
                j = indices[z2 % nnz] if a.popularity else z2 % n_items
                u, i = row_of[e], indices[e]
                if j in indices[indptr[u] : indptr[u + 1]]:
                    skipped += 1
                    continue
                pu, qi, qj = copy(xp, U[u, :]), copy(xp, V[i, :]), copy(xp, V[j, :])
                x = xp.sum(pu * (qi - qj))
                if b is not None:
                    x = x + (b[i] - b[j])
                xd = float(x)
                loss += math.log1p(math.exp(-xd)) if xd > 0 else -xd + math.log1p(math.exp(xd))
                correct += xd > 0
                updated += 1
                z = 1 / (1 + xp.exp(x))
                U[u, :] = pu + lr * (z * (qi - qj) - reg * pu)
                V[i, :] = qi + lr * (z * pu - reg * qi)
                V[j, :] = qj + lr * (-z * pu - reg * qj)
                if b is not None:
                    bi, bj = b[i], b[j]
                    b[i] = bi + lr * (z - reg * bi)
                    b[j] = bj + lr * (-z - reg * bj)
    return loss, correct, updated, skipped
