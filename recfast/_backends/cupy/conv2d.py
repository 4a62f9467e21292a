"""``cupy`` convolution and max-pooling: recfast/_kernels/conv2d.cuh compiled by NVRTC (the
``cuda`` extension's kernels), driven by recfast/_backends/_gpu_conv.py as there."""

from __future__ import annotations

import numpy as np

from recfast._backends import _device as dev
from recfast._backends import _gpu_conv
from recfast._backends.cupy import _compile as jit
from recfast._backends.cupy import _sources
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs

THREADS = 256


def _kernels(like):
    device = dev.device_id(like)
    dt = dev.dtype_name(like)
    conv = jit.kernels("conv2d", _sources.conv2d_names(dt), device)
    dense = jit.kernels("dense", _sources.dense_names(dt), device)
    P, i64 = jit.ptr, np.int64

    def launch(kern, total, args):
        if total:
            kern((jit.grid_for(total, THREADS, device),), (THREADS,), args)

    def dims64(dims):
        return tuple(i64(d) for d in dims)

    def forward(dt, x, w, b, y, act, d):
        launch(
            conv["forward"],
            d[0] * d[7] * d[8] * d[6],
            (P(x), P(w), P(b), P(y), np.int32(act), *dims64(d)),
        )

    def grad_x(dt, g, w, gx, d):
        launch(conv["grad_x"], d[0] * d[1] * d[2] * d[3], (P(g), P(w), P(gx), *dims64(d)))

    def grad_w(dt, g, x, gw, d):
        launch(conv["grad_w"], d[4] * d[5] * d[3] * d[6], (P(g), P(x), P(gw), *dims64(d)))

    def act_backward(dt, g, y, gp, total, act):
        launch(dense["activation_backward"], total, (P(g), P(y), P(gp), i64(total), np.int32(act)))

    def pool(dt, x, out, idx, d):
        launch(conv["pool"], d[0] * d[10] * d[11] * d[3], (P(x), P(out), P(idx), *dims64(d)))

    def pool_backward(dt, g, idx, gx, bad, d):
        launch(
            conv["pool_backward"],
            d[0] * d[10] * d[11] * d[3],
            (P(g), P(idx), P(gx), P(bad), *dims64(d)),
        )

    def count(idx, n, bound, bad):
        launch(conv["count"], n, (P(idx), i64(n), i64(bound), P(bad)))

    return {"forward": forward, "grad_x": grad_x, "grad_w": grad_w, "act_backward": act_backward,
            "pool": pool, "pool_backward": pool_backward, "count": count}  # fmt: skip


def conv2d_forward(a: Conv2dArgs):
    with jit.stream_of(a.x):
        return _gpu_conv.conv2d_forward(a, _kernels(a.x))


def conv2d_backward(a: Conv2dBackwardArgs):
    with jit.stream_of(a.x):
        return _gpu_conv.conv2d_backward(a, _kernels(a.x))


def max_pool2d_forward(a: Pool2dArgs):
    with jit.stream_of(a.x):
        return _gpu_conv.max_pool2d_forward(a, _kernels(a.x))


def max_pool2d_backward(a: Pool2dBackwardArgs):
    with jit.stream_of(a.grad_out):
        return _gpu_conv.max_pool2d_backward(a, _kernels(a.grad_out))
