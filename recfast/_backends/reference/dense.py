"""Reference dense layer ``y = f(x W^T + b)`` (array API)."""

from __future__ import annotations

from recfast._backends.reference._xp import activate, activation_grad_from_output, namespace
from recfast._kernel_args import DenseArgs, DenseBackwardArgs


def dense_forward(a: DenseArgs):
    xp = namespace(a.x)
    z = a.x @ a.W.T
    if a.b is not None:
        z = z + a.b
    a.out[...] = activate(xp, a.activation, z)
    return a.out


def dense_backward(a: DenseBackwardArgs):
    xp = namespace(a.x)
    g = a.grad_out
    if a.output is not None:
        g = g * activation_grad_from_output(xp, a.activation, a.output)
    gx = g @ a.W if "x" in a.needs else None
    gW = g.T @ a.x if "W" in a.needs else None
    gb = xp.sum(g, axis=0) if "b" in a.needs else None
    return gx, gW, gb
