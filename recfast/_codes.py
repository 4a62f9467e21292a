"""The small enumerations that Python, Numba and C++ share: activation and recurrent-cell codes.

The C++ values live in ``csrc/include/recfast/activation.hpp`` (``Act``) and ``rnn_cells.hpp``
(``Cell``); ``recfast._cpu.codes()`` returns them and a test compares the two tables.
"""

from __future__ import annotations

ACTIVATIONS = (None, "identity", "relu", "sigmoid", "tanh")
# The codes the native and Numba kernels switch on (None and "identity" are the same: no-op).
ACTIVATION_CODES = {None: 0, "identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}

CELLS = ("rnn", "gru", "lstm")
CELL_CODES = {"rnn": 0, "gru": 1, "lstm": 2}
# Gate blocks of W and U: RNN 1, GRU 3 (r, z, n), LSTM 4 (i, f, g, o).
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
