"""The compiled module, with the best BLAS found handed to it (once, on first use)."""

from recfast import _cpu as cpu
from recfast._backends.cpu import _blas

_blas.install(cpu)

__all__ = ["cpu"]
