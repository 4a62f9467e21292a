"""The yardstick of the MF benchmark: a plain single-threaded Numba SGD loop (biased MF, storage
order, no blocking or prefetching), what a user would write by hand."""

from __future__ import annotations

import numpy as np
from numba import njit

import recfast._backends.numba  # noqa: F401  (caches these kernels in recfast's user cache folder)


@njit(cache=True, nogil=True, fastmath=False)
def numba_sgd_loop(rows, cols, values, U, V, ub, ib, mu, lr, reg):
    k = U.shape[1]
    sse = 0.0
    for n in range(values.shape[0]):
        u = rows[n]
        i = cols[n]
        pred = mu + ub[u] + ib[i]
        for f in range(k):
            pred += U[u, f] * V[i, f]
        e = values[n] - pred
        sse += e * e
        ub[u] += lr * (e - reg * ub[u])
        ib[i] += lr * (e - reg * ib[i])
        for f in range(k):
            pf = U[u, f]
            qf = V[i, f]
            U[u, f] = pf + lr * (e * qf - reg * pf)
            V[i, f] = qf + lr * (e * pf - reg * qf)
    return sse


def numba_sgd_fit(rows, cols, values, n_users, n_items, k, epochs, seed=0, lr=0.01, reg=0.05):
    """Fit with the plain loop: init, then ``epochs`` passes in storage order."""
    rng = np.random.default_rng(seed)
    dt = values.dtype
    U = (rng.standard_normal((n_users, k)) * 0.1).astype(dt)
    V = (rng.standard_normal((n_items, k)) * 0.1).astype(dt)
    ub, ib = np.zeros(n_users, dt), np.zeros(n_items, dt)
    mu = dt.type(values.mean())
    for _ in range(epochs):
        numba_sgd_loop(rows, cols, values, U, V, ub, ib, mu, dt.type(lr), dt.type(reg))
    return U, V, ub, ib
