"""Reference SGD matrix factorization and block layout, written against the array API: one
rating at a time, in the order the kernel would use. Slow and obviously correct."""

from __future__ import annotations

import numpy as np

from recfast._backends.reference._xp import namespace
from recfast._kernel_args import BlockLayoutArgs, SgdMfArgs


def _tolist(a) -> list:
    if hasattr(a, "tolist"):
        return a.tolist()
    return [a[j].item() if hasattr(a[j], "item") else float(a[j]) for j in range(a.shape[0])]


def _check_copy(name: str, values, upper: int) -> None:
    if len(values) and (min(values) < 0 or max(values) >= upper):
        raise ValueError(f"{name} changed while the kernel ran: entries outside [0, {upper})")


def sgd_mf_epoch(a: SgdMfArgs) -> float:
    """One SGD epoch; returns the sum of squared errors, each taken before its update.

    The blocked schedule (``block_ptr``) gives the same result as this storage-order pass, so the
    reference ignores it; ``num_threads`` is ignored too (the oracle is sequential).
    """
    xp = namespace(a.values)
    U, V = a.user_factors, a.item_factors
    ub, ib, ua, ia = a.user_bias, a.item_bias, a.user_accum, a.item_accum
    dt = a.values.dtype  # the arithmetic's: float16 factors are storage only, widened per update

    def s(x):  # a scalar in the factors' dtype, so float32 arithmetic stays float32
        return xp.asarray(x, dtype=dt)

    lr, reg, breg, mu = (s(v) for v in (a.learning_rate, a.regularization,
                                        a.bias_regularization, a.global_mean))  # fmt: skip
    k = U.shape[1]
    biased, ada = ub is not None, ua is not None
    n_coords = s(k + (1 if biased else 0))
    # Private copies, checked: another thread may rewrite the caller's arrays during the call.
    rows, cols = _tolist(a.rows), _tolist(a.cols)
    order = range(len(rows)) if a.order is None else _tolist(a.order)
    _check_copy("rows", rows, U.shape[0])
    _check_copy("cols", cols, V.shape[0])
    _check_copy("order", order, len(rows))
    sse = 0.0
    with np.errstate(all="ignore"):  # divergence is reported by the caller, for every backend
        for n in order:
            u, i, r = int(rows[n]), int(cols[n]), a.values[n]
            p, q = xp.astype(U[u, :], dt, copy=True), xp.astype(V[i, :], dt, copy=True)
            pred = mu + xp.sum(p * q)
            if biased:
                pred = pred + (ub[u] + ib[i])
            e = r - pred
            if not ada:
                if biased:
                    ub[u] = ub[u] + lr * (e - breg * ub[u])
                    ib[i] = ib[i] + lr * (e - breg * ib[i])
                U[u, :] = p + lr * (e * q - reg * p)
                V[i, :] = q + lr * (e * p - reg * q)
            else:
                # LIBMF's row-wise AdaGrad: one accumulator of the mean squared gradient per row.
                lru, lri = lr / xp.sqrt(ua[u]), lr / xp.sqrt(ia[i])
                su = si = s(0)
                if biased:
                    gbu, gbi = breg * ub[u] - e, breg * ib[i] - e
                    ub[u] = ub[u] - lru * gbu
                    ib[i] = ib[i] - lri * gbi
                    su, si = gbu * gbu, gbi * gbi
                gp, gq = reg * p - e * q, reg * q - e * p
                U[u, :] = p - lru * gp
                V[i, :] = q - lri * gq
                if k or biased:  # k == 0 without biases: nothing to accumulate
                    ua[u] = ua[u] + (su + xp.sum(gp * gp)) / n_coords
                    ia[i] = ia[i] + (si + xp.sum(gq * gq)) / n_coords
            sse += float(e) * float(e)
    return sse


_MASK = (1 << 64) - 1


def _splitmix64(state: int) -> tuple[int, int]:
    """One step of splitmix64: ``(new state, output)``; the layout's shuffle RNG."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return state, z ^ (z >> 31)


def mf_block_layout(a: BlockLayoutArgs):
    """Lay ratings out for the blocked (FPSGD) schedule; see ``recfast.mf_block_layout``."""
    xp = namespace(a.values)
    nb, n_users, n_items = int(a.n_blocks), int(a.n_users), int(a.n_items)
    rows_in, cols_in = xp.asarray(a.rows, copy=True), xp.asarray(a.cols, copy=True)
    for name, x, hi in (("rows", rows_in, n_users), ("cols", cols_in, n_items)):
        if x.shape[0] and (int(xp.min(x)) < 0 or int(xp.max(x)) >= hi):
            raise ValueError(f"{name} changed while the kernel ran: entries outside [0, {hi})")
    r, c = xp.astype(rows_in, xp.int64), xp.astype(cols_in, xp.int64)
    ub, ib = r * nb // n_users, c * nb // n_items
    block = ((ib - ub) % nb) * nb + ub
    # Stable sort by (block, user): one user's ratings in a block keep their input order.
    perm = xp.argsort(block * n_users + r, stable=True)
    rows_out = xp.take(rows_in, perm)
    cols_out, values_out = xp.take(cols_in, perm), xp.take(a.values, perm)
    block_ptr = xp.searchsorted(
        xp.take(block, perm), xp.arange(nb * nb + 1, dtype=xp.int64), side="left"
    )
    block_ptr = xp.astype(block_ptr, xp.int64)
    if a.seed is not None:
        rl, cl, vl = _tolist(rows_out), _tolist(cols_out), _tolist(values_out)
        bp = _tolist(block_ptr)
        for b in range(nb * nb):
            state = (int(a.seed) + b) & _MASK
            lo, hi = int(bp[b]), int(bp[b + 1])
            s = lo
            while s < hi:  # Fisher-Yates within each user's run, as the C++ kernel does
                e = s + 1
                while e < hi and rl[e] == rl[s]:
                    e += 1
                for t in range(e - s - 1, 0, -1):
                    state, x = _splitmix64(state)
                    j = s + x % (t + 1)
                    cl[s + t], cl[j] = cl[j], cl[s + t]
                    vl[s + t], vl[j] = vl[j], vl[s + t]
                s = e
        cols_out = xp.asarray(cl, dtype=a.cols.dtype)
        values_out = xp.asarray(vl, dtype=a.values.dtype)
    return rows_out, cols_out, values_out, block_ptr
