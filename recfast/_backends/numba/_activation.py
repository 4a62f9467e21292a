"""The activations of the Numba kernels, once (codes from ``recfast._codes``): the per-element
functions, the fused bias + activation pass and the pre-activation gradient pass, shared by the
dense, convolution and recurrent kernels."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True, inline="always")
def act(z, code):
    if code == 1:  # relu: NaN stays NaN (as np.maximum and torch.relu), -inf becomes 0
        return 0.0 if z <= 0 else z
    if code == 2:
        return 1 / (1 + np.exp(-z))
    if code == 3:
        return np.tanh(z)
    return z


@njit(cache=True, nogil=True, inline="always")
def act_grad(y, code):
    """f'(z) from the output y = f(z)."""
    if code == 1:
        return 1.0 if y > 0 else 0.0
    if code == 2:
        return y * (1 - y)
    if code == 3:
        return 1 - y * y
    return 1.0


# dtype-preserving variants for the recurrent cells: ``one`` is 1 in the arrays' dtype, so
# float32 arithmetic stays float32, and tanh goes through one exp (libm's tanh costs several
# exps; 1 - 2 / (e^{2x} + 1) is exact to an absolute rounding error and saturates cleanly).
@njit(cache=True, nogil=True, inline="always")
def sigmoid(x, one):
    return one / (one + np.exp(-x))


@njit(cache=True, nogil=True, inline="always")
def tanh_fast(x, one):
    return one - (one + one) / (np.exp(x + x) + one)


@njit(cache=True, nogil=True, inline="always")
def act_fast(z, code, one):
    if code == 1:
        zero = one - one
        return zero if z <= zero else z
    if code == 2:
        return sigmoid(z, one)
    if code == 3:
        return tanh_fast(z, one)
    return z


@njit(cache=True, nogil=True, inline="always")
def act_grad_typed(y, code, one):
    zero = one - one
    if code == 1:
        return one if y > zero else zero
    if code == 2:
        return y * (one - y)
    if code == 3:
        return one - y * y
    return one


@njit(cache=True, nogil=True, parallel=True)
def bias_act(y, b, has_b, code):
    """y (n, h) = f(y + b), in place."""
    n, h = y.shape
    for i in prange(n):
        for j in range(h):
            z = y[i, j] + b[j] if has_b else y[i, j]
            y[i, j] = act(z, code)


@njit(cache=True, nogil=True, parallel=True)
def grad_pre(g_out, y, code, g):
    """g (n, h) = g_out * f'(y)."""
    n, h = g_out.shape
    for i in prange(n):
        for j in range(h):
            g[i, j] = g_out[i, j] * act_grad(y[i, j], code)
