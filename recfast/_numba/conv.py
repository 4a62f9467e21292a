"""Numba conv2d / max-pool (NHWC), used when the C++ extension is not built. Direct loops, parallel
over disjoint output slices so no two iterations write the same element."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from recfast._validate import ACTIVATION_CODES as _CODES


@njit(cache=True, nogil=True, inline="always")
def _act(z, code):
    if code == 1:
        return z if z > 0 else z * 0
    if code == 2:
        return 1 / (1 + np.exp(-z))
    if code == 3:
        return np.tanh(z)
    return z


@njit(cache=True, nogil=True, inline="always")
def _act_grad(y, code):
    if code == 1:
        return 1.0 if y > 0 else 0.0
    if code == 2:
        return y * (1 - y)
    if code == 3:
        return 1 - y * y
    return 1.0


@njit(cache=True, nogil=True, parallel=True)
def _forward(x, w, b, has_b, sh, sw, dh, dw, pt, pl, code, y):
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    _, oh, ow, _ = y.shape
    for t in prange(n * oh):
        i, r = t // oh, t % oh
        acc = np.empty(co, y.dtype)
        for q in range(ow):
            for o in range(co):
                acc[o] = b[o] if has_b else 0
            for a in range(kh):
                ih = r * sh - pt + a * dh
                if ih < 0 or ih >= h:
                    continue
                for bb in range(kw):
                    iw = q * sw - pl + bb * dw
                    if iw < 0 or iw >= wd:
                        continue
                    for m in range(c):
                        v = x[i, ih, iw, m]
                        for o in range(co):
                            acc[o] += v * w[a, bb, m, o]
            for o in range(co):
                y[i, r, q, o] = _act(acc[o], code)


@njit(cache=True, nogil=True, parallel=True)
def _grad_pre(g, y, code, out):
    n, oh, ow, co = g.shape
    for t in prange(n * oh):
        i, r = t // oh, t % oh
        for q in range(ow):
            for o in range(co):
                out[i, r, q, o] = g[i, r, q, o] * _act_grad(y[i, r, q, o], code)


@njit(cache=True, nogil=True, parallel=True)
def _grad_w(g, x, sh, sw, dh, dw, pt, pl, gw):
    """Each (tap, input channel) row of gw is owned by one iteration: a reduction without races."""
    n, h, wd, c = x.shape
    kh, kw, _, co = gw.shape
    _, oh, ow, _ = g.shape
    for t in prange(kh * kw * c):
        a, rem = t // (kw * c), t % (kw * c)
        bb, m = rem // c, rem % c
        acc = np.zeros(co, gw.dtype)
        for i in range(n):
            for r in range(oh):
                ih = r * sh - pt + a * dh
                if ih < 0 or ih >= h:
                    continue
                for q in range(ow):
                    iw = q * sw - pl + bb * dw
                    if iw < 0 or iw >= wd:
                        continue
                    v = x[i, ih, iw, m]
                    for o in range(co):
                        acc[o] += v * g[i, r, q, o]
        for o in range(co):
            gw[a, bb, m, o] = acc[o]


@njit(cache=True, nogil=True, parallel=True)
def _grad_x(g, w, sh, sw, dh, dw, pt, pl, gx):
    """Gathers, for each input pixel, the output pixels whose windows cover it (a transposed
    convolution): each gx row is written by one iteration."""
    n, h, wd, c = gx.shape
    kh, kw, _, co = w.shape
    _, oh, ow, _ = g.shape
    for t in prange(n * h):
        i, ih = t // h, t % h
        for iw in range(wd):
            for m in range(c):
                gx[i, ih, iw, m] = 0
            for a in range(kh):
                rn = ih + pt - a * dh
                if rn < 0 or rn % sh != 0 or rn // sh >= oh:
                    continue
                r = rn // sh
                for bb in range(kw):
                    qn = iw + pl - bb * dw
                    if qn < 0 or qn % sw != 0 or qn // sw >= ow:
                        continue
                    q = qn // sw
                    for m in range(c):
                        s = gx[i, ih, iw, m]
                        for o in range(co):
                            s += g[i, r, q, o] * w[a, bb, m, o]
                        gx[i, ih, iw, m] = s


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
def _pool_back(g, idx, gx):
    """One iteration per (image, channel): its plane of gx is written by it alone."""
    n, oh, ow, c = g.shape
    for t in prange(n * c):
        i, m = t // c, t % c
        for p in range(gx.shape[1]):
            gx[i, p, m] = 0
        for r in range(oh):
            for q in range(ow):
                gx[i, idx[i, r, q, m], m] += g[i, r, q, m]


class _Threads:
    def __init__(self, n):
        self.n = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))

    def __enter__(self):
        self.prev = numba.get_num_threads()
        numba.set_num_threads(self.n)

    def __exit__(self, *exc):
        numba.set_num_threads(self.prev)


def conv2d_forward(x, w, bias, geom, activation, out, num_threads=1):
    with _Threads(num_threads):
        _forward(
            x,
            w,
            bias if bias is not None else np.zeros(w.shape[3], x.dtype),
            bias is not None,
            geom.sh,
            geom.sw,
            geom.dh,
            geom.dw,
            geom.pt,
            geom.pl,
            _CODES[activation],
            out,
        )
    return out


def conv2d_backward(grad_out, x, w, y, activation, geom, needs, num_threads=1):
    g = grad_out
    code = _CODES[activation]
    with _Threads(num_threads):
        if code:
            g = np.empty_like(grad_out)
            _grad_pre(grad_out, y, code, g)
        gx = gw = None
        if "x" in needs:
            gx = np.empty_like(x)
            _grad_x(g, w, geom.sh, geom.sw, geom.dh, geom.dw, geom.pt, geom.pl, gx)
        if "w" in needs:
            gw = np.empty_like(w)
            _grad_w(g, x, geom.sh, geom.sw, geom.dh, geom.dw, geom.pt, geom.pl, gw)
    gb = g.sum(axis=(0, 1, 2)) if "bias" in needs else None
    return gx, gw, gb


def max_pool2d_forward(x, geom, out, indices, num_threads=1):
    with _Threads(num_threads):
        _pool(x, geom.kh, geom.kw, geom.sh, geom.sw, geom.ph, geom.pw, out, indices)
    return out, indices


def max_pool2d_backward(grad_out, indices, x_shape, num_threads=1):
    n, h, w, c = x_shape
    gx = np.empty((n, h * w, c), grad_out.dtype)
    with _Threads(num_threads):
        _pool_back(grad_out, indices, gx)
    return gx.reshape(n, h, w, c)
