"""Helpers shared by recfast's tests and by users checking a backend: which backends are live,
per-dtype tolerances, and random problem generators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recfast import _registry as reg
from recfast._backends import implementation

#: The skip reason of the PyTorch-parity tests (torch is not in the [test] extra: a large download).
TORCH_MISSING = "PyTorch not installed, PyTorch-parity tests skipped: pip install torch"

# Relative tolerance of a backend against the reference after a few SGD epochs (one thread, same
# order): summation order inside the dot product is the only difference.
TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}

# From the registry: the backends that take host arrays (the reference last), and the GPU ones.
CPU_BACKENDS: tuple[str, ...] = reg.auto_order("cpu")
GPU_BACKENDS: tuple[str, ...] = reg.auto_order("cuda")


def live_backends(op: str, candidates: tuple[str, ...] = CPU_BACKENDS) -> list[str]:
    """The candidates that are live here and implement ``op`` (in the registry's order)."""
    return [name for name in candidates if implementation(name, op) is not None]


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype, what: str = "") -> None:
    """Max-abs error relative to the largest expected magnitude, within ``TOLERANCE[dtype]``."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.isfinite(actual).all(), f"{what}: non-finite entries"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0)) / scale
    assert err <= TOLERANCE[np.dtype(dtype)], f"{what}: relative error {err:.3g}"


@dataclass
class MFProblem:
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    user_bias: np.ndarray
    item_bias: np.ndarray

    def copy_state(self):
        return (
            self.user_factors.copy(),
            self.item_factors.copy(),
            self.user_bias.copy(),
            self.item_bias.copy(),
        )


def random_mf_problem(
    n_users: int,
    n_items: int,
    nnz: int,
    k: int,
    *,
    dtype=np.float64,
    index_dtype=np.int32,
    seed=None,
) -> MFProblem:
    """Random ratings in [1, 5] (pairs may repeat) and small random factors."""
    rng = np.random.default_rng(seed)
    return MFProblem(
        rows=rng.integers(0, n_users, nnz).astype(index_dtype),
        cols=rng.integers(0, n_items, nnz).astype(index_dtype),
        values=rng.uniform(1, 5, nnz).astype(dtype),
        user_factors=(rng.standard_normal((n_users, k)) * 0.1).astype(dtype),
        item_factors=(rng.standard_normal((n_items, k)) * 0.1).astype(dtype),
        user_bias=(rng.standard_normal(n_users) * 0.1).astype(dtype),
        item_bias=(rng.standard_normal(n_items) * 0.1).astype(dtype),
    )
