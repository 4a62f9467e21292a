"""recfast: fast kernels for recommender models.

NumPy in, NumPy out; PyTorch in, PyTorch out (CPU tensors zero-copy); CuPy in, CuPy out. Every
op finds the array kind once, picks a backend (``backend=`` > :func:`use_backend` >
``RECFAST_BACKEND`` > the fastest live one for that kind), validates its input once and releases
the GIL in native code.
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
from recfast.conv2d import (
    conv2d,
    conv2d_backward,
    conv2d_output_shape,
    max_pool2d,
    max_pool2d_backward,
)
from recfast.dense import dense, dense_backward
from recfast.mf import DivergenceError, mf_block_layout, sgd_mf_epoch
from recfast.models.autorec import AutoRec
from recfast.models.hybrid import ItemFeatureMap, TextCNN
from recfast.models.implicit import BPR, ImplicitALS
from recfast.models.mf import MatrixFactorization
from recfast.models.multdae import MultDAE
from recfast.models.sequence import GRU4Rec
from recfast.rnn import gru_step, lstm_step, rnn_backward, rnn_forward, rnn_output, rnn_step

__all__ = [
    "AutoRec",
    "BPR",
    "BackendInfo",
    "BackendUnavailableError",
    "DivergenceError",
    "GRU4Rec",
    "ItemFeatureMap",
    "ImplicitALS",
    "MatrixFactorization",
    "MultDAE",
    "TextCNN",
    "backends",
    "conv2d",
    "conv2d_backward",
    "conv2d_output_shape",
    "dense",
    "dense_backward",
    "get_num_threads",
    "gru_step",
    "lstm_step",
    "max_pool2d",
    "max_pool2d_backward",
    "mf_block_layout",
    "rnn_backward",
    "rnn_forward",
    "rnn_output",
    "rnn_step",
    "set_num_threads",
    "sgd_mf_epoch",
    "show_config",
    "use_backend",
    "__version__",
]


# The extension is probed lazily, so this may run after the imports above.
def _attach_installed_extension() -> None:
    """``python -m ...`` from a source checkout imports this source folder, which holds no
    compiled extension; let ``recfast._cpu`` resolve to the one pip installed, if any."""
    import importlib.metadata as md
    from pathlib import Path

    here = Path(__file__).resolve().parent
    if any(here.glob("_cpu*.so")) or any(here.glob("_cpu*.pyd")):
        return
    # Every installed copy, not just the first: a build leaves recfast.egg-info in the checkout,
    # which lists no compiled files.
    for dist in md.distributions(name="recfast"):
        for f in dist.files or []:
            if f.name.startswith("_cpu.") and f.suffix in (".so", ".pyd"):
                folder = Path(f.locate()).resolve().parent
                if folder != here and folder.is_dir() and str(folder) not in __path__:
                    __path__.append(str(folder))
                return


_attach_installed_extension()


def _load_openmp_runtime() -> None:
    """Load the compiled extension (and so its OpenMP runtime) with the package: threadpoolctl
    limits only the runtimes already loaded, so ``threadpool_limits(1, user_api="openmp")``
    entered right after ``import recfast`` must find ours (issue #9)."""
    from recfast._backends import _probe

    _probe("cpu")  # never raises; a missing or disabled extension is reported by backends()


_load_openmp_runtime()
