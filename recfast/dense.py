"""Dense layer ``y = f(x W^T + b)`` (the autoencoder's ``H = f(W x + b)``, batched) and its gradient.

The products run in NumPy's BLAS; on the ``cpu`` backend the bias and the activation are one fused
native pass over the output, and so are the activation's derivative and the bias gradient.
"""

from __future__ import annotations

import numpy as np

from recfast import _validate as check
from recfast._backends import select
from recfast._threads import resolve_num_threads

__all__ = ["dense", "dense_backward"]


def dense(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray | None = None,
    *,
    activation: str | None = None,
    out: np.ndarray | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> np.ndarray:
    """``f(x @ W.T + b)``.

    Parameters
    ----------
    x : (N, D) or (D,) float32/float64
    W : (H, D) same dtype (PyTorch's ``nn.Linear.weight`` layout)
    b : (H,) optional
    activation : None, "identity", "relu", "sigmoid" or "tanh"
    out : (N, H) (or (H,) for a 1-D x), optional, C-contiguous, same dtype

    Returns
    -------
    (N, H) array, or (H,) for a 1-D ``x``.
    """
    act = check.activation("activation", activation)
    x2, W, b, vector = check.dense_inputs(x, W, b)
    shape = (W.shape[0],) if vector else (x2.shape[0], W.shape[0])
    out = check.out_array("out", out, shape, x2.dtype)
    nt = resolve_num_threads(num_threads)
    _, kernel = select("dense_forward", backend, check.array_kind(x2, W, b))
    kernel(x2, W, b, act, out.reshape(x2.shape[0], W.shape[0]), nt)
    return out


def dense_backward(
    grad_out: np.ndarray,
    x: np.ndarray,
    W: np.ndarray,
    *,
    output: np.ndarray | None = None,
    activation: str | None = None,
    needs: tuple[str, ...] = ("x", "W", "b"),
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Gradients of a loss through :func:`dense`.

    Parameters
    ----------
    grad_out : (N, H) dL/dy
    x : (N, D), W : (H, D): the forward inputs
    output : (N, H)
        The forward output ``y``; required with a non-identity ``activation`` (its derivative is
        computed from ``y``, so the pre-activation need not be kept).
    needs : which of "x", "W", "b" to compute (the others come back as None)

    Returns
    -------
    (grad_x (N, D), grad_W (H, D), grad_b (H,)), each None unless in ``needs``.
    """
    act = check.activation("activation", activation)
    bad = set(needs) - {"x", "W", "b"}
    if bad:
        raise ValueError(f"needs may hold 'x', 'W', 'b'; got {sorted(bad)}")
    x2, W, _, vector = check.dense_inputs(x, W, None)
    shape = (x2.shape[0], W.shape[0])
    g = check.float_array("grad_out", grad_out, ndim=1 if vector else 2, dtype=x2.dtype)
    g = np.ascontiguousarray(g.reshape(shape))
    if act is not None:
        if output is None:
            raise ValueError(f"output (the forward result) is required with activation={act!r}")
        y = check.float_array("output", output, ndim=1 if vector else 2, dtype=x2.dtype)
        y = np.ascontiguousarray(y.reshape(shape))
    else:
        y = None
    nt = resolve_num_threads(num_threads)
    _, kernel = select("dense_backward", backend, check.array_kind(x2, W, g))
    gx, gW, gb = kernel(g, x2, W, y, act, tuple(needs), nt)
    if vector and gx is not None:
        gx = gx[0]
    return gx, gW, gb
