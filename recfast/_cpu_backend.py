"""The ``cpu`` backend: the kernels of the compiled ``recfast._cpu``, plus thin adapters where an op
is a BLAS call (NumPy's) followed by a fused native pass. Same signatures as ``recfast.reference``."""

from __future__ import annotations

import numpy as np

from recfast import _blas, _cpu
from recfast._cpu import mf_block_layout, sgd_mf_epoch
from recfast._validate import ACTIVATION_CODES, CELL_CODES

_blas.install(_cpu)

__all__ = [
    "conv2d_backward",
    "conv2d_forward",
    "dense_backward",
    "dense_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "mf_block_layout",
    "rnn_backward",
    "rnn_forward",
    "sgd_mf_epoch",
]


def dense_forward(x, W, b, activation, out, num_threads=1):
    np.matmul(x, W.T, out=out)  # BLAS gemm; releases the GIL
    code = ACTIVATION_CODES[activation]
    if b is not None or code:
        _cpu.bias_activation(out, b, code, num_threads)  # one fused pass: + b, f(.)
    return out


def dense_backward(grad_out, x, W, y, activation, needs, num_threads=1):
    code = ACTIVATION_CODES[activation]
    gb = np.empty(W.shape[0], W.dtype) if "b" in needs else None
    if code:  # one pass: g = grad_out * f'(y), and its column sums for the bias
        g = np.empty_like(grad_out)
        _cpu.activation_backward(grad_out, y, g, gb, code, num_threads)
    else:  # no copy of grad_out (with full-softmax scores it is the largest array around)
        g = grad_out
        if gb is not None:
            np.sum(g, axis=0, out=gb)
    gx = g @ W if "x" in needs else None
    gW = g.T @ x if "W" in needs else None
    return gx, gW, gb


def rnn_forward(cell, activation, *arrays_and_threads):
    _cpu.rnn_forward(CELL_CODES[cell], ACTIVATION_CODES[activation], *arrays_and_threads)


def rnn_backward(cell, activation, *arrays_and_threads):
    _cpu.rnn_backward(CELL_CODES[cell], ACTIVATION_CODES[activation], *arrays_and_threads)


def conv2d_forward(x, w, bias, geom, activation, out, num_threads=1):
    g = geom
    _cpu.conv2d_forward(
        x,
        w,
        bias,
        out,
        g.sh,
        g.sw,
        g.dh,
        g.dw,
        g.pt,
        g.pl,
        ACTIVATION_CODES[activation],
        num_threads,
    )
    return out


def conv2d_backward(grad_out, x, w, y, activation, geom, needs, num_threads=1):
    code = ACTIVATION_CODES[activation]
    co = w.shape[3]
    g, gb = grad_out, None
    if code:  # one fused native pass: g * f'(y) and the bias gradient's column sums
        g = np.empty_like(grad_out)
        gb = np.empty(co, w.dtype) if "bias" in needs else None
        _cpu.activation_backward(
            grad_out.reshape(-1, co), y.reshape(-1, co), g.reshape(-1, co), gb, code, num_threads
        )
    elif "bias" in needs:
        gb = grad_out.reshape(-1, co).sum(axis=0)
    gx = np.empty_like(x) if "x" in needs else None
    gw = np.empty_like(w) if "w" in needs else None
    if gx is not None or gw is not None:
        s = geom
        _cpu.conv2d_backward(g, x, w, gx, gw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl, num_threads)
    return gx, gw, gb


def max_pool2d_forward(x, geom, out, indices, num_threads=1):
    g = geom
    _cpu.max_pool2d_forward(x, out, indices, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, num_threads)
    return out, indices


def max_pool2d_backward(grad_out, indices, x_shape, num_threads=1):
    gx = np.empty(x_shape, grad_out.dtype)
    _cpu.max_pool2d_backward(grad_out, indices, gx, num_threads)
    return gx
