"""Reference SGD matrix factorization: one rating at a time, in the order the kernel would use."""

from __future__ import annotations

import numpy as np


def sgd_mf_epoch(
    rows, cols, values, user_factors, item_factors, user_bias=None, item_bias=None,
    user_accum=None, item_accum=None, order=None, block_ptr=None, n_blocks=0, *,
    learning_rate, regularization, bias_regularization, global_mean, num_threads=1,
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


def mf_block_layout(rows, cols, n_users: int, n_items: int, n_blocks: int):
    """Order ratings for the blocked (FPSGD) schedule.

    Returns ``(perm, block_ptr)``: position j of the new layout holds rating ``perm[j]``; block
    ``b`` spans ``perm[block_ptr[b]:block_ptr[b + 1]]``. Blocks are stratum-major (block id =
    stratum * nb + user block, stratum = (item block - user block) mod nb), users ascend within a
    block, and ties keep their input order.
    """
    nb = int(n_blocks)
    r, c = rows.astype(np.int64), cols.astype(np.int64)
    ub, ib = r * nb // n_users, c * nb // n_items
    block = ((ib - ub) % nb) * nb + ub
    perm = np.lexsort((r, block)).astype(np.int64)  # lexsort is stable: ties keep input order
    counts = np.bincount(block, minlength=nb * nb)
    block_ptr = np.zeros(nb * nb + 1, np.int64)
    np.cumsum(counts, out=block_ptr[1:])
    return perm, block_ptr
