"""``cuda`` dense layer: the product by cuBLAS through the caller's CuPy/PyTorch (on its current
stream), the bias + activation epilogue and the activation gradient by ``recfast._cuda``'s
kernels (the arithmetic of ``csrc/include/recfast/activation.hpp``)."""

from __future__ import annotations

from recfast import _cuda  # type: ignore[attr-defined]
from recfast._backends import _device as dev
from recfast._codes import ACTIVATION_CODES
from recfast._kernel_args import DenseArgs, DenseBackwardArgs


def dense_forward(a: DenseArgs):
    dev.same_device({"x": a.x, "W": a.W, "b": a.b, "out": a.out})
    y = dev.pointer(a.out, "out", writable=True)
    code = ACTIVATION_CODES[a.activation]
    with dev.on_device(a.out):
        dev.matmul_into(a.x, a.W.T, a.out)
        if a.b is not None or code:
            n, h = a.out.shape
            _cuda.bias_activation(dev.dtype_name(a.out), y, dev.pointer(a.b, "b"), n, h, code,
                                  dev.current_stream(a.out))  # fmt: skip
    return a.out


def dense_backward(a: DenseBackwardArgs):
    dev.same_device({"grad_out": a.grad_out, "x": a.x, "W": a.W, "output": a.output})
    code = ACTIVATION_CODES[a.activation]
    g = a.grad_out
    with dev.on_device(g):
        if code:
            n, h = g.shape
            g = dev.empty(g, (n, h), dev.dtype_name(g))
            _cuda.activation_backward(
                dev.dtype_name(g), dev.pointer(a.grad_out, "grad_out"),
                dev.pointer(a.output, "output"), dev.pointer(g, "scratch", writable=True), n * h,
                code, dev.current_stream(g),
            )  # fmt: skip
        gx = g @ a.W if "x" in a.needs else None
        gW = g.T @ a.x if "W" in a.needs else None
        gb = g.sum(0) if "b" in a.needs else None
    return gx, gW, gb
