"""Numba dense layer: NumPy's BLAS for the products, a parallel Numba pass for bias + activation."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recfast._validate import ACTIVATION_CODES as _CODES

# As in the C++ pass: parallel workers left spinning starve the BLAS threads of the products
# around this pass, so it runs on one thread unless the output is large.
_MIN_PARALLEL = 1 << 22


@njit(cache=True, nogil=True, parallel=True)
def _bias_act(y, b, has_b, code):
    n, h = y.shape
    for i in prange(n):
        for j in range(h):
            z = y[i, j] + b[j] if has_b else y[i, j]
            if code == 1:
                z = z if z > 0 else z * 0
            elif code == 2:
                z = 1 / (1 + np.exp(-z))
            elif code == 3:
                z = np.tanh(z)
            y[i, j] = z


@njit(cache=True, nogil=True, parallel=True)
def _act_back(g_out, y, code, g):
    n, h = g_out.shape
    for i in prange(n):
        for j in range(h):
            v = y[i, j]
            if code == 1:
                d = 1.0 if v > 0 else 0.0
            elif code == 2:
                d = v * (1 - v)
            elif code == 3:
                d = 1 - v * v
            else:
                d = 1.0
            g[i, j] = g_out[i, j] * d


def _threads(n, size):
    prev = numba.get_num_threads()
    n = 1 if size < _MIN_PARALLEL else n
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return prev


def dense_forward(x, W, b, activation, out, num_threads=1):
    np.matmul(x, W.T, out=out)
    code = _CODES[activation]
    if b is not None or code:
        prev = _threads(num_threads, out.size)
        try:
            _bias_act(out, b if b is not None else out[0], b is not None, code)
        finally:
            numba.set_num_threads(prev)
    return out


def dense_backward(grad_out, x, W, y, activation, needs, num_threads=1):
    code = _CODES[activation]
    if code:
        g = np.empty_like(grad_out)
        prev = _threads(num_threads, g.size)
        try:
            _act_back(grad_out, y, code, g)
        finally:
            numba.set_num_threads(prev)
    else:
        g = grad_out
    gx = g @ W if "x" in needs else None
    gW = g.T @ x if "W" in needs else None
    gb = g.sum(axis=0) if "b" in needs else None
    return gx, gW, gb
