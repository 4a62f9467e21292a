"""Convolution and max-pooling on the GPU, shared by the ``cuda`` and ``cupy`` backends: direct
NHWC kernels (recfast/_kernels/conv2d.cuh), the activation gradient of dense.cuh, bias gradients
as the caller's library's column sums. ``k`` maps kernel names to launchers taking
``(dtype, *pointers and scalars, *dims)`` on the current stream."""

from __future__ import annotations

from typing import Any

import numpy as np

from recfast._backends import _device as dev
from recfast._codes import ACTIVATION_CODES
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs


def conv_dims(x: Any, w: Any, out_shape: tuple[int, ...], g: Any) -> tuple[int, ...]:
    """Conv2dShape's fields, in order (recfast/conv2d.hpp)."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    return (n, h, wd, c, kh, kw, co, out_shape[1], out_shape[2], g.sh, g.sw, g.dh, g.dw, g.pt, g.pl)


def conv2d_forward(a: Conv2dArgs, k: dict[str, Any]) -> Any:
    dev.same_device({"x": a.x, "w": a.w, "bias": a.bias, "out": a.out})
    P = dev.pointer
    dims = conv_dims(a.x, a.w, a.out.shape, a.geom)
    k["forward"](dev.dtype_name(a.x), P(a.x, "x"), P(a.w, "w"), P(a.bias, "bias"),
                 P(a.out, "out", writable=True), ACTIVATION_CODES[a.activation], dims)  # fmt: skip
    return a.out


def conv2d_backward(a: Conv2dBackwardArgs, k: dict[str, Any]) -> tuple[Any, Any, Any]:
    dev.same_device({"grad_out": a.grad_out, "x": a.x, "w": a.w, "output": a.output})
    P = dev.pointer
    dt = dev.dtype_name(a.x)
    code = ACTIVATION_CODES[a.activation]
    co = a.w.shape[3]
    g = a.grad_out
    if code:
        g = dev.empty(g, tuple(g.shape), dt)
        k["act_backward"](dt, P(a.grad_out, "grad_out"), P(a.output, "output"),
                          P(g, "g", writable=True), int(np.prod(g.shape)), code)  # fmt: skip
    gb = g.reshape(-1, co).sum(0) if "bias" in a.needs else None
    dims = conv_dims(a.x, a.w, a.grad_out.shape, a.geom)
    gx = gw = None
    if "x" in a.needs:
        gx = dev.empty(a.x, tuple(a.x.shape), dt)
        k["grad_x"](dt, P(g, "g"), P(a.w, "w"), P(gx, "grad_x", writable=True), dims)
    if "w" in a.needs:
        gw = dev.empty(a.w, tuple(a.w.shape), dt)
        k["grad_w"](dt, P(g, "g"), P(a.x, "x"), P(gw, "grad_w", writable=True), dims)
    return gx, gw, gb


def max_pool2d_forward(a: Pool2dArgs, k: dict[str, Any]) -> tuple[Any, Any]:
    dev.same_device({"x": a.x, "out": a.out, "indices": a.indices})
    g = a.geom
    n, h, w, c = a.x.shape
    dims = (n, h, w, c, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.oh, g.ow)
    k["pool"](dev.dtype_name(a.x), dev.pointer(a.x, "x"), dev.pointer(a.out, "out", writable=True),
              dev.pointer(a.indices, "indices", writable=True, dtype="int64"), dims)  # fmt: skip
    return a.out, a.indices


def max_pool2d_backward(a: Pool2dBackwardArgs, k: dict[str, Any]) -> Any:
    dev.same_device({"grad_out": a.grad_out, "indices": a.indices, "grad_x": a.grad_x})
    n, h, w, c = a.grad_x.shape
    _, oh, ow, _ = a.grad_out.shape
    ip = dev.pointer(a.indices, "indices", dtype="int64")
    total = n * oh * ow * c
    bad = dev.empty(a.grad_x, (2,), "int64", zero=True)
    bp = dev.pointer(bad, "work", writable=True)
    # The indices are checked on the device before the scatter reads them; one count comes back.
    k["count"](ip, total, h * w, bp)
    found = int(dev.host_values(bad)[0])
    if found:
        raise ValueError(f"indices holds {found} entries outside [0, H*W={h * w})")
    a.grad_x[...] = 0
    dims = (n, h, w, c, 0, 0, 0, 0, 0, 0, oh, ow)
    k["pool_backward"](dev.dtype_name(a.grad_x), dev.pointer(a.grad_out, "grad_out"), ip,
                       dev.pointer(a.grad_x, "grad_x", writable=True), bp + 8, dims)  # fmt: skip
    late = int(dev.host_values(bad)[1])
    if late:
        raise ValueError(f"indices changed while the kernel ran: {late} entries out of range")
    return a.grad_x
