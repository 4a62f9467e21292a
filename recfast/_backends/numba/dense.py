"""Numba dense layer: NumPy's BLAS for the products, a parallel Numba pass for bias + activation."""

from __future__ import annotations

import numba
import numpy as np

from recfast._backends.numba._activation import bias_act, grad_pre
from recfast._codes import ACTIVATION_CODES as _CODES
from recfast._kernel_args import DenseArgs, DenseBackwardArgs

# As in the C++ pass: parallel workers left spinning starve the BLAS threads of the products
# around this pass, so it runs on one thread unless the output is large.
_MIN_PARALLEL = 1 << 22


def _threads(n, size):
    prev = numba.get_num_threads()
    n = 1 if size < _MIN_PARALLEL else n
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    return prev


def dense_forward(a: DenseArgs):
    x, W, b, activation, out, num_threads = a
    np.matmul(x, W.T, out=out)
    code = _CODES[activation]
    if b is not None or code:
        prev = _threads(num_threads, out.size)
        try:
            bias_act(out, b if b is not None else out[0], b is not None, code)
        finally:
            numba.set_num_threads(prev)
    return out


def dense_backward(a: DenseBackwardArgs):
    grad_out, x, W, y, activation, needs, num_threads = a
    code = _CODES[activation]
    if code:
        g = np.empty_like(grad_out)
        prev = _threads(num_threads, g.size)
        try:
            grad_pre(grad_out, y, code, g)
        finally:
            numba.set_num_threads(prev)
    else:
        g = grad_out
    gx = g @ W if "x" in needs else None
    gW = g.T @ x if "W" in needs else None
    gb = g.sum(axis=0) if "b" in needs else None
    return gx, gW, gb
