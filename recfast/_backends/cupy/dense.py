"""``cupy`` dense layer: the product by cuBLAS (CuPy's or PyTorch's matmul, the better kernel for
a GEMM than anything NVRTC-compiled here), the epilogues from recfast/_kernels/dense.cuh."""

from __future__ import annotations

import numpy as np

from recfast._backends import _device as dev
from recfast._backends.cupy import _compile as jit
from recfast._backends.cupy import _sources
from recfast._codes import ACTIVATION_CODES
from recfast._kernel_args import DenseArgs, DenseBackwardArgs

THREADS = 256


def dense_forward(a: DenseArgs):
    dev.same_device({"x": a.x, "W": a.W, "b": a.b, "out": a.out})
    y = dev.pointer(a.out, "out", writable=True)
    code = ACTIVATION_CODES[a.activation]
    with jit.stream_of(a.out):
        dev.matmul_into(a.x, a.W.T, a.out)
        if a.b is not None or code:
            n, h = a.out.shape
            device = dev.device_id(a.out)
            kern = jit.kernels("dense", _sources.dense_names(dev.dtype_name(a.out)), device)
            g = jit.grid_for(n * h, THREADS * 4, device)
            kern["bias_activation"]((g,), (THREADS,), (jit.ptr(y), jit.ptr(dev.pointer(a.b, "b")),
                                    np.int64(n), np.int64(h), np.int32(code)))  # fmt: skip
    return a.out


def dense_backward(a: DenseBackwardArgs):
    dev.same_device({"grad_out": a.grad_out, "x": a.x, "W": a.W, "output": a.output})
    code = ACTIVATION_CODES[a.activation]
    g = a.grad_out
    with jit.stream_of(g):
        if code:
            n, h = g.shape
            dt = dev.dtype_name(g)
            g = dev.empty(g, (n, h), dt)
            device = dev.device_id(g)
            kern = jit.kernels("dense", _sources.dense_names(dt), device)
            grid = jit.grid_for(n * h, THREADS * 4, device)
            kern["activation_backward"]((grid,), (THREADS,), (
                jit.ptr(dev.pointer(a.grad_out, "grad_out")), jit.ptr(dev.pointer(a.output, "output")),
                jit.ptr(dev.pointer(g, "scratch", writable=True)), np.int64(n * h), np.int32(code)))  # fmt: skip
        gx = g @ a.W if "x" in a.needs else None
        gW = g.T @ a.x if "W" in a.needs else None
        gb = g.sum(0) if "b" in a.needs else None
    return gx, gW, gb
