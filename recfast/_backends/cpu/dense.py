"""``cpu`` dense layer: one native call per pass (the GEMMs in the BLAS NumPy ships, on the call's
thread count, and the fused bias + activation / activation-gradient epilogues)."""

from __future__ import annotations

import numpy as np

from recfast._backends.cpu._native import cpu
from recfast._codes import ACTIVATION_CODES
from recfast._kernel_args import DenseArgs, DenseBackwardArgs


def dense_forward(a: DenseArgs):
    cpu.dense_forward(a.x, a.W, a.b, a.out, ACTIVATION_CODES[a.activation], a.num_threads)
    return a.out


def dense_backward(a: DenseBackwardArgs):
    code = ACTIVATION_CODES[a.activation]
    n, h, d = a.grad_out.shape[0], a.W.shape[0], a.W.shape[1]
    dt = a.W.dtype
    gx = np.empty((n, d), dt) if "x" in a.needs else None
    gW = np.empty((h, d), dt) if "W" in a.needs else None
    gb = np.empty(h, dt) if "b" in a.needs else None
    # g = grad_out * f'(y) needs a buffer; without an activation grad_out is used as it is (with
    # full-softmax scores it is the largest array around).
    scratch = np.empty((n, h), dt) if code else None
    cpu.dense_backward(a.grad_out, a.x, a.W, a.output if code else None, scratch, gx, gW, gb,
                       code, a.num_threads)  # fmt: skip
    return gx, gW, gb
