"""``cpu`` convolution and max-pooling (NHWC)."""

from __future__ import annotations

import numpy as np

from recfast._backends.cpu._native import cpu
from recfast._codes import ACTIVATION_CODES
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs


def conv2d_forward(a: Conv2dArgs):
    g = a.geom
    code = ACTIVATION_CODES[a.activation]
    cpu.conv2d_forward(a.x, a.w, a.bias, a.out, g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, code,
                       a.num_threads)  # fmt: skip
    return a.out


def conv2d_backward(a: Conv2dBackwardArgs):
    code = ACTIVATION_CODES[a.activation]
    co = a.w.shape[3]
    g, gb = a.grad_out, None
    if code:  # one fused native pass: g * f'(y) and the bias gradient's column sums
        g = np.empty_like(a.grad_out)
        gb = np.empty(co, a.w.dtype) if "bias" in a.needs else None
        cpu.activation_backward(
            a.grad_out.reshape(-1, co), a.output.reshape(-1, co), g.reshape(-1, co), gb, code,
            a.num_threads,
        )  # fmt: skip
    elif "bias" in a.needs:
        gb = a.grad_out.reshape(-1, co).sum(axis=0)
    gx = np.empty_like(a.x) if "x" in a.needs else None
    gw = np.empty_like(a.w) if "w" in a.needs else None
    if gx is not None or gw is not None:
        s = a.geom
        cpu.conv2d_backward(g, a.x, a.w, gx, gw, s.sh, s.sw, s.dh, s.dw, s.pt, s.pl,
                            a.num_threads)  # fmt: skip
    return gx, gw, gb


def max_pool2d_forward(a: Pool2dArgs):
    g = a.geom
    cpu.max_pool2d_forward(a.x, a.out, a.indices, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                           a.num_threads)  # fmt: skip
    return a.out, a.indices


def max_pool2d_backward(a: Pool2dBackwardArgs):
    cpu.max_pool2d_backward(a.grad_out, a.indices, a.grad_x, a.num_threads)
    return a.grad_x
