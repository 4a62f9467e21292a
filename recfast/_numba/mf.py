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
def _span(
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
    use_order,
    lo,
    hi,
    mu,
    lr,
    reg,
    breg,
    biased,
    ada,
):
    sse = 0.0
    for j in range(lo, hi):
        n = order[j] if use_order else j
        e2 = _update(
            U, V, ub, ib, ua, ia, rows[n], cols[n], values[n], mu, lr, reg, breg, biased, ada
        )
        sse += e2
    return sse


@njit(cache=True, nogil=True, parallel=True)
def _blocked(
    rows, cols, values, U, V, ub, ib, ua, ia, block_ptr, nb, mu, lr, reg, breg, biased, ada
):
    # Blocks of one stratum share no user and no item: parallel, and equal to the sequential pass.
    block_sse = np.zeros(nb * nb)
    for s in range(nb):
        for b in prange(nb):
            bid = s * nb + b
            block_sse[bid] = _span(
                rows,
                cols,
                values,
                U,
                V,
                ub,
                ib,
                ua,
                ia,
                block_ptr,
                False,
                block_ptr[bid],
                block_ptr[bid + 1],
                mu,
                lr,
                reg,
                breg,
                biased,
                ada,
            )
    return block_sse.sum()


@njit(cache=True, nogil=True, parallel=True)
def _hogwild(
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
    use_order,
    n,
    nt,
    mu,
    lr,
    reg,
    breg,
    biased,
    ada,
):
    part = np.zeros(nt)
    for t in prange(nt):
        part[t] = _span(
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
            use_order,
            n * t // nt,
            n * (t + 1) // nt,
            mu,
            lr,
            reg,
            breg,
            biased,
            ada,
        )
    return part.sum()


def sgd_mf_epoch(
    rows,
    cols,
    values,
    user_factors,
    item_factors,
    user_bias=None,
    item_bias=None,
    user_accum=None,
    item_accum=None,
    order=None,
    block_ptr=None,
    n_blocks=0,
    *,
    learning_rate,
    regularization,
    bias_regularization,
    global_mean,
    num_threads=1,
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
        # Always the per-block loss sum (even on one thread), so the loss is reproducible too.
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
def _splitmix64(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _layout(
    rows,
    cols,
    values,
    n_users,
    n_items,
    nb,
    shuffle,
    seed,
    rows_out,
    cols_out,
    values_out,
    block_ptr,
):
    nnz = rows.shape[0]
    blk = np.empty(nnz, np.int64)
    for j in range(nnz):
        ub = np.int64(rows[j]) * nb // n_users
        ibk = np.int64(cols[j]) * nb // n_items
        blk[j] = ((ibk - ub + nb) % nb) * nb + ub
    # LSD radix: stable by user, then stable by block.
    count = np.zeros(n_users + 1, np.int64)
    for j in range(nnz):
        count[rows[j] + 1] += 1
    for u in range(n_users):
        count[u + 1] += count[u]
    by_user = np.empty(nnz, np.int64)
    for j in range(nnz):
        by_user[count[rows[j]]] = j
        count[rows[j]] += 1
    for j in range(nnz):
        block_ptr[blk[j] + 1] += 1
    for b in range(nb * nb):
        block_ptr[b + 1] += block_ptr[b]
    nxt = block_ptr[:-1].copy()
    for j in by_user:
        pos = nxt[blk[j]]
        nxt[blk[j]] += 1
        rows_out[pos] = rows[j]
        cols_out[pos] = cols[j]
        values_out[pos] = values[j]
    if not shuffle:
        return
    for b in range(nb * nb):
        state = seed + np.uint64(b)
        s = block_ptr[b]
        hi = block_ptr[b + 1]
        while s < hi:
            e = s + 1
            while e < hi and rows_out[e] == rows_out[s]:
                e += 1
            for t in range(e - s - 1, 0, -1):
                state, x = _splitmix64(state)
                j = s + np.int64(x % np.uint64(t + 1))
                cols_out[s + t], cols_out[j] = cols_out[j], cols_out[s + t]
                values_out[s + t], values_out[j] = values_out[j], values_out[s + t]
            s = e


def mf_block_layout(
    rows, cols, values, n_users: int, n_items: int, n_blocks: int, seed=None, num_threads: int = 1
):
    """Numba block layout; see ``recfast.mf_block_layout``."""
    nb = int(n_blocks)
    rows_out, cols_out, values_out = np.empty_like(rows), np.empty_like(cols), np.empty_like(values)
    block_ptr = np.zeros(nb * nb + 1, np.int64)
    _layout(
        rows,
        cols,
        values,
        int(n_users),
        int(n_items),
        nb,
        seed is not None,
        np.uint64(0 if seed is None else seed),
        rows_out,
        cols_out,
        values_out,
        block_ptr,
    )
    return rows_out, cols_out, values_out, block_ptr
