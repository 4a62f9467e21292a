"""The activation and cell codes: recfast/_codes.py (Python, Numba) and the C++ enums Act, Cell
(csrc/include/recfast/activation.hpp, rnn_cells.hpp) read through recfast._cpu.codes() must agree
(issue "Array kinds and one registry", section 3)."""

import pytest

from recfast._codes import ACTIVATION_CODES, CELL_CODES


def test_cpu_codes_match_python_tables():
    cpu = pytest.importorskip("recfast._cpu")
    codes = cpu.codes()
    assert set(codes) == {"activation", "cell"}
    assert codes["activation"] == {k: v for k, v in ACTIVATION_CODES.items() if k is not None}
    assert codes["cell"] == CELL_CODES
