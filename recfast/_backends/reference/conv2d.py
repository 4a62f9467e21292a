"""Reference 2-D convolution (cross-correlation, NHWC) and max-pooling, written against the array
API: one strided slice per kernel tap, no index arithmetic to get wrong.

Shapes: x (N, H, W, C), w (KH, KW, C, C_out), y (N, OH, OW, C_out);
``y[n, i, j, :] = sum_{a, b} xpad[n, i*sh + a*dh, j*sw + b*dw, :] @ w[a, b]`` where ``xpad`` is x
with ``geom.pt/pb/pl/pr`` zero rows/columns around it.
"""

from __future__ import annotations

from recfast._backends.reference._xp import activate, activation_grad_from_output, namespace
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs


def _tap(geom, a, b):
    """The (rows, cols) slices of the padded input that kernel tap (a, b) multiplies."""
    r0, c0 = a * geom.dh, b * geom.dw
    return (
        slice(r0, r0 + geom.sh * (geom.oh - 1) + 1, geom.sh),
        slice(c0, c0 + geom.sw * (geom.ow - 1) + 1, geom.sw),
    )


def _pad(xp, x, top, bottom, left, right, value=0):
    n, h, w, c = x.shape
    out = xp.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def conv2d_forward(a: Conv2dArgs):
    x, w, bias, geom = a.x, a.w, a.bias, a.geom
    xp = namespace(x)
    xpad = _pad(xp, x, geom.pt, geom.pb, geom.pl, geom.pr)
    kh, kw = w.shape[0], w.shape[1]
    y = xp.zeros(a.out.shape, dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap(geom, i, j)
            y = y + xpad[:, rows, cols, :] @ w[i, j, :, :]
    if bias is not None:
        y = y + bias
    a.out[...] = activate(xp, a.activation, y)
    return a.out


def conv2d_backward(a: Conv2dBackwardArgs):
    """(grad_x, grad_w, grad_bias); the activation's derivative comes from the forward output."""
    x, w, geom, needs = a.x, a.w, a.geom, a.needs
    xp = namespace(x)
    g = a.grad_out
    if a.output is not None:
        g = g * activation_grad_from_output(xp, a.activation, a.output)
    n, h, wd, c = x.shape
    kh, kw, co = w.shape[0], w.shape[1], w.shape[3]
    xpad = _pad(xp, x, geom.pt, geom.pb, geom.pl, geom.pr) if "w" in needs else None
    gxpad = None
    if "x" in needs:
        gxpad = xp.zeros((n, h + geom.pt + geom.pb, wd + geom.pl + geom.pr, c), dtype=x.dtype)
    gw = xp.zeros(w.shape, dtype=w.dtype) if "w" in needs else None
    g2 = xp.reshape(g, (-1, co))
    for i in range(kh):
        for j in range(kw):
            rows, cols = _tap(geom, i, j)
            if gw is not None:
                patch = xp.reshape(xpad[:, rows, cols, :], (-1, c))
                gw[i, j, :, :] = patch.T @ g2
            if gxpad is not None:
                gxpad[:, rows, cols, :] = gxpad[:, rows, cols, :] + g @ w[i, j, :, :].T
    gx = None
    if gxpad is not None:
        gx = gxpad[:, geom.pt : geom.pt + h, geom.pl : geom.pl + wd, :]
    gb = xp.sum(g2, axis=0) if "bias" in needs else None
    return gx, gw, gb


def _pool_taps(xp, geom, h, w):
    """For each window offset (a, b): the slices of the padded input and the flat index
    ``ih * W + iw`` of that offset in every window (1, OH, OW, 1), with its in-bounds mask."""
    for a in range(geom.kh):
        for b in range(geom.kw):
            ih = xp.arange(geom.oh, dtype=xp.int64) * geom.sh + (a - geom.ph)
            iw = xp.arange(geom.ow, dtype=xp.int64) * geom.sw + (b - geom.pw)
            inside = ((ih >= 0) & (ih < h))[:, None] & ((iw >= 0) & (iw < w))[None, :]
            flat = ih[:, None] * w + iw[None, :]
            rows = slice(a, a + geom.sh * (geom.oh - 1) + 1, geom.sh)
            cols = slice(b, b + geom.sw * (geom.ow - 1) + 1, geom.sw)
            yield rows, cols, flat[None, :, :, None], inside[None, :, :, None]


def max_pool2d_forward(a: Pool2dArgs):
    """Window maximum; ``indices`` gets the flat index ``ih * W + iw`` of the first maximum in
    row-major window order (a NaN counts as the maximum: the first NaN wins), padding never."""
    x, geom = a.x, a.geom
    xp = namespace(x)
    n, h, w, c = x.shape
    xpad = _pad(xp, x, geom.ph, geom.ph, geom.pw, geom.pw)
    best = arg = have = None
    for rows, cols, flat, inside in _pool_taps(xp, geom, h, w):
        v = xpad[:, rows, cols, :]
        if best is None:
            best = xp.where(inside, v, xp.zeros_like(v))
            arg = xp.broadcast_to(flat, v.shape)
            have = xp.broadcast_to(inside, v.shape)
            continue
        better = (v > best) | (xp.isnan(v) & ~xp.isnan(best))
        take = inside & (better | ~have)
        best = xp.where(take, v, best)
        arg = xp.where(take, flat, arg)
        have = have | inside
    a.out[...] = best
    a.indices[...] = arg
    return a.out, a.indices


def max_pool2d_backward(a: Pool2dBackwardArgs):
    """Each gradient goes to its window's argmax (``indices``: flat ``ih * W + iw`` per image and
    channel); overlapping windows add up."""
    g, gx = a.grad_out, a.grad_x
    xp = namespace(g)
    n, h, w, c = gx.shape
    # A private copy, checked: another thread may rewrite the caller's indices during the call
    # (np.add.at itself is not safe against that).
    idx = xp.asarray(a.indices, copy=True)
    if idx.shape[0] and (int(xp.min(idx)) < 0 or int(xp.max(idx)) >= h * w):
        raise ValueError(f"indices changed while the kernel ran: entries outside [0, {h * w})")
    if xp.__name__.endswith("numpy"):  # NumPy's scatter-add, exact for any index
        import numpy as np

        acc = np.zeros((n, h * w, c), dtype=g.dtype)
        ni = np.arange(n)[:, None, None, None]
        ci = np.arange(c)[None, None, None, :]
        np.add.at(acc, (ni, idx, ci), g)
        gx[...] = acc.reshape(n, h, w, c)
        return gx
    # The array API has no scatter: add each output position's gradient to a one-hot row of its
    # plane (exact, and slow: this path is for the namespaces that have nothing better).
    acc = xp.zeros((n, h * w, c), dtype=g.dtype)
    plane = xp.arange(h * w, dtype=xp.int64)[None, :, None]
    gf = xp.reshape(g, (n, -1, c))
    idf = xp.reshape(idx, (n, -1, c))
    for p in range(gf.shape[1]):
        hit = plane == idf[:, p : p + 1, :]
        acc = acc + xp.where(hit, gf[:, p : p + 1, :], xp.zeros_like(gf[:, p : p + 1, :]))
    gx[...] = xp.reshape(acc, (n, h, w, c))
    return gx
