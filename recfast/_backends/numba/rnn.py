"""Numba recurrent sequences (RNN, GRU, LSTM) and backpropagation through time.

The C++ kernel's algorithm (``csrc/cpu/rnn_cpu.cpp``): one GEMM for every step's input projection,
then per step one GEMM for the recurrent projection ``h U^T`` and one fused ``njit`` pass over the
batch rows (biases, gates, state update, length mask). Backward: per step one fused pass producing
the pre-activation gradients and one GEMM for dh_{t-1}; the weight gradients are three GEMMs over
all steps at the end.

Two drivers share the fused passes. Small per-step products run the whole time loop inside one
``njit`` call (Numba's ``np.dot``, which is tied to SciPy's BLAS): no per-step dispatch. Larger
ones loop in Python around ``np.matmul(..., out=)``: NumPy's bundled OpenBLAS (the one the C++
kernels prefer too) measured up to 1.6x faster than SciPy's copy on such products (float32, small
batches) and never slower, which outweighs a few microseconds of dispatch per step. The BLAS
thread count is scoped to ``num_threads``; the fused passes run on the calling thread (no
``parallel=True``: spinning Numba workers starve the BLAS threads between the products).

Same signatures and cache contract as :mod:`recfast._backends.reference.rnn`.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator

import numpy as np
from numba import njit

from recfast._backends.numba._activation import act_fast, act_grad_typed, sigmoid, tanh_fast
from recfast._codes import ACTIVATION_CODES as _CODES
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs

_CELLS = {"rnn": 0, "gru": 1, "lstm": 2}
_GATES = (1, 3, 4)
# Per-step recurrent products below this many multiply-adds (N x G H x H) run with the time loop
# inside njit (no per-step dispatch: ~2x faster than the Python loop at T=200, N=4, H=32); larger
# ones loop in Python around NumPy's BLAS (one thread, per-step GEMMs: 1.3-1.6x faster than
# SciPy's for float32 with N <= 32, e.g. 7.6 vs 11.4 ms for 50 steps at N=16, H=256; on par
# elsewhere, where the 3-5 us of dispatch per step are lost in the product).
_PY_LOOP_MIN = 1 << 20


# --------------------------------------------------------------------------- BLAS threads
@functools.cache
def _blas_pools() -> tuple[tuple, ...]:
    """(set, get) ctypes functions of the thread counts of NumPy's BLAS (``np.matmul``) and
    SciPy's (Numba's ``np.dot`` inside ``njit``), those that can be found."""
    from recfast._backends.cpu._blas import numpy_openblas64, thread_functions

    pairs = []
    found = numpy_openblas64()
    if found is not None and found[4] and found[5]:
        pairs.append(found[4:6])
    scipy_pair = thread_functions()
    if scipy_pair[0] and scipy_pair[1] and scipy_pair not in pairs:
        pairs.append(scipy_pair)
    return tuple(
        (ctypes.CFUNCTYPE(None, ctypes.c_int)(st), ctypes.CFUNCTYPE(ctypes.c_int)(gt))
        for st, gt in pairs
    )


# OpenBLAS runs a GEMM below 65536 x 4 multiply-adds on one thread whatever its pool size, so
# calls whose products are all smaller skip the (microseconds of) thread-count calls.
_BLAS_SMP_MIN = 1 << 18


# Overlapping calls (from several Python threads) share one count of open scopes: the first one
# records each pool's size and the last one restores it, as the C++ kernels' ThreadScope does.
_scope_lock = threading.Lock()
_scope_open = 0
_scope_saved: list[int] = []


@contextlib.contextmanager
def _blas_threads(n: int, work: int) -> Iterator[None]:
    """Run the enclosed BLAS products on ``n`` threads and leave the pools as they were found;
    ``work`` is the multiply-adds of the largest product."""
    global _scope_open
    pools = _blas_pools() if work >= _BLAS_SMP_MIN else ()
    if not pools:
        yield
        return
    with _scope_lock:
        if _scope_open == 0:
            _scope_saved[:] = [int(getter()) for _, getter in pools]
        _scope_open += 1
        for setter, getter in pools:
            if int(getter()) != n:
                setter(int(n))
    try:
        yield
    finally:
        with _scope_lock:
            _scope_open -= 1
            if _scope_open == 0:
                for (setter, getter), prev in zip(pools, _scope_saved):
                    if int(getter()) != prev:
                        setter(prev)


# --------------------------------------------------------------------------- forward
@njit(cache=True, nogil=True)
def _forward_rows(cell, code, one, t, lengths, xw, hu, b_hh, hp, hn, cp, cn, g, out, has_out):
    """Step t over the batch rows. xw (N, G H): W x + b_ih; hu (N, G H): U h_prev; hp/hn (N, H)
    the previous / new state (cp/cn the LSTM's cells); g (N, 4H) the step's gate rows; out (N, H).
    ``one`` is 1 in the arrays' dtype, so that float32 arithmetic stays float32."""
    N, H = hp.shape
    zero = one - one
    for n in range(N):
        x = xw[n]
        u = hu[n]
        if t >= lengths[n]:  # frozen past the end; outputs and gates there are zero
            for j in range(H):
                hn[n, j] = hp[n, j]
            if cell == 2:
                for j in range(H):
                    cn[n, j] = cp[n, j]
            if cell != 0:
                for j in range(4 * H):
                    g[n, j] = zero
            if has_out:
                for j in range(H):
                    out[n, j] = zero
            continue
        if cell == 0:
            for j in range(H):
                hn[n, j] = act_fast(x[j] + u[j], code, one)
        elif cell == 1:
            gr = g[n]
            for j in range(H):
                hr = u[j] + b_hh[j]
                hz = u[H + j] + b_hh[H + j]
                hnn = u[2 * H + j] + b_hh[2 * H + j]
                r = sigmoid(x[j] + hr, one)
                z = sigmoid(x[H + j] + hz, one)
                nn = tanh_fast(x[2 * H + j] + r * hnn, one)
                gr[j] = r
                gr[H + j] = z
                gr[2 * H + j] = nn
                gr[3 * H + j] = hnn
                hn[n, j] = nn + z * (hp[n, j] - nn)
        else:
            gr = g[n]
            for j in range(H):
                i = sigmoid(x[j] + u[j], one)
                f = sigmoid(x[H + j] + u[H + j], one)
                gg = tanh_fast(x[2 * H + j] + u[2 * H + j], one)
                o = sigmoid(x[3 * H + j] + u[3 * H + j], one)
                c = f * cp[n, j] + i * gg
                gr[j] = i
                gr[H + j] = f
                gr[2 * H + j] = gg
                gr[3 * H + j] = o
                cn[n, j] = c
                hn[n, j] = o * tanh_fast(c, one)
        if has_out:
            for j in range(H):
                out[n, j] = hn[n, j]


@njit(cache=True, nogil=True)
def _forward_loop(cell, code, one, cached, lengths, xw, UT, b_hh, st, cl, gt, out, has_out):
    """The time loop inside njit, for small per-step products (see ``_PY_LOOP_MIN``)."""
    T, N, GH = xw.shape
    hu = np.empty((N, GH), xw.dtype)
    for t in range(T):
        ip = t if cached else t & 1
        inx = t + 1 if cached else (t + 1) & 1
        np.dot(st[ip], UT, hu)
        _forward_rows(
            cell, code, one, t, lengths, xw[t], hu, b_hh, st[ip], st[inx],
            cl[ip] if cell == 2 else cl[0], cl[inx] if cell == 2 else cl[0],
            gt[t if cached else 0] if cell != 0 else gt[0], out[t] if has_out else out[0], has_out,
        )  # fmt: skip


def rnn_forward(a: RnnForwardArgs):
    (cell, activation, xs, h0, c0, W, U, b_ih, b_hh, lengths, out, h_last, c_last, states, cells,
     gates, num_threads) = a  # fmt: skip
    T, N, D = xs.shape
    H, dt = h0.shape[1], xs.dtype
    kind = _CELLS[cell]
    GH = _GATES[kind] * H
    lstm, cached = kind == 2, states is not None
    dummy = np.empty((1, 1, 1), dt)
    # Without a cache, h and c ping-pong between two buffers and the gates go to a scratch.
    st = states if cached else np.empty((2, N, H), dt)
    cl = (cells if cached else np.empty((2, N, H), dt)) if lstm else dummy
    gt = dummy
    if kind != 0:
        gt = gates if cached else np.empty((1, N, 4 * H), dt)
    outs = dummy if out is None else out
    b_hh = np.zeros(GH, dt) if b_hh is None else b_hh
    lens = np.full(N, T, np.int64) if lengths is None else lengths
    one, code = dt.type(1), _CODES[activation]
    with _blas_threads(num_threads, T * N * GH * max(D, H)):
        # Input projections of every step at once (one NumPy GEMM), input bias folded in.
        xw = np.matmul(xs.reshape(T * N, D), W.T).reshape(T, N, GH)
        if b_ih is not None:
            xw += b_ih
        st[0] = h0
        if lstm:
            cl[0] = c0
        if N * GH * H < _PY_LOOP_MIN:
            _forward_loop(kind, code, one, cached, lens, xw, U.T, b_hh, st, cl, gt, outs,
                          out is not None)  # fmt: skip
        else:
            hu = np.empty((N, GH), dt)
            for t in range(T):
                ip, inx = (t, t + 1) if cached else (t & 1, (t + 1) & 1)
                np.matmul(st[ip], U.T, out=hu)
                _forward_rows(
                    kind, code, one, t, lens, xw[t], hu, b_hh, st[ip], st[inx],
                    cl[ip] if lstm else dummy[0], cl[inx] if lstm else dummy[0],
                    gt[t if cached else 0] if kind != 0 else dummy[0],
                    outs[t] if out is not None else dummy[0], out is not None,
                )  # fmt: skip
    last = T if cached else T & 1
    h_last[...] = st[last]
    if c_last is not None:
        c_last[...] = cl[last]
    return h_last


# --------------------------------------------------------------------------- backward
@njit(cache=True, nogil=True)
def _backward_rows(
    cell, code, one, t, lengths, hp, h, cp, c, g, go, has_go, dh, dc, gx, gh, nxt
):  # fmt: skip
    """Step t backward over the batch rows. dh (N, H): gradient reaching h_t (grad_out is added
    here); dc (LSTM) is updated in place to the gradient reaching c_{t-1}. Writes the
    pre-activation gradients of the input side (gx) and the recurrent side (gh, the same array
    unless GRU) and into nxt the direct part of dh_{t-1} (all of it past a sequence's end)."""
    N, H = hp.shape
    GH = gx.shape[1]
    zero = one - one
    d = np.empty(H, hp.dtype)
    for n in range(N):
        if t >= lengths[n]:  # h_t = h_{t-1}: the gradient passes through untouched
            for j in range(GH):
                gx[n, j] = zero
                gh[n, j] = zero
            for j in range(H):
                nxt[n, j] = dh[n, j]
            continue
        for j in range(H):
            d[j] = dh[n, j] + go[n, j] if has_go else dh[n, j]
        if cell == 0:
            for j in range(H):
                gx[n, j] = d[j] * act_grad_typed(h[n, j], code, one)
                nxt[n, j] = zero
        elif cell == 1:
            gr = g[n]
            for j in range(H):
                r, z, nn, hnn = gr[j], gr[H + j], gr[2 * H + j], gr[3 * H + j]
                dn = d[j] * (one - z) * (one - nn * nn)
                dz = d[j] * (hp[n, j] - nn) * z * (one - z)
                dr = dn * hnn * r * (one - r)
                gx[n, j] = dr
                gh[n, j] = dr
                gx[n, H + j] = dz
                gh[n, H + j] = dz
                gx[n, 2 * H + j] = dn
                gh[n, 2 * H + j] = dn * r
                nxt[n, j] = d[j] * z
        else:
            gr = g[n]
            for j in range(H):
                i, f, gg, o = gr[j], gr[H + j], gr[2 * H + j], gr[3 * H + j]
                tc = tanh_fast(c[n, j], one)
                dct = dc[n, j] + d[j] * o * (one - tc * tc)
                gx[n, j] = dct * gg * i * (one - i)
                gx[n, H + j] = dct * cp[n, j] * f * (one - f)
                gx[n, 2 * H + j] = dct * i * (one - gg * gg)
                gx[n, 3 * H + j] = d[j] * tc * o * (one - o)
                dc[n, j] = dct * f
                nxt[n, j] = zero


@njit(cache=True, nogil=True)
def _backward_loop(cell, code, one, lengths, U, states, cells, gates, go, has_go, dh, dc, dgx, dgh):
    """The BPTT time loop inside njit, for small per-step products (see ``_PY_LOOP_MIN``)."""
    T = dgx.shape[0]
    N, H = dh.shape
    nxt = np.empty((N, H), dh.dtype)
    prod = np.empty((N, H), dh.dtype)
    for t in range(T - 1, -1, -1):
        _backward_rows(
            cell, code, one, t, lengths, states[t], states[t + 1],
            cells[t] if cell == 2 else cells[0], cells[t + 1] if cell == 2 else cells[0],
            gates[t] if cell != 0 else gates[0], go[t] if has_go else go[0], has_go, dh, dc,
            dgx[t], dgh[t], nxt,
        )  # fmt: skip
        np.dot(dgh[t], U, prod)
        for n in range(N):
            for j in range(H):
                dh[n, j] = nxt[n, j] + prod[n, j]


def rnn_backward(a: RnnBackwardArgs):
    (cell, activation, xs, W, U, lengths, states, cells, gates, grad_out, grad_h_last, grad_c_last,
     grad_xs, grad_h0, grad_c0, grad_W, grad_U, grad_b_ih, grad_b_hh, num_threads) = a  # fmt: skip
    T, N, D = xs.shape
    H, dt = states.shape[2], xs.dtype
    kind = _CELLS[cell]
    GH = W.shape[0]
    lstm = kind == 2
    dh = np.zeros((N, H), dt) if grad_h_last is None else grad_h_last.copy()
    dummy = np.empty((1, 1, 1), dt)
    dc = dummy[0]
    if lstm:
        dc = np.zeros((N, H), dt) if grad_c_last is None else grad_c_last.copy()
    cs = cells if lstm else dummy
    gs = gates if kind != 0 else dummy
    go = dummy if grad_out is None else grad_out
    dgx = np.empty((T, N, GH), dt)
    dgh = np.empty((T, N, GH), dt) if kind == 1 else dgx  # the sides differ for the GRU only
    lens = np.full(N, T, np.int64) if lengths is None else lengths
    one, code = dt.type(1), _CODES[activation]
    with _blas_threads(num_threads, T * N * GH * max(D, H)):
        if N * GH * H < _PY_LOOP_MIN:
            _backward_loop(kind, code, one, lens, U, states, cs, gs, go, grad_out is not None,
                           dh, dc, dgx, dgh)  # fmt: skip
        else:
            nxt, prod = np.empty((N, H), dt), np.empty((N, H), dt)
            for t in range(T - 1, -1, -1):
                _backward_rows(
                    kind, code, one, t, lens, states[t], states[t + 1],
                    cs[t] if lstm else dc, cs[t + 1] if lstm else dc,
                    gs[t] if kind != 0 else dummy[0], go[t] if grad_out is not None else go[0],
                    grad_out is not None, dh, dc, dgx[t], dgh[t], nxt,
                )  # fmt: skip
                # dh_{t-1} = direct part (or the passed-through gradient) + dG_hh U
                np.matmul(dgh[t], U, out=prod)
                np.add(nxt, prod, out=dh)
        # The weight gradients: three GEMMs over all steps.
        TN = T * N
        gx, gh = dgx.reshape(TN, GH), dgh.reshape(TN, GH)
        if grad_xs is not None:
            np.matmul(gx, W, out=grad_xs.reshape(TN, D))
        if grad_W is not None:
            np.matmul(gx.T, xs.reshape(TN, D), out=grad_W)
        if grad_U is not None:
            np.matmul(gh.T, states[:T].reshape(TN, H), out=grad_U)
    if grad_h0 is not None:
        grad_h0[...] = dh
    if grad_c0 is not None:
        grad_c0[...] = dc
    if grad_b_ih is not None:
        np.sum(gx, axis=0, out=grad_b_ih)
    if grad_b_hh is not None:
        np.sum(gh, axis=0, out=grad_b_hh)
