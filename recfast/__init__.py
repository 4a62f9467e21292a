"""recfast: fast kernels for recommender models.

NumPy in, NumPy out. Every op validates its input once, picks a backend (``backend=`` >
:func:`use_backend` > ``RECFAST_BACKEND`` > fastest live one) and releases the GIL in native code.
"""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("recfast")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from recfast._backends import BackendInfo, BackendUnavailableError, backends, use_backend
from recfast._config import show_config
from recfast._threads import get_num_threads, set_num_threads
from recfast.mf import DivergenceError, mf_block_layout, sgd_mf_epoch
from recfast.models.mf import MatrixFactorization

__all__ = [
    "BackendInfo",
    "BackendUnavailableError",
    "DivergenceError",
    "MatrixFactorization",
    "backends",
    "get_num_threads",
    "mf_block_layout",
    "set_num_threads",
    "sgd_mf_epoch",
    "show_config",
    "use_backend",
    "__version__",
]
