"""``cpu`` recurrent sequences: the whole time loop (and BPTT) in one native call."""

from __future__ import annotations

from recfast._backends.cpu._native import cpu
from recfast._codes import ACTIVATION_CODES, CELL_CODES
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs


def rnn_forward(a: RnnForwardArgs) -> None:
    cpu.rnn_forward(CELL_CODES[a.cell], ACTIVATION_CODES[a.activation], *a[2:])


def rnn_backward(a: RnnBackwardArgs) -> None:
    cpu.rnn_backward(CELL_CODES[a.cell], ACTIVATION_CODES[a.activation], *a[2:])
