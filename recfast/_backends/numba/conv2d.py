"""Numba conv2d / max-pool (NHWC), used when the C++ extension is not built. Direct loops, parallel
over disjoint output slices so no two iterations write the same element."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recfast._backends.numba._activation import bias_act, grad_pre
from recfast._codes import ACTIVATION_CODES as _CODES
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs


@njit(cache=True, nogil=True, parallel=True)
def _im2col(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, col):
    """col (n * oh * ow, kh * kw * c): the receptive field of each output pixel (zeros outside)."""
    n, h, wd, c = x.shape
    for t in prange(n * oh):
        i, r = t // oh, t % oh
        for q in range(ow):
            row = t * ow + q
            p = 0
            for a in range(kh):
                ih = r * sh - pt + a * dh
                for bb in range(kw):
                    iw = q * sw - pl + bb * dw
                    inside = ih >= 0 and ih < h and iw >= 0 and iw < wd
                    for m in range(c):
                        col[row, p] = x[i, ih, iw, m] if inside else 0
                        p += 1


@njit(cache=True, nogil=True, parallel=True)
def _col2im(colg, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, gx):
    """gx += the adjoint of _im2col; one iteration per image, so no two write the same element."""
    n, h, wd, c = gx.shape
    for i in prange(n):
        gx[i] = 0
        for r in range(oh):
            for q in range(ow):
                row = (i * oh + r) * ow + q
                p = 0
                for a in range(kh):
                    ih = r * sh - pt + a * dh
                    for bb in range(kw):
                        iw = q * sw - pl + bb * dw
                        if ih >= 0 and ih < h and iw >= 0 and iw < wd:
                            for m in range(c):
                                gx[i, ih, iw, m] += colg[row, p + m]
                        p += c


@njit(cache=True, nogil=True, parallel=True)
def _pool(x, kh, kw, sh, sw, ph, pw, out, idx):
    n, h, wd, c = x.shape
    _, oh, ow, _ = out.shape
    for t in prange(n * oh):
        i, r = t // oh, t % oh
        h0 = r * sh - ph
        for q in range(ow):
            w0 = q * sw - pw
            for m in range(c):
                have = False
                best = x[i, 0, 0, m]
                arg = 0
                for a in range(max(h0, 0), min(h0 + kh, h)):
                    for bb in range(max(w0, 0), min(w0 + kw, wd)):
                        v = x[i, a, bb, m]
                        if not have or v > best or (np.isnan(v) and not np.isnan(best)):
                            best, arg, have = v, a * wd + bb, True
                out[i, r, q, m] = best
                idx[i, r, q, m] = arg


@njit(cache=True, nogil=True, parallel=True)
def _pool_back(g, idx, gx, bad):
    """One iteration per (image, channel): its plane of gx is written by it alone. Each index is
    checked as it is read (another thread may have rewritten it since Python checked it); one out
    of range is skipped and counted in ``bad``."""
    n, oh, ow, c = g.shape
    plane = gx.shape[1]
    for t in prange(n * c):
        i, m = t // c, t % c
        for p in range(plane):
            gx[i, p, m] = 0
        for r in range(oh):
            for q in range(ow):
                p = idx[i, r, q, m]
                if p < 0 or p >= plane:
                    bad[t] += 1
                    continue
                gx[i, p, m] += g[i, r, q, m]


class _Threads:
    def __init__(self, n):
        self.n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))

    def __enter__(self):
        self.prev = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.prev)


# Images per im2col batch: the column buffer stays under ~32 MB.
_COL_BYTES = 1 << 25


def _batches(x, geom, k):
    per_image = geom.oh * geom.ow * k * x.dtype.itemsize
    step = max(1, _COL_BYTES // max(1, per_image))
    return range(0, x.shape[0], step), step


def _geom_args(w, geom):
    return (
        w.shape[0],
        w.shape[1],
        geom.sh,
        geom.sw,
        geom.dh,
        geom.dw,
        geom.pt,
        geom.pl,
        geom.oh,
        geom.ow,
    )


def conv2d_forward(a: Conv2dArgs):
    """im2col (parallel Numba) + NumPy's BLAS GEMM + a parallel bias/activation pass."""
    x, w, bias, geom, activation, out, num_threads = a
    k, co = w.shape[0] * w.shape[1] * w.shape[2], w.shape[3]
    wm = w.reshape(k, co)
    starts, step = _batches(x, geom, k)
    code = _CODES[activation]
    with _Threads(num_threads):
        for s0 in starts:
            xb = x[s0 : s0 + step]
            col = np.empty((xb.shape[0] * geom.oh * geom.ow, k), x.dtype)
            _im2col(xb, *_geom_args(w, geom), col)
            yb = out[s0 : s0 + step].reshape(-1, co)
            np.matmul(col, wm, out=yb)
            if bias is not None or code:
                bias_act(yb, bias if bias is not None else wm[0], bias is not None, code)
    return out


def conv2d_backward(a: Conv2dBackwardArgs):
    grad_out, x, w, y, activation, geom, needs, num_threads = a
    k, co = w.shape[0] * w.shape[1] * w.shape[2], w.shape[3]
    wm = w.reshape(k, co)
    code = _CODES[activation]
    starts, step = _batches(x, geom, k)
    gx = np.empty_like(x) if "x" in needs else None
    gw = np.zeros((k, co), w.dtype) if "w" in needs else None
    with _Threads(num_threads):
        g = grad_out.reshape(-1, co)
        if code:
            pre = np.empty_like(g)
            grad_pre(g, y.reshape(-1, co), code, pre)
            g = pre
        g4 = g.reshape(grad_out.shape)
        for s0 in starts:
            xb = x[s0 : s0 + step]
            gb_ = g4[s0 : s0 + step].reshape(-1, co)
            if gw is not None:
                col = np.empty((xb.shape[0] * geom.oh * geom.ow, k), x.dtype)
                _im2col(xb, *_geom_args(w, geom), col)
                gw += col.T @ gb_
            if gx is not None:
                _col2im(gb_ @ wm.T, *_geom_args(w, geom), gx[s0 : s0 + step])
    gb = g.sum(axis=0) if "bias" in needs else None
    return gx, (gw.reshape(w.shape) if gw is not None else None), gb


def max_pool2d_forward(a: Pool2dArgs):
    x, geom, out, indices, num_threads = a
    with _Threads(num_threads):
        _pool(x, geom.kh, geom.kw, geom.sh, geom.sw, geom.ph, geom.pw, out, indices)
    return out, indices


def max_pool2d_backward(a: Pool2dBackwardArgs):
    grad_out, indices, grad_x, num_threads = a
    n, h, w, c = grad_x.shape
    bad = np.zeros(n * c, np.int64)
    with _Threads(num_threads):
        _pool_back(grad_out, indices, grad_x.reshape(n, h * w, c), bad)
    if bad.any():
        raise ValueError(
            f"indices changed while the kernel ran: {int(bad.sum())} entries outside "
            f"[0, {h * w}) were skipped (do not modify the inputs during a call)"
        )
    return grad_x
