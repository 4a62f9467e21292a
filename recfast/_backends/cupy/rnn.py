"""``cupy`` recurrent layers: the forward pass, with recfast/_kernels/rnn.cuh's fused step
and BPTT step compiled by NVRTC (the ``cuda`` extension's kernels), the products in cuBLAS."""

from __future__ import annotations

import numpy as np

from recfast._backends import _device as dev
from recfast._backends import _gpu_rnn
from recfast._backends.cupy import _compile as jit
from recfast._backends.cupy import _sources
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs

THREADS = 256


def rnn_forward(a: RnnForwardArgs):
    device = dev.device_id(a.xs)
    kern = jit.kernels("rnn", _sources.rnn_names(dev.dtype_name(a.xs)), device)["step"]

    def step(dt, cell, act, pa, pu, pbi, pbh, plen, t, hp, cp, hn, cn, po, pg, N, H):
        P, i64 = jit.ptr, np.int64
        grid = jit.grid_for(N * H, THREADS, device)
        kern((grid,), (THREADS,), (np.int32(cell), np.int32(act), P(pa), P(pu), P(pbi), P(pbh),
                                   P(plen), i64(t), P(hp), P(cp), P(hn), P(cn), P(po), P(pg),
                                   i64(N), i64(H)))  # fmt: skip

    with jit.stream_of(a.xs):
        return _gpu_rnn.rnn_forward(a, step)


def rnn_backward(a: RnnBackwardArgs) -> None:
    device = dev.device_id(a.xs)
    kern = jit.kernels("rnn", _sources.rnn_names(dev.dtype_name(a.xs)), device)["step_backward"]

    def step(dt, cell, act, go, dhb, dhm, dc, hp, h, cp, c, g, plen, t, gx, gh, N, H):
        P, i64 = jit.ptr, np.int64
        grid = jit.grid_for(N * H, THREADS, device)
        kern((grid,), (THREADS,), (np.int32(cell), np.int32(act), P(go), P(dhb), P(dhm), P(dc),
                                   P(hp), P(h), P(cp), P(c), P(g), P(plen), i64(t), P(gx), P(gh),
                                   i64(N), i64(H)))  # fmt: skip

    with jit.stream_of(a.xs):
        _gpu_rnn.rnn_backward(a, step)
