"""Numba implicit-feedback kernels: the same top-k, iALS row solves and BPR sampler as the C++
kernels (same splitmix64 streams, so one thread gives the same BPR samples)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from recfast._kernel_args import AlsArgs, BprArgs, TopkArgs

_BPR_MIN_PARALLEL = 4096
_ALS_MIN_PARALLEL = 64


@njit(cache=True, nogil=True)
def _sift_down(hs, hid, p, size):
    while True:
        c = 2 * p + 1
        if c >= size:
            return
        if c + 1 < size and (hs[c + 1] < hs[c] or (hs[c + 1] == hs[c] and hid[c + 1] > hid[c])):
            c += 1
        if not (hs[c] < hs[p] or (hs[c] == hs[p] and hid[c] > hid[p])):
            return
        hs[c], hs[p] = hs[p], hs[c]
        hid[c], hid[p] = hid[p], hid[c]
        p = c


@njit(cache=True, nogil=True, parallel=True)
def _topk(Q, Vc, eb, cand_ids, pos, ex_ptr, ex_idx, n, out_items, out_scores):
    m = Q.shape[0]
    nc = Vc.shape[0]
    ninf = -np.inf
    for q in prange(m):
        s = Vc @ Q[q] if Q.shape[1] else np.zeros(nc, Q.dtype)
        s = s + eb
        if ex_ptr.shape[0]:
            for x in range(ex_ptr[q], ex_ptr[q + 1]):
                p = pos[ex_idx[x]]
                if p >= 0:
                    s[p] = ninf
        hs = np.empty(n, Q.dtype)
        hid = np.empty(n, np.int64)
        size = 0
        thr = ninf
        for j in range(nc):
            v = s[j]
            if v > thr:
                if size < n:
                    c = size
                    size += 1
                    hs[c] = v
                    hid[c] = cand_ids[j]
                    while c > 0:
                        p = (c - 1) // 2
                        if not (hs[c] < hs[p] or (hs[c] == hs[p] and hid[c] > hid[p])):
                            break
                        hs[c], hs[p] = hs[p], hs[c]
                        hid[c], hid[p] = hid[p], hid[c]
                        c = p
                    if size == n:
                        thr = hs[0]
                else:
                    hs[0] = v
                    hid[0] = cand_ids[j]
                    _sift_down(hs, hid, 0, size)
                    thr = hs[0]
        kept = size
        while size > 0:
            size -= 1
            out_scores[q, size] = hs[0]
            out_items[q, size] = hid[0]
            hs[0] = hs[size]
            hid[0] = hid[size]
            _sift_down(hs, hid, 0, size)
        for c in range(kept, n):
            out_items[q, c] = -1
            out_scores[q, c] = ninf


def topk(a: TopkArgs) -> None:
    V = a.item_factors
    n_items = V.shape[0]
    dt = V.dtype
    cand = np.arange(n_items, dtype=np.int64) if a.items is None else a.items
    Vc = V if a.items is None else np.ascontiguousarray(V[cand])
    eb = np.zeros(len(cand), dt) if a.item_bias is None else a.item_bias[cand].astype(dt)
    if a.banned is not None:
        eb[a.banned[cand].astype(bool)] = -np.inf
    pos = np.full(n_items, -1, np.int64)
    pos[cand] = np.arange(len(cand))
    empty = np.zeros(0, np.int64)
    ex_ptr = empty if a.exclude_indptr is None else a.exclude_indptr
    ex_idx = empty if a.exclude_indices is None else a.exclude_indices
    _topk(a.user_factors, Vc, eb, cand, pos, ex_ptr, ex_idx, a.n, a.out_items, a.out_scores)


@njit(cache=True, nogil=True)
def _cg_row(A, Y, indices, conf, lo, hi, x, steps):
    k = x.shape[0]
    r = -(A @ x)
    for e in range(lo, hi):
        y = Y[indices[e]]
        c = conf[e]
        r += (c - (c - 1) * np.dot(y, x)) * y
    p = r.copy()
    rsold = np.dot(r, r)
    for _ in range(steps):
        if not rsold >= 1e-20:
            break
        Ap = A @ p
        for e in range(lo, hi):
            y = Y[indices[e]]
            Ap += ((conf[e] - 1) * np.dot(y, p)) * y
        alpha = rsold / np.dot(p, Ap)
        x += alpha * p
        r -= alpha * Ap
        rsnew = np.dot(r, r)
        if rsnew < 1e-20:
            break
        p = r + (rsnew / rsold) * p
        rsold = rsnew
    ok = True
    for f in range(k):
        ok &= np.isfinite(x[f])
    return ok


@njit(cache=True, nogil=True)
def _chol_row(A, Y, indices, conf, lo, hi, k):
    M = A.astype(np.float64)
    b = np.zeros(k, np.float64)
    for e in range(lo, hi):
        y = Y[indices[e]].astype(np.float64)
        c = np.float64(conf[e])
        M += (c - 1) * np.outer(y, y)
        b += c * y
    L = np.zeros((k, k), np.float64)
    for j in range(k):
        d = M[j, j] - np.dot(L[j, :j], L[j, :j])
        if not (d > 1e-12 * M[j, j] and np.isfinite(d)):  # singular to working precision
            return b, False
        d = np.sqrt(d)
        L[j, j] = d
        for r in range(j + 1, k):
            L[r, j] = (M[r, j] - np.dot(L[r, :j], L[j, :j])) / d
    z = np.zeros(k, np.float64)
    for r in range(k):
        z[r] = (b[r] - np.dot(L[r, :r], z[:r])) / L[r, r]
    x = np.zeros(k, np.float64)
    for r in range(k - 1, -1, -1):
        x[r] = (z[r] - np.dot(L[r + 1 :, r], x[r + 1 :])) / L[r, r]
    ok = True
    for f in range(k):
        ok &= np.isfinite(x[f])
    return x, ok


@njit(cache=True, nogil=True, parallel=True)
def _als(indptr, indices, conf, X, Y, rows, A, steps):
    n = rows.shape[0]
    k = X.shape[1]
    failed = np.zeros(n, np.int64)
    for j in prange(n):
        u = rows[j]
        lo, hi = indptr[u], indptr[u + 1]
        if steps > 0:
            x = X[u].copy()
            if _cg_row(A, Y, indices, conf, lo, hi, x, steps):
                X[u] = x
            else:
                failed[j] = 1
        else:
            x64, ok = _chol_row(A, Y, indices, conf, lo, hi, k)
            if ok:
                for f in range(k):
                    X[u, f] = x64[f]
                ok2 = True
                for f in range(k):
                    ok2 &= np.isfinite(X[u, f])
                if not ok2:
                    failed[j] = 1
            else:
                failed[j] = 1
    return failed.sum()


def als_half_sweep(a: AlsArgs) -> int:
    X, Y = a.X, a.Y
    k = X.shape[1]
    if k == 0:
        return 0
    A = Y.T @ Y if a.gram is None else a.gram.copy()
    A[np.diag_indices(k)] += X.dtype.type(a.regularization)
    rows = np.arange(X.shape[0], dtype=np.int64) if a.rows is None else a.rows
    return int(_als(a.indptr, a.indices, a.confidence, X, Y, rows, A, a.cg_steps))


@njit(cache=True, nogil=True, inline="always")
def _splitmix64(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _bpr_stream(indptr, indices, row_of, U, V, b, has_bias, lo, hi, seed, lr, reg, pop, out):
    k = U.shape[1]
    nnz = np.uint64(indices.shape[0])
    n_items = np.uint64(V.shape[0])
    state = seed
    one = U.dtype.type(1)
    for _ in range(lo, hi):
        state, z1 = _splitmix64(state)
        state, z2 = _splitmix64(state)
        e = np.int64(z1 % nnz)
        j = np.int64(indices[np.int64(z2 % nnz)]) if pop else np.int64(z2 % n_items)
        u = np.int64(row_of[e])
        i = np.int64(indices[e])
        l0 = indptr[u]
        h0 = indptr[u + 1]
        lo_, hi_ = l0, h0
        while lo_ < hi_:
            mid = (lo_ + hi_) >> 1
            if indices[mid] < j:
                lo_ = mid + 1
            else:
                hi_ = mid
        if lo_ < h0 and indices[lo_] == j:
            out[3] += 1
            continue
        x = U.dtype.type(0)
        for f in range(k):
            x += U[u, f] * (V[i, f] - V[j, f])
        if has_bias:
            x += b[i] - b[j]
        xd = np.float64(x)
        out[0] += np.log1p(np.exp(-xd)) if xd > 0 else -xd + np.log1p(np.exp(xd))
        if x > 0:
            out[1] += 1
        out[2] += 1
        z = one / (one + np.exp(x))
        for f in range(k):
            uf, vi, vj = U[u, f], V[i, f], V[j, f]
            U[u, f] = uf + lr * (z * (vi - vj) - reg * uf)
            V[i, f] = vi + lr * (z * uf - reg * vi)
            V[j, f] = vj + lr * (-z * uf - reg * vj)
        if has_bias:
            bi, bj = b[i], b[j]
            b[i] = bi + lr * (z - reg * bi)
            b[j] = bj + lr * (-z - reg * bj)


@njit(cache=True, nogil=True, parallel=True)
def _bpr(indptr, indices, row_of, U, V, b, has_bias, S, nt, seeds, lr, reg, pop):
    out = np.zeros((nt, 4), np.float64)
    for t in prange(nt):
        _bpr_stream(indptr, indices, row_of, U, V, b, has_bias, S * t // nt, S * (t + 1) // nt,
                    seeds[t], lr, reg, pop, out[t])  # fmt: skip
    return out.sum(axis=0)


def bpr_epoch(a: BprArgs) -> tuple[float, int, int, int]:
    S = int(a.n_samples)
    if S == 0 or a.indices.shape[0] == 0:
        return 0.0, 0, 0, 0
    nt = a.num_threads if S >= _BPR_MIN_PARALLEL else 1
    mask = (1 << 64) - 1
    seeds = np.array([(int(a.seed) + 0x632BE59BD9B4E019 * t) & mask for t in range(nt)], np.uint64)
    dt = a.user_factors.dtype.type
    has_bias = a.item_bias is not None
    b = a.item_bias if has_bias else np.zeros(1, a.user_factors.dtype)
    r = _bpr(a.indptr, a.indices, a.row_of, a.user_factors, a.item_factors, b, has_bias, S, nt,
             seeds, dt(a.learning_rate), dt(a.regularization), a.popularity)  # fmt: skip
    return float(r[0]), int(r[1]), int(r[2]), int(r[3])
