"""``cuda`` recurrent layers: the forward pass (sequences and the step ops, which are T = 1
sequences) as cuBLAS products plus ``recfast._cuda``'s fused step kernel. BPTT (``rnn_backward``)
has no GPU kernel yet: asking this backend for it raises BackendUnavailableError."""

from __future__ import annotations

from recfast import _cuda  # type: ignore[attr-defined]
from recfast._backends import _device as dev
from recfast._backends import _gpu_rnn
from recfast._kernel_args import RnnForwardArgs


def rnn_forward(a: RnnForwardArgs):
    stream = dev.current_stream(a.xs)

    def step(*args):
        _cuda.rnn_step_forward(*args, stream)

    return _gpu_rnn.rnn_forward(a, step)
