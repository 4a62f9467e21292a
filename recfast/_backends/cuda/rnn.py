"""``cuda`` recurrent layers: the forward pass (sequences and the step ops, which are T = 1
sequences) and BPTT, as cuBLAS products plus ``recfast._cuda``'s fused step kernels
(recfast/_backends/_gpu_rnn.py drives both GPU backends)."""

from __future__ import annotations

from recfast import _cuda  # type: ignore[attr-defined]
from recfast._backends import _device as dev
from recfast._backends import _gpu_rnn
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs


def rnn_forward(a: RnnForwardArgs):
    stream = dev.current_stream(a.xs)

    def step(*args):
        _cuda.rnn_step_forward(*args, stream)

    return _gpu_rnn.rnn_forward(a, step)


def rnn_backward(a: RnnBackwardArgs) -> None:
    stream = dev.current_stream(a.xs)

    def step(*args):
        _cuda.rnn_step_backward(*args, stream)

    with dev.on_device(a.xs):
        _gpu_rnn.rnn_backward(a, step)
