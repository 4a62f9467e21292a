"""``cuda`` convolution and max-pooling: ``recfast._cuda``'s direct NHWC kernels
(recfast/_backends/_gpu_conv.py drives both GPU backends)."""

from __future__ import annotations

from recfast import _cuda  # type: ignore[attr-defined]
from recfast._backends import _device as dev
from recfast._backends import _gpu_conv
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs


def _kernels(like):
    s = dev.current_stream(like)
    return {
        "forward": lambda dt, x, w, b, y, act, dims: _cuda.conv2d_forward(dt, x, w, b, y, act,
                                                                          list(dims), s),
        "grad_x": lambda dt, g, w, gx, dims: _cuda.conv2d_grad_x(dt, g, w, gx, list(dims), s),
        "grad_w": lambda dt, g, x, gw, dims: _cuda.conv2d_grad_w(dt, g, x, gw, list(dims), s),
        "act_backward": lambda dt, g, y, gp, total, act: _cuda.activation_backward(
            dt, g, y, gp, total, act, s),
        "pool": lambda dt, x, out, idx, dims: _cuda.max_pool2d_forward(dt, x, out, idx,
                                                                       list(dims), s),
        "pool_backward": lambda dt, g, idx, gx, bad, dims: _cuda.max_pool2d_backward(
            dt, g, idx, gx, bad, list(dims), s),
        "count": lambda idx, n, bound, bad: _cuda.count_out_of_range(idx, n, bound, bad, s),
    }  # fmt: skip


def conv2d_forward(a: Conv2dArgs):
    with dev.on_device(a.x):
        return _gpu_conv.conv2d_forward(a, _kernels(a.x))


def conv2d_backward(a: Conv2dBackwardArgs):
    with dev.on_device(a.x):
        return _gpu_conv.conv2d_backward(a, _kernels(a.x))


def max_pool2d_forward(a: Pool2dArgs):
    with dev.on_device(a.x):
        return _gpu_conv.max_pool2d_forward(a, _kernels(a.x))


def max_pool2d_backward(a: Pool2dBackwardArgs):
    with dev.on_device(a.grad_out):
        return _gpu_conv.max_pool2d_backward(a, _kernels(a.grad_out))
