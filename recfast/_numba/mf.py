"""Numba SGD matrix factorization: the same update and schedules as the C++ kernel."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

# Below this many ratings a parallel region costs more than it saves (as in the C++ kernel).
_MIN_PARALLEL = 16384


@njit(cache=True, nogil=True, inline="always")
def _update(U, V, ub, ib, ua, ia, u, i, r, mu, lr, reg, breg, biased, ada):
    k = U.shape[1]
    dot = U.dtype.type(0)
    for f in range(k):
        dot += U[u, f] * V[i, f]
    pred = mu + dot
    if biased:
        pred += ub[u] + ib[i]
    e = r - pred
    if not ada:
        if biased:
            ub[u] += lr * (e - breg * ub[u])
            ib[i] += lr * (e - breg * ib[i])
        for f in range(k):
            pf = U[u, f]
            qf = V[i, f]
            U[u, f] = pf + lr * (e * qf - reg * pf)
            V[i, f] = qf + lr * (e * pf - reg * qf)
        return e * e
    lru = lr / np.sqrt(ua[u])
    lri = lr / np.sqrt(ia[i])
    su = U.dtype.type(0)
    si = U.dtype.type(0)
    if biased:
        gbu = breg * ub[u] - e
        gbi = breg * ib[i] - e
        ub[u] -= lru * gbu
        ib[i] -= lri * gbi
        su = gbu * gbu
        si = gbi * gbi
    for f in range(k):
        pf = U[u, f]
        qf = V[i, f]
        gp = reg * pf - e * qf
        gq = reg * qf - e * pf
        U[u, f] = pf - lru * gp
        V[i, f] = qf - lri * gq
        su += gp * gp
        si += gq * gq
    n = U.dtype.type(k + (1 if biased else 0))
    ua[u] += su / n
    ia[i] += si / n
    return e * e


@njit(cache=True, nogil=True)
def _span(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, lo, hi, mu, lr, reg, breg,
          biased, ada):
    sse = 0.0
    for j in range(lo, hi):
        n = order[j] if use_order else j
        e2 = _update(U, V, ub, ib, ua, ia, rows[n], cols[n], values[n], mu, lr, reg, breg, biased, ada)
        sse += e2
    return sse


@njit(cache=True, nogil=True, parallel=True)
def _blocked(rows, cols, values, U, V, ub, ib, ua, ia, block_ptr, nb, mu, lr, reg, breg, biased, ada):
    # Blocks of one stratum share no user and no item: parallel, and equal to the sequential pass.
    block_sse = np.zeros(nb * nb)
    for s in range(nb):
        for b in prange(nb):
            bid = s * nb + b
            block_sse[bid] = _span(rows, cols, values, U, V, ub, ib, ua, ia, block_ptr, False,
                                   block_ptr[bid], block_ptr[bid + 1], mu, lr, reg, breg, biased, ada)
    return block_sse.sum()


@njit(cache=True, nogil=True, parallel=True)
def _hogwild(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, n, nt, mu, lr, reg, breg,
             biased, ada):
    part = np.zeros(nt)
    for t in prange(nt):
        part[t] = _span(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, n * t // nt,
                        n * (t + 1) // nt, mu, lr, reg, breg, biased, ada)
    return part.sum()


def sgd_mf_epoch(
    rows, cols, values, user_factors, item_factors, user_bias=None, item_bias=None,
    user_accum=None, item_accum=None, order=None, block_ptr=None, n_blocks=0, *,
    learning_rate, regularization, bias_regularization, global_mean, num_threads=1,
) -> float:
    """Numba SGD epoch; see ``recfast.sgd_mf_epoch``. Returns the sum of squared errors."""
    U, V = user_factors, item_factors
    T = U.dtype.type
    empty = np.zeros(0, U.dtype)
    biased, ada = user_bias is not None, user_accum is not None
    ub, ib = (user_bias, item_bias) if biased else (empty, empty)
    ua, ia = (user_accum, item_accum) if ada else (empty, empty)
    mu, lr, reg, breg = T(global_mean), T(learning_rate), T(regularization), T(bias_regularization)
    n = len(values) if order is None else len(order)
    nt = 1 if n < _MIN_PARALLEL else max(1, min(int(num_threads), numba.config.NUMBA_NUM_THREADS))
    args = (rows, cols, values, U, V, ub, ib, ua, ia)
    tail = (mu, lr, reg, breg, biased, ada)
    if block_ptr is not None:
        if nt == 1:
            return float(_span(*args, block_ptr, False, 0, len(values), *tail))
        prev = numba.get_num_threads()
        numba.set_num_threads(nt)  # thread-local in Numba
        try:
            return float(_blocked(*args, block_ptr, int(n_blocks), *tail))
        finally:
            numba.set_num_threads(prev)
    use_order = order is not None
    ordv = order if use_order else np.zeros(0, np.int64)
    if nt == 1:
        return float(_span(*args, ordv, use_order, 0, n, *tail))
    prev = numba.get_num_threads()
    numba.set_num_threads(nt)
    try:
        return float(_hogwild(*args, ordv, use_order, n, nt, *tail))
    finally:
        numba.set_num_threads(prev)


@njit(cache=True, nogil=True)
def _layout(rows, cols, n_users, n_items, nb, perm, block_ptr):
    nnz = rows.shape[0]
    count = np.zeros(max(n_users, nb * nb) + 1, np.int64)
    by_user = np.empty(nnz, np.int64)
    for j in range(nnz):
        count[rows[j] + 1] += 1
    for u in range(n_users):
        count[u + 1] += count[u]
    for j in range(nnz):
        by_user[count[rows[j]]] = j
        count[rows[j]] += 1
    blk = np.empty(nnz, np.int64)
    for j in range(nnz):
        ub = np.int64(rows[j]) * nb // n_users
        ibk = np.int64(cols[j]) * nb // n_items
        blk[j] = ((ibk - ub + nb) % nb) * nb + ub
        block_ptr[blk[j] + 1] += 1
    for b in range(nb * nb):
        block_ptr[b + 1] += block_ptr[b]
    nxt = block_ptr[:-1].copy()
    for j in by_user:
        perm[nxt[blk[j]]] = j
        nxt[blk[j]] += 1


def mf_block_layout(rows, cols, n_users: int, n_items: int, n_blocks: int):
    """Numba block layout; see ``recfast.reference.mf.mf_block_layout``."""
    perm = np.empty(len(rows), np.int64)
    block_ptr = np.zeros(int(n_blocks) ** 2 + 1, np.int64)
    _layout(rows, cols, int(n_users), int(n_items), int(n_blocks), perm, block_ptr)
    return perm, block_ptr
