"""Numba CPU fallback, used when the C++ extension is not built. Same signatures as ``recfast._cpu``."""

from recfast._numba.mf import mf_block_layout, sgd_mf_epoch

__all__ = ["mf_block_layout", "sgd_mf_epoch"]
