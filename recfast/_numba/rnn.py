"""Numba recurrent sequences (RNN, GRU, LSTM) and backpropagation through time.

The C++ kernel's algorithm (``csrc/cpu/rnn_cpu.cpp``): one GEMM for every step's input projection,
then per step one GEMM for the recurrent projection ``h U^T`` and one fused pass over the batch rows
(biases, gates, state update, length mask). Backward: per step one fused pass producing the
pre-activation gradients and one GEMM for dh_{t-1}; the weight gradients are three GEMMs over all
steps at the end. The whole time loop runs inside one ``njit`` call; Numba's ``np.dot`` on
contiguous arrays calls SciPy's BLAS (the one the C++ kernels use too), whose thread count is
scoped to ``num_threads`` around the call. The fused passes run on the calling thread (no
``parallel=True``: spinning Numba workers starve the BLAS threads between the products).

Same signatures and cache contract as :mod:`recfast.reference.rnn`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator

import numpy as np
from numba import njit

from recfast._validate import ACTIVATION_CODES as _CODES

_CELLS = {"rnn": 0, "gru": 1, "lstm": 2}
_GATES = (1, 3, 4)


# --------------------------------------------------------------------------- BLAS threads
@functools.cache
def _blas_thread_setters():
    """(set, get) ctypes functions of SciPy's OpenBLAS thread count, or None."""
    from recfast._blas import thread_functions

    set_addr, get_addr = thread_functions()
    if not set_addr or not get_addr:
        return None
    setter = ctypes.CFUNCTYPE(None, ctypes.c_int)(set_addr)
    getter = ctypes.CFUNCTYPE(ctypes.c_int)(get_addr)
    return setter, getter


@contextlib.contextmanager
def _blas_threads(n: int) -> Iterator[None]:
    """Run the enclosed BLAS products (Numba's np.dot = SciPy's BLAS) on ``n`` threads."""
    fns = _blas_thread_setters()
    if fns is None:
        yield
        return
    setter, getter = fns
    prev = int(getter())
    if prev == n:
        yield
        return
    setter(int(n))
    try:
        yield
    finally:
        setter(prev)


# --------------------------------------------------------------------------- cell arithmetic
@njit(cache=True, nogil=True, inline="always")
def _sigmoid(x, one):
    return one / (one + np.exp(-x))


@njit(cache=True, nogil=True)
def _forward(
    cell, code, one, xs, h0, c0, W, U, b_ih, b_hh, lengths, out, has_out, st, cl, gt, cached
):
    """Time loop. ``one`` is 1 in the arrays' dtype (so float32 arithmetic stays float32). ``st``/``cl`` are the caches (T + 1, N, H) when ``cached``, else two ping-pong
    buffers (2, N, H); ``gt`` the gate cache (T, N, 4H) or a one-step scratch (1, N, 4H)."""
    T, N, D = xs.shape
    H = h0.shape[1]
    GH = W.shape[0]
    # Input projections of every step at once, input bias folded in.
    xw = np.dot(xs.reshape(T * N, D), W.T)
    for r in range(T * N):
        for j in range(GH):
            xw[r, j] += b_ih[j]
    hu = np.empty((N, GH), xs.dtype)
    zero = one - one
    st[0] = h0
    if cell == 2:
        cl[0] = c0
    for t in range(T):
        ip = t if cached else t & 1
        inx = t + 1 if cached else (t + 1) & 1
        gi = t if cached else 0
        hp = st[ip]
        hn = st[inx]
        np.dot(hp, U.T, hu)
        for n in range(N):
            x = xw[t * N + n]
            u = hu[n]
            if t >= lengths[n]:  # frozen past the end; outputs and gates there are zero
                for j in range(H):
                    hn[n, j] = hp[n, j]
                if cell == 2:
                    for j in range(H):
                        cl[inx, n, j] = cl[ip, n, j]
                if cached and cell != 0:
                    for j in range(4 * H):
                        gt[gi, n, j] = 0
                if has_out:
                    for j in range(H):
                        out[t, n, j] = 0
                continue
            if cell == 0:
                for j in range(H):
                    z = x[j] + u[j]
                    if code == 1:
                        z = z if z > zero else z * zero
                    elif code == 2:
                        z = _sigmoid(z, one)
                    elif code == 3:
                        z = np.tanh(z)
                    hn[n, j] = z
            elif cell == 1:
                g = gt[gi, n]
                for j in range(H):
                    hr = u[j] + b_hh[j]
                    hz = u[H + j] + b_hh[H + j]
                    hnn = u[2 * H + j] + b_hh[2 * H + j]
                    r = _sigmoid(x[j] + hr, one)
                    z = _sigmoid(x[H + j] + hz, one)
                    nn = np.tanh(x[2 * H + j] + r * hnn)
                    g[j] = r
                    g[H + j] = z
                    g[2 * H + j] = nn
                    g[3 * H + j] = hnn
                    hn[n, j] = nn + z * (hp[n, j] - nn)
            else:
                g = gt[gi, n]
                for j in range(H):
                    i = _sigmoid(x[j] + u[j], one)
                    f = _sigmoid(x[H + j] + u[H + j], one)
                    gg = np.tanh(x[2 * H + j] + u[2 * H + j])
                    o = _sigmoid(x[3 * H + j] + u[3 * H + j], one)
                    c = f * cl[ip, n, j] + i * gg
                    g[j] = i
                    g[H + j] = f
                    g[2 * H + j] = gg
                    g[3 * H + j] = o
                    cl[inx, n, j] = c
                    hn[n, j] = o * np.tanh(c)
            if has_out:
                for j in range(H):
                    out[t, n, j] = hn[n, j]
    return T if cached else T & 1


def rnn_forward(
    cell, activation, xs, h0, c0, W, U, b_ih, b_hh, lengths, out, h_last, c_last, states, cells,
    gates, num_threads=1,
):  # fmt: skip
    T, N, _ = xs.shape
    H, dt = h0.shape[1], xs.dtype
    kind = _CELLS[cell]
    GH = _GATES[kind] * H
    cached = states is not None
    if cached:
        st = states
        cl = cells if kind == 2 else np.empty((1, 1, 1), dt)
        gt = gates if kind != 0 else np.empty((1, 1, 1), dt)
    else:
        st = np.empty((2, N, H), dt)
        cl = np.empty((2, N, H), dt) if kind == 2 else np.empty((1, 1, 1), dt)
        gt = np.empty((1, N, 4 * H), dt) if kind != 0 else np.empty((1, 1, 1), dt)
    zeros = np.zeros(GH, dt)
    lens = np.full(N, T, np.int64) if lengths is None else lengths
    with _blas_threads(num_threads):
        last = _forward(
            kind, _CODES[activation], dt.type(1), xs, h0, c0 if kind == 2 else h0, W, U,
            zeros if b_ih is None else b_ih, zeros if b_hh is None else b_hh, lens,
            np.empty((1, 1, 1), dt) if out is None else out, out is not None, st, cl, gt, cached,
        )  # fmt: skip
    h_last[...] = st[last]
    if c_last is not None:
        c_last[...] = cl[last]
    return h_last


@njit(cache=True, nogil=True)
def _backward(
    cell, code, one, xs, W, U, lengths, states, cells, gates, go, has_go, dh, dc, dgx, dgh
):
    """BPTT time loop. ``dh`` (and the LSTM's ``dc``) come in as the gradients reaching the last
    state and leave as those reaching h_0 (c_0); ``dgx``/``dgh`` (T, N, G H) receive the
    pre-activation gradients of the input and recurrent sides (the same array unless GRU)."""
    T, N, _ = xs.shape
    H = states.shape[2]
    GH = W.shape[0]
    nxt = np.empty((N, H), xs.dtype)
    prod = np.empty((N, H), xs.dtype)
    d = np.empty(H, xs.dtype)
    zero = one - one
    for t in range(T - 1, -1, -1):
        hp = states[t]
        h = states[t + 1]
        gx_t = dgx[t]
        gh_t = dgh[t]
        for n in range(N):
            gx = gx_t[n]
            gh = gh_t[n]
            if t >= lengths[n]:  # h_t = h_{t-1}: the gradient passes through untouched
                for j in range(GH):
                    gx[j] = 0
                    gh[j] = 0
                for j in range(H):
                    nxt[n, j] = dh[n, j]
                continue
            for j in range(H):
                d[j] = dh[n, j] + go[t, n, j] if has_go else dh[n, j]
            if cell == 0:
                for j in range(H):
                    v = h[n, j]
                    if code == 1:
                        a = one if v > zero else zero
                    elif code == 2:
                        a = v * (one - v)
                    elif code == 3:
                        a = one - v * v
                    else:
                        a = one
                    gx[j] = d[j] * a
                    nxt[n, j] = 0
            elif cell == 1:
                g = gates[t, n]
                for j in range(H):
                    r, z, nn, hnn = g[j], g[H + j], g[2 * H + j], g[3 * H + j]
                    dn = d[j] * (one - z) * (one - nn * nn)
                    dz = d[j] * (hp[n, j] - nn) * z * (one - z)
                    dr = dn * hnn * r * (one - r)
                    gx[j] = dr
                    gh[j] = dr
                    gx[H + j] = dz
                    gh[H + j] = dz
                    gx[2 * H + j] = dn
                    gh[2 * H + j] = dn * r
                    nxt[n, j] = d[j] * z
            else:
                g = gates[t, n]
                for j in range(H):
                    i, f, gg, o = g[j], g[H + j], g[2 * H + j], g[3 * H + j]
                    c = cells[t + 1, n, j]
                    tc = np.tanh(c)
                    dct = dc[n, j] + d[j] * o * (one - tc * tc)
                    gx[j] = dct * gg * i * (one - i)
                    gx[H + j] = dct * cells[t, n, j] * f * (one - f)
                    gx[2 * H + j] = dct * i * (one - gg * gg)
                    gx[3 * H + j] = d[j] * tc * o * (one - o)
                    dc[n, j] = dct * f
                    nxt[n, j] = 0
        # dh_{t-1} = direct part (or the passed-through gradient) + dG_hh U; zero rows add nothing
        np.dot(gh_t, U, prod)
        for n in range(N):
            for j in range(H):
                dh[n, j] = nxt[n, j] + prod[n, j]


@njit(cache=True, nogil=True)
def _weight_grads(xs, W, states, dgx, dgh, want_xs, grad_xs, want_W, grad_W, want_U, grad_U):
    T, N, D = xs.shape
    H = states.shape[2]
    GH = W.shape[0]
    gx = dgx.reshape(T * N, GH)
    gh = dgh.reshape(T * N, GH)
    if want_xs:
        np.dot(gx, W, grad_xs.reshape(T * N, D))
    if want_W:
        np.dot(gx.T, xs.reshape(T * N, D), grad_W)
    if want_U:
        np.dot(gh.T, states.reshape((T + 1) * N, H)[: T * N], grad_U)


def rnn_backward(
    cell, activation, xs, W, U, lengths, states, cells, gates, grad_out, grad_h_last, grad_c_last,
    grad_xs, grad_h0, grad_c0, grad_W, grad_U, grad_b_ih, grad_b_hh, num_threads=1,
):  # fmt: skip
    T, N, _ = xs.shape
    H, dt = states.shape[2], xs.dtype
    kind = _CELLS[cell]
    GH = W.shape[0]
    dh = np.zeros((N, H), dt) if grad_h_last is None else grad_h_last.copy()
    dc = np.empty((1, 1), dt)
    if kind == 2:
        dc = np.zeros((N, H), dt) if grad_c_last is None else grad_c_last.copy()
    dgx = np.empty((T, N, GH), dt)
    dgh = np.empty((T, N, GH), dt) if kind == 1 else dgx
    dummy = np.empty((1, 1, 1), dt)
    lens = np.full(N, T, np.int64) if lengths is None else lengths
    with _blas_threads(num_threads):
        _backward(
            kind, _CODES[activation], dt.type(1), xs, W, U, lens, states,
            cells if kind == 2 else dummy, gates if kind != 0 else dummy,
            dummy if grad_out is None else grad_out, grad_out is not None, dh, dc, dgx, dgh,
        )  # fmt: skip
        _weight_grads(
            xs, W, states, dgx, dgh, grad_xs is not None,
            dummy if grad_xs is None else grad_xs, grad_W is not None,
            dummy[0] if grad_W is None else grad_W, grad_U is not None,
            dummy[0] if grad_U is None else grad_U,
        )  # fmt: skip
    if grad_h0 is not None:
        grad_h0[...] = dh
    if grad_c0 is not None:
        grad_c0[...] = dc
    if grad_b_ih is not None:
        grad_b_ih[...] = dgx.reshape(T * N, GH).sum(axis=0)
    if grad_b_hh is not None:
        grad_b_hh[...] = dgh.reshape(T * N, GH).sum(axis=0)
