"""What the reference kernels share: the namespace of their arrays and the activations, written
against the array API standard only (no NumPy-only calls), so the same code runs on NumPy, CuPy,
PyTorch (through array-api-compat) and array_api_strict."""

from __future__ import annotations

from typing import Any


def namespace(a: Any) -> Any:
    """The array-API namespace of ``a`` (array-api-compat's NumPy wrapper for NumPy arrays, so
    the standard's functions exist whatever the NumPy version)."""
    from array_api_compat import array_namespace

    return array_namespace(a)


def copy(xp: Any, a: Any) -> Any:
    return xp.asarray(a, copy=True)


def activate(xp: Any, activation: str | None, z: Any) -> Any:
    if activation in (None, "identity"):
        return z
    if activation == "relu":
        # NaN stays NaN, as np.maximum(z, 0) and torch.relu keep it; -inf becomes 0.
        return xp.where(z > 0, z, xp.where(xp.isnan(z), z, xp.zeros_like(z)))
    if activation == "sigmoid":
        return 1 / (1 + xp.exp(-z))
    if activation == "tanh":
        return xp.tanh(z)
    raise ValueError(f"unknown activation {activation!r}")


def activation_grad_from_output(xp: Any, activation: str | None, y: Any) -> Any:
    """f'(z) written through y = f(z)."""
    if activation in (None, "identity"):
        return xp.ones_like(y)
    if activation == "relu":
        return xp.astype(y > 0, y.dtype)
    if activation == "sigmoid":
        return y * (1 - y)
    if activation == "tanh":
        return 1 - y * y
    raise ValueError(f"unknown activation {activation!r}")
