"""Reference dense layer ``y = f(x W^T + b)``, written against the array namespace (NumPy or CuPy)."""

from __future__ import annotations


def array_namespace(a):
    """``numpy`` or ``cupy``, by the array's kind."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    import numpy

    return numpy


def activate(xp, activation, z):
    if activation in (None, "identity"):
        return z
    if activation == "relu":
        return xp.maximum(z, 0)
    if activation == "sigmoid":
        return 1 / (1 + xp.exp(-z))
    if activation == "tanh":
        return xp.tanh(z)
    raise ValueError(f"unknown activation {activation!r}")


def activation_grad_from_output(xp, activation, y):
    """f'(z) written through y = f(z)."""
    if activation in (None, "identity"):
        return xp.ones_like(y)
    if activation == "relu":
        return (y > 0).astype(y.dtype)
    if activation == "sigmoid":
        return y * (1 - y)
    if activation == "tanh":
        return 1 - y * y
    raise ValueError(f"unknown activation {activation!r}")


def dense_forward(x, W, b, activation, out, num_threads=1):
    xp = array_namespace(x)
    z = x @ W.T
    if b is not None:
        z = z + b
    out[...] = activate(xp, activation, z)
    return out


def dense_backward(grad_out, x, W, y, activation, needs, num_threads=1):
    xp = array_namespace(x)
    g = grad_out if y is None else grad_out * activation_grad_from_output(xp, activation, y)
    gx = g @ W if "x" in needs else None
    gW = g.T @ x if "W" in needs else None
    gb = g.sum(axis=0) if "b" in needs else None
    return gx, gW, gb
