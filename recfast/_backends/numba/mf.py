"""Numba SGD matrix factorization: the same update and schedules as the C++ kernel."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recfast._kernel_args import BlockLayoutArgs, SgdMfArgs

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
    coords = k + (1 if biased else 0)
    if coords > 0:  # k == 0 without biases: nothing was updated, nothing to accumulate
        n = U.dtype.type(coords)
        ua[u] += su / n
        ia[i] += si / n
    return e * e


@njit(cache=True, nogil=True)
def _span(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, lo, hi, mu, lr, reg, breg,
          biased, ada, bad, slot):  # fmt: skip
    """Ratings lo..hi-1. Every index is checked as it is read (Python checked them before the
    call, but another thread may rewrite the caller's arrays meanwhile): a rating whose index is
    out of range is skipped and counted in ``bad[slot]``, never used to address memory."""
    sse = 0.0
    nnz, nu, ni = values.shape[0], U.shape[0], V.shape[0]
    for j in range(lo, hi):
        n = order[j] if use_order else j
        if n < 0 or n >= nnz:
            bad[slot] += 1
            continue
        u, i = rows[n], cols[n]
        if u < 0 or u >= nu or i < 0 or i >= ni:
            bad[slot] += 1
            continue
        sse += _update(U, V, ub, ib, ua, ia, u, i, values[n], mu, lr, reg, breg, biased, ada)
    return sse


@njit(cache=True, nogil=True, parallel=True)
def _blocked(
    rows, cols, values, U, V, ub, ib, ua, ia, block_ptr, nb, mu, lr, reg, breg, biased, ada, bad
):
    # Blocks of one stratum share no user and no item: parallel, and equal to the sequential pass.
    block_sse = np.zeros(nb * nb)
    for s in range(nb):
        for b in prange(nb):
            bid = s * nb + b
            block_sse[bid] = _span(rows, cols, values, U, V, ub, ib, ua, ia, block_ptr, False,
                                   block_ptr[bid], block_ptr[bid + 1], mu, lr, reg, breg, biased,
                                   ada, bad, bid)  # fmt: skip
    return block_sse.sum()


@njit(cache=True, nogil=True, parallel=True)
def _hogwild(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, n, nt, mu, lr, reg, breg,
             biased, ada, bad):  # fmt: skip
    part = np.zeros(nt)
    for t in prange(nt):
        part[t] = _span(rows, cols, values, U, V, ub, ib, ua, ia, order, use_order, n * t // nt,
                        n * (t + 1) // nt, mu, lr, reg, breg, biased, ada, bad, t)  # fmt: skip
    return part.sum()


def _raise_if_skipped(bad: np.ndarray) -> None:
    if bad.any():
        raise ValueError(
            f"rows, cols or order changed while the kernel ran: {int(bad.sum())} ratings had "
            "indices out of range and were skipped (do not modify the inputs during a call)"
        )


def sgd_mf_epoch(a: SgdMfArgs) -> float:
    """Numba SGD epoch; see ``recfast.sgd_mf_epoch``. Returns the sum of squared errors."""
    (rows, cols, values, user_factors, item_factors, user_bias, item_bias, user_accum, item_accum,
     order, block_ptr, n_blocks, learning_rate, regularization, bias_regularization, global_mean,
     num_threads) = a  # fmt: skip
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
        nb = int(n_blocks)
        bad = np.zeros(nb * nb, np.int64)
        prev = numba.get_num_threads()
        numba.set_num_threads(nt)  # thread-local in Numba
        try:
            sse = float(_blocked(*args, block_ptr, nb, *tail, bad))
        finally:
            numba.set_num_threads(prev)
        _raise_if_skipped(bad)
        return sse
    use_order = order is not None
    ordv = order if use_order else np.zeros(0, np.int64)
    bad = np.zeros(nt, np.int64)
    if nt == 1:
        sse = float(_span(*args, ordv, use_order, 0, n, *tail, bad, 0))
    else:
        prev = numba.get_num_threads()
        numba.set_num_threads(nt)
        try:
            sse = float(_hogwild(*args, ordv, use_order, n, nt, *tail, bad))
        finally:
            numba.set_num_threads(prev)
    _raise_if_skipped(bad)
    return sse


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


def mf_block_layout(a: BlockLayoutArgs):
    """Numba block layout; see ``recfast.mf_block_layout``."""
    rows, cols, values, n_users, n_items, n_blocks, seed, num_threads = a
    # A private copy of the indices, checked: the layout reads each several times, and another
    # thread may rewrite the caller's arrays meanwhile (a copy is cheap beside the layout).
    rows, cols = rows.copy(), cols.copy()
    for name, x, hi in (("rows", rows, n_users), ("cols", cols, n_items)):
        if x.size and (x.min() < 0 or x.max() >= hi):
            raise ValueError(f"{name} changed while the kernel ran: entries outside [0, {hi})")
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
