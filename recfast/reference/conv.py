"""Reference 2-D convolution (cross-correlation, NHWC) and max-pooling, written against the array
namespace (NumPy or CuPy): one strided slice per kernel tap, no index arithmetic to get wrong.

Shapes: x (N, H, W, C), w (KH, KW, C, C_out), y (N, OH, OW, C_out);
``y[n, i, j, :] = sum_{a, b} xpad[n, i*sh + a*dh, j*sw + b*dw, :] @ w[a, b]`` where ``xpad`` is x
with ``geom.pt/pb/pl/pr`` zero rows/columns around it.
"""

from __future__ import annotations

from recfast.reference.dense import activate, activation_grad_from_output, array_namespace


def _tap(geom, a, b):
    """The (rows, cols) slices of the padded input that kernel tap (a, b) multiplies."""
    r0, c0 = a * geom.dh, b * geom.dw
    return (
        slice(r0, r0 + geom.sh * (geom.oh - 1) + 1, geom.sh),
        slice(c0, c0 + geom.sw * (geom.ow - 1) + 1, geom.sw),
    )


def _pad(xp, x, geom):
    return xp.pad(x, ((0, 0), (geom.pt, geom.pb), (geom.pl, geom.pr), (0, 0)))


def conv2d_forward(x, w, bias, geom, activation, out, num_threads=1):
    xp = array_namespace(x)
    xpad = _pad(xp, x, geom)
    kh, kw = w.shape[0], w.shape[1]
    y = xp.zeros(out.shape, dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            rows, cols = _tap(geom, a, b)
            y += xpad[:, rows, cols, :] @ w[a, b]
    if bias is not None:
        y = y + bias
    out[...] = activate(xp, activation, y)
    return out


def conv2d_backward(grad_out, x, w, y, activation, geom, needs, num_threads=1):
    """(grad_x, grad_w, grad_bias); the activation's derivative comes from the forward output y."""
    xp = array_namespace(x)
    g = grad_out if y is None else grad_out * activation_grad_from_output(xp, activation, y)
    n, h, wd, c = x.shape
    kh, kw = w.shape[0], w.shape[1]
    xpad = _pad(xp, x, geom) if "w" in needs else None
    gxpad = xp.zeros_like(_pad(xp, x, geom)) if "x" in needs else None
    gw = xp.zeros_like(w) if "w" in needs else None
    for a in range(kh):
        for b in range(kw):
            rows, cols = _tap(geom, a, b)
            if gw is not None:
                patch = xpad[:, rows, cols, :].reshape(-1, c)
                gw[a, b] = patch.T @ g.reshape(-1, g.shape[3])
            if gxpad is not None:
                gxpad[:, rows, cols, :] += g @ w[a, b].T
    gx = None
    if gxpad is not None:
        gx = xp.ascontiguousarray(gxpad[:, geom.pt : geom.pt + h, geom.pl : geom.pl + wd, :])
    gb = g.sum(axis=(0, 1, 2)) if "bias" in needs else None
    return gx, gw, gb


def _pool_taps(xp, geom, h, w):
    """For each window offset (a, b): the slices of the padded input and the flat index
    ``ih * W + iw`` of that offset in every window (OH, OW), with its in-bounds mask."""
    for a in range(geom.kh):
        for b in range(geom.kw):
            ih = xp.arange(geom.oh) * geom.sh + a - geom.ph
            iw = xp.arange(geom.ow) * geom.sw + b - geom.pw
            inside = ((ih >= 0) & (ih < h))[:, None] & ((iw >= 0) & (iw < w))[None, :]
            flat = ih[:, None] * w + iw[None, :]
            rows = slice(a, a + geom.sh * (geom.oh - 1) + 1, geom.sh)
            cols = slice(b, b + geom.sw * (geom.ow - 1) + 1, geom.sw)
            yield rows, cols, flat[None, :, :, None], inside[None, :, :, None]


def max_pool2d_forward(x, geom, out, indices, num_threads=1):
    """Window maximum; ``indices`` gets the flat index ``ih * W + iw`` of the first maximum in
    row-major window order (a NaN counts as the maximum: the first NaN wins), padding never."""
    xp = array_namespace(x)
    n, h, w, c = x.shape
    xpad = xp.pad(x, ((0, 0), (geom.ph, geom.ph), (geom.pw, geom.pw), (0, 0)))
    best = arg = have = None
    for rows, cols, flat, inside in _pool_taps(xp, geom, h, w):
        v = xpad[:, rows, cols, :]
        if best is None:
            best = xp.where(inside, v, xp.zeros_like(v))
            arg = xp.broadcast_to(flat, v.shape).astype(xp.int64)
            have = xp.broadcast_to(inside, v.shape)
            continue
        better = (v > best) | (xp.isnan(v) & ~xp.isnan(best))
        take = inside & (better | ~have)
        best = xp.where(take, v, best)
        arg = xp.where(take, flat, arg)
        have = have | inside
    out[...] = best
    indices[...] = arg
    return out, indices


def max_pool2d_backward(grad_out, indices, x_shape, num_threads=1):
    """Each gradient goes to its window's argmax (``indices``: flat ``ih * W + iw`` per image and
    channel); overlapping windows add up."""
    xp = array_namespace(grad_out)
    n, h, w, c = x_shape
    gx = xp.zeros((n, h * w, c), dtype=grad_out.dtype)
    ni = xp.broadcast_to(xp.arange(n)[:, None, None, None], indices.shape)
    ci = xp.broadcast_to(xp.arange(c)[None, None, None, :], indices.shape)
    if xp.__name__ == "cupy":
        import cupyx

        cupyx.scatter_add(gx, (ni, indices, ci), grad_out)
    else:
        xp.add.at(gx, (ni, indices, ci), grad_out)
    return gx.reshape(n, h, w, c)
