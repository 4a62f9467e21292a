"""Reference SGD matrix factorization: one rating at a time, in the order the kernel would use."""

from __future__ import annotations

import numpy as np


@np.errstate(all="ignore")  # divergence is reported by the caller, as for every backend
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
    """One SGD epoch; returns the sum of squared errors, each taken before its update.

    The blocked schedule (``block_ptr``) gives the same result as this storage-order pass, so the
    reference ignores it; ``num_threads`` is ignored too (the oracle is sequential).
    """
    U, V = user_factors, item_factors
    T = U.dtype.type
    lr, reg, breg, mu = T(learning_rate), T(regularization), T(bias_regularization), T(global_mean)
    k = U.shape[1]
    idx = range(len(values)) if order is None else order
    biased, ada = user_bias is not None, user_accum is not None
    n_coords = T(k + (1 if biased else 0))
    sse = 0.0
    for n in idx:
        u, i, r = int(rows[n]), int(cols[n]), values[n]
        p, q = U[u].copy(), V[i].copy()
        pred = mu + T(np.dot(p, q))
        if biased:
            pred = pred + (user_bias[u] + item_bias[i])
        e = T(r - pred)
        if not ada:
            if biased:
                user_bias[u] += lr * (e - breg * user_bias[u])
                item_bias[i] += lr * (e - breg * item_bias[i])
            U[u] = p + lr * (e * q - reg * p)
            V[i] = q + lr * (e * p - reg * q)
        else:
            # LIBMF's row-wise AdaGrad: one accumulator of the mean squared gradient per row.
            lru, lri = lr / np.sqrt(user_accum[u]), lr / np.sqrt(item_accum[i])
            su = si = T(0)
            if biased:
                gbu, gbi = breg * user_bias[u] - e, breg * item_bias[i] - e
                user_bias[u] -= lru * gbu
                item_bias[i] -= lri * gbi
                su, si = gbu * gbu, gbi * gbi
            gp, gq = reg * p - e * q, reg * q - e * p
            U[u] = p - lru * gp
            V[i] = q - lri * gq
            user_accum[u] += (su + T(np.dot(gp, gp))) / n_coords
            item_accum[i] += (si + T(np.dot(gq, gq))) / n_coords
        sse += float(e) * float(e)
    return sse


_MASK = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """One step of splitmix64: ``(new state, output)``; the layout's shuffle RNG."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def mf_block_layout(
    rows, cols, values, n_users: int, n_items: int, n_blocks: int, seed=None, num_threads: int = 1
):
    """Lay ratings out for the blocked (FPSGD) schedule; see ``recfast.mf_block_layout``."""
    nb = int(n_blocks)
    r, c = rows.astype(np.int64), cols.astype(np.int64)
    ub, ib = r * nb // n_users, c * nb // n_items
    block = ((ib - ub) % nb) * nb + ub
    perm = np.lexsort((r, block))  # stable: one user's ratings in a block keep input order
    rows_out, cols_out, values_out = rows[perm], cols[perm], values[perm]
    block_ptr = np.zeros(nb * nb + 1, np.int64)
    np.cumsum(np.bincount(block, minlength=nb * nb), out=block_ptr[1:])
    if seed is not None:
        for b in range(nb * nb):
            state = (int(seed) + b) & _MASK
            lo, hi = int(block_ptr[b]), int(block_ptr[b + 1])
            s = lo
            while s < hi:  # Fisher-Yates within each user's run, as the C++ kernel does
                e = s + 1
                while e < hi and rows_out[e] == rows_out[s]:
                    e += 1
                for t in range(e - s - 1, 0, -1):
                    state, x = splitmix64(state)
                    j = s + x % (t + 1)
                    cols_out[[s + t, j]] = cols_out[[j, s + t]]
                    values_out[[s + t, j]] = values_out[[j, s + t]]
                s = e
    return rows_out, cols_out, values_out, block_ptr
