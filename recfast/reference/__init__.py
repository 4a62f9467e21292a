"""Plain NumPy implementations: slow, sequential, obviously correct. The oracle for every backend.

Each function has the same signature as the compiled kernel of the same name in ``recfast._cpu``
(inputs already validated by ``recfast._validate``).
"""

from recfast.reference.conv import (
    conv2d_backward,
    conv2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from recfast.reference.dense import dense_backward, dense_forward
from recfast.reference.mf import mf_block_layout, sgd_mf_epoch
from recfast.reference.rnn import rnn_backward, rnn_forward

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
