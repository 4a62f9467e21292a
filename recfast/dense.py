"""Dense layer ``y = f(x W^T + b)`` (the autoencoder's ``H = f(W x + b)``, batched) and its gradient.

The products run in NumPy's BLAS; on the ``cpu`` backend the bias and the activation are one fused
native pass over the output, and so are the activation's derivative and the bias gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import select
from recfast._kernel_args import DenseArgs, DenseBackwardArgs
from recfast._kinds import NUMPY
from recfast._threads import resolve_num_threads

__all__ = ["dense", "dense_backward"]

_FWD = ("x", "W", "b", "out")
_BWD = ("grad_out", "x", "W", "output")


def dense(
    x: Any,
    W: Any,
    b: Any = None,
    *,
    activation: str | None = None,
    out: Any = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> Any:
    """``f(x @ W.T + b)``.

    Parameters
    ----------
    x : (N, D) or (D,) float32/float64: a NumPy array, PyTorch tensor or CuPy array
    W : (H, D) same dtype and kind (PyTorch's ``nn.Linear.weight`` layout)
    b : (H,) optional
    activation : None, "identity", "relu", "sigmoid" or "tanh"
    out : (N, H) (or (H,) for a 1-D x), optional, C-contiguous, same dtype

    Returns
    -------
    (N, H) array of the input's kind, or (H,) for a 1-D ``x``.
    """
    kind, (x, W, b, out) = kinds.inputs((x, W, b, out), _FWD)
    _, kernel = select("dense_forward", backend, kind)
    xp = kind.xp
    act = check.activation("activation", activation)
    x2, W, b, vector = check.dense_inputs(x, W, b, xp)
    shape = (W.shape[0],) if vector else (x2.shape[0], W.shape[0])
    given = out is not None
    out = check.out_array("out", out, shape, x2.dtype, xp)
    if given:
        check.no_overlap(xp, {"out": out}, {"x": x2, "W": W, "b": b})
    nt = resolve_num_threads(num_threads)
    res = out
    if vector:
        res = out.reshape(1, W.shape[0]) if xp is np else xp.reshape(out, (1, W.shape[0]))
    kernel(DenseArgs(x2, W, b, act, res, nt))
    return out if kind is NUMPY else kind.wrap(out)


def dense_backward(
    grad_out: Any,
    x: Any,
    W: Any,
    *,
    output: Any = None,
    activation: str | None = None,
    needs: tuple[str, ...] = ("x", "W", "b"),
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Any, Any, Any]:
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
    kind, (grad_out, x, W, output) = kinds.inputs((grad_out, x, W, output), _BWD)
    _, kernel = select("dense_backward", backend, kind)
    xp = kind.xp
    act = check.activation("activation", activation)
    needs = tuple(needs)
    bad = set(needs) - {"x", "W", "b"}
    if bad:
        raise ValueError(f"needs may hold 'x', 'W', 'b'; got {sorted(bad)}")
    x2, W, _, vector = check.dense_inputs(x, W, None, xp)
    shape = (W.shape[0],) if vector else (x2.shape[0], W.shape[0])
    g = check.same_shape("grad_out", grad_out, shape, x2.dtype, "x", xp)
    y = None
    if act is not None:
        if output is None:
            raise ValueError(f"output (the forward result) is required with activation={act!r}")
        y = check.same_shape("output", output, shape, x2.dtype, "x", xp)
    if vector:
        g = xp.reshape(g, (1, shape[0]))
        y = None if y is None else xp.reshape(y, (1, shape[0]))
    nt = resolve_num_threads(num_threads)
    gx, gW, gb = kernel(DenseBackwardArgs(g, x2, W, y, act, needs, nt))
    if vector and gx is not None:
        gx = gx[0]
    if kind is not NUMPY:
        return kind.wrap(gx), kind.wrap(gW), kind.wrap(gb)
    return gx, gW, gb
