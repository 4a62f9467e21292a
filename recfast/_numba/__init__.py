"""Numba CPU fallback, used when the C++ extension is not built. Same signatures as ``recfast._cpu``."""

from recfast._numba.conv import (
    conv2d_backward,
    conv2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from recfast._numba.dense import dense_backward, dense_forward
from recfast._numba.mf import mf_block_layout, sgd_mf_epoch
from recfast._numba.rnn import rnn_backward, rnn_forward

__all__ = [
    "conv2d_backward",
    "conv2d_forward",
    "dense_backward",
    "dense_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "mf_block_layout",
    "rnn_backward",
    "rnn_forward",
    "sgd_mf_epoch",
]
