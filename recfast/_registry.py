"""The one table of recfast's ops and backends, as data.

* ``OPS``: every kernel-level op, mapped to its family: the file name that implements it in every
  backend folder (``recfast/_backends/<backend>/<family>.py``) and names its public module, C++
  kernel, binding, tests and benchmark (``mf``: ``recfast/mf.py``, ``csrc/cpu/mf_cpu.cpp``,
  ``csrc/bindings/cpu/mf_bind.cpp``, ``tests/test_mf.py``, ``recfast/bench/mf.py``).
* ``BACKENDS``: one row per backend, in order of preference: name, device and package. The package
  (``recfast/_backends/<name>/__init__.py``) has a ``probe()`` that returns "" when the backend is
  live here, else the reason, and never raises.

Everything else derives from these two tables: the automatic order per array kind
(:func:`auto_order`), ``recfast.backends()``, ``show_config()``'s op x backend matrix and the
tests' backend parametrization (``recfast.testing.live_backends``). Adding an op is one ``OPS``
entry plus one function per backend file; adding a backend is one row plus one package.
"""

from __future__ import annotations

from typing import NamedTuple

OPS: dict[str, str] = {
    "sgd_mf_epoch": "mf",
    "mf_block_layout": "mf",
    "dense_forward": "dense",
    "dense_backward": "dense",
    "rnn_forward": "rnn",
    "rnn_backward": "rnn",
    "conv2d_forward": "conv2d",
    "conv2d_backward": "conv2d",
    "max_pool2d_forward": "conv2d",
    "max_pool2d_backward": "conv2d",
    "topk": "implicit",
    "als_half_sweep": "implicit",
    "bpr_epoch": "implicit",
}

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(OPS.values()))


class BackendSpec(NamedTuple):
    name: str
    device: str  # "cpu" (takes host arrays), "cuda" (device arrays) or "any" (the reference)
    package: str


BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec("cpu", "cpu", "recfast._backends.cpu"),
    BackendSpec("cuda", "cuda", "recfast._backends.cuda"),
    BackendSpec("numba", "cpu", "recfast._backends.numba"),
    BackendSpec("cupy", "cuda", "recfast._backends.cupy"),
    BackendSpec("reference", "any", "recfast._backends.reference"),
)

BY_NAME: dict[str, BackendSpec] = {b.name: b for b in BACKENDS}
NAMES: tuple[str, ...] = tuple(BY_NAME)


def auto_order(device: str) -> tuple[str, ...]:
    """Backends tried, in order, for arrays that live on ``device`` when none is named.

    Host arrays: the host backends in table order, then the reference (with a warning). Device
    arrays: the device backends only; the reference runs there only when named, since it is
    orders of magnitude slower than a GPU kernel. Any other array-API namespace: the reference.
    """
    if device == "cpu":
        return tuple(b.name for b in BACKENDS if b.device == "cpu") + ("reference",)
    if device == "cuda":
        return tuple(b.name for b in BACKENDS if b.device == "cuda")
    return ("reference",)
