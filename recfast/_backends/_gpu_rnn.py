"""The recurrent forward pass on the GPU, shared by the ``cuda`` and ``cupy`` backends.

The input side of all T steps is one GEMM (``xs (T N, D) @ W^T``); each step is then one GEMM for
the recurrent side (``h @ U^T``, cuBLAS through the caller's library) and one fused kernel
(recfast/_kernels/rnn.cuh: biases, gates, state update, masking, the caches). Everything is
queued on the caller's stream: no host round trip per step. The state lives in ``states[t]`` when
the BPTT cache is asked for (the kernel writes ``states[t + 1]`` directly), else in ``h_last``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from recfast._backends import _device as dev
from recfast._codes import ACTIVATION_CODES, CELL_CODES
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs

# step(dtype, cell, act, a, u, b_ih, b_hh, lengths, t, h_prev, c_prev, h_new, c_new, out_t,
#      gates_t, N, H): one fused-step launch on the current stream, pointers as integers.
Step = Callable[..., None]


def rnn_forward(a: RnnForwardArgs, step: Step) -> Any:
    named = {"xs": a.xs, "h0": a.h0, "c0": a.c0, "W": a.W, "U": a.U, "b_ih": a.b_ih,
             "b_hh": a.b_hh, "lengths": a.lengths, "out": a.out, "h_last": a.h_last,
             "c_last": a.c_last, "states": a.states, "cells": a.cells, "gates": a.gates}  # fmt: skip
    dev.same_device(named)
    for name in ("out", "h_last", "c_last", "states", "cells", "gates"):
        dev.pointer(named[name], name, writable=True)  # the checks; pointers are taken per step
    T, N, D = a.xs.shape
    H = a.h0.shape[1]
    GH = a.W.shape[0]
    dt = dev.dtype_name(a.xs)
    lstm = a.cell == "lstm"
    cell, act = CELL_CODES[a.cell], ACTIVATION_CODES[a.activation]
    P = dev.pointer
    with dev.on_device(a.xs):
        proj = dev.empty(a.xs, (T * N, GH), dt)
        if T * N:
            dev.matmul_into(a.xs.reshape(T * N, D), a.W.T, proj)
        u = dev.empty(a.xs, (N, GH), dt)
        if a.states is not None:
            a.states[0] = a.h0
            if lstm:
                a.cells[0] = a.c0
        else:
            a.h_last[...] = a.h0
            if lstm:
                a.c_last[...] = a.c0
        row = N * GH * (4 if dt == "float32" else 8)  # bytes per step of proj
        for t in range(T):
            if a.states is not None:
                h_prev, h_new = a.states[t], a.states[t + 1]
                c_prev, c_new = (a.cells[t], a.cells[t + 1]) if lstm else (None, None)
            else:
                h_prev = h_new = a.h_last
                c_prev = c_new = a.c_last if lstm else None
            dev.matmul_into(h_prev, a.U.T, u)
            step(dt, cell, act, P(proj, "proj") + t * row, P(u, "u"), P(a.b_ih, "b_ih"),
                 P(a.b_hh, "b_hh"), P(a.lengths, "lengths"), t, P(h_prev, "h"), P(c_prev, "c"),
                 P(h_new, "h"), P(c_new, "c"), P(a.out[t], "out") if a.out is not None else 0,
                 P(a.gates[t], "gates") if a.gates is not None else 0, N, H)  # fmt: skip
        if a.states is not None:
            a.h_last[...] = a.states[T]
            if lstm:
                a.c_last[...] = a.cells[T]
    return a.h_last


def rnn_backward(a: RnnBackwardArgs, step_backward: Step) -> None:
    """BPTT: per step (backwards) one fused kernel for the gate gradients and one cuBLAS GEMM
    (gh @ U) for the gradient reaching the previous state; the weight and input gradients are
    then one GEMM each over all T steps (the per-step gradients are kept, (T, N, G H))."""
    named = {"xs": a.xs, "W": a.W, "U": a.U, "lengths": a.lengths, "states": a.states,
             "cells": a.cells, "gates": a.gates, "grad_out": a.grad_out,
             "grad_h_last": a.grad_h_last, "grad_c_last": a.grad_c_last, "grad_xs": a.grad_xs,
             "grad_h0": a.grad_h0, "grad_c0": a.grad_c0, "grad_W": a.grad_W, "grad_U": a.grad_U,
             "grad_b_ih": a.grad_b_ih, "grad_b_hh": a.grad_b_hh}  # fmt: skip
    dev.same_device(named)
    for name in ("grad_xs", "grad_h0", "grad_c0", "grad_W", "grad_U", "grad_b_ih", "grad_b_hh"):
        dev.pointer(named[name], name, writable=True)
    T, N, D = a.xs.shape
    H = a.states.shape[2]
    GH = a.W.shape[0]
    dt = dev.dtype_name(a.xs)
    lstm = a.cell == "lstm"
    cell, act = CELL_CODES[a.cell], ACTIVATION_CODES[a.activation]
    P = dev.pointer
    size = 4 if dt == "float32" else 8
    with dev.on_device(a.xs):
        dh_base = dev.empty(a.xs, (N, H), dt, zero=True)
        if a.grad_h_last is not None:
            dh_base[...] = a.grad_h_last
        dh_mat = dev.empty(a.xs, (N, H), dt, zero=True)
        dc = dev.empty(a.xs, (N, H), dt, zero=True) if lstm else None
        if lstm and a.grad_c_last is not None:
            dc[...] = a.grad_c_last
        gx = dev.empty(a.xs, (T, N, GH), dt)
        gh = dev.empty(a.xs, (T, N, GH), dt) if a.cell == "gru" else gx
        step_bytes, state_bytes = N * GH * size, N * H * size
        gx_p, gh_p = P(gx, "gx"), P(gh, "gh")
        go_p = P(a.grad_out, "grad_out")
        st_p = P(a.states, "states")
        ce_p = P(a.cells, "cells")
        ga_p = P(a.gates, "gates")
        for t in range(T - 1, -1, -1):
            step_backward(dt, cell, act, go_p + t * state_bytes if go_p else 0, P(dh_base, "dh"),
                          P(dh_mat, "dh"), P(dc, "dc"), st_p + t * state_bytes,
                          st_p + (t + 1) * state_bytes, ce_p + t * state_bytes if lstm else 0,
                          ce_p + (t + 1) * state_bytes if lstm else 0,
                          ga_p + t * N * 4 * H * size if ga_p else 0, P(a.lengths, "lengths"), t,
                          gx_p + t * step_bytes, gh_p + t * step_bytes, N, H)  # fmt: skip
            dev.matmul_into(gh[t], a.U, dh_mat)
        gx2, gh2 = gx.reshape(T * N, GH), gh.reshape(T * N, GH)
        if a.grad_xs is not None:
            dev.matmul_into(gx2, a.W, a.grad_xs.reshape(T * N, D))
        if a.grad_W is not None:
            dev.matmul_into(gx2.T, a.xs.reshape(T * N, D), a.grad_W)
        if a.grad_U is not None:
            dev.matmul_into(gh2.T, a.states[:T].reshape(T * N, H), a.grad_U)
        if a.grad_b_ih is not None:
            a.grad_b_ih[...] = gx2.sum(0)
        if a.grad_b_hh is not None:
            a.grad_b_hh[...] = gh2.sum(0)
        if a.grad_h0 is not None:
            a.grad_h0[...] = dh_base + dh_mat
        if a.grad_c0 is not None:
            a.grad_c0[...] = dc
