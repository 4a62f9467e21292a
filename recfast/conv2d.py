"""2-D convolution and max-pooling for image encoders, forward and backward, NHWC.

Conventions
-----------
- Images are ``(N, H, W, C)`` (or one ``(H, W, C)`` image), kernels ``(KH, KW, C, C_out)``,
  outputs ``(N, OH, OW, C_out)``: the channels are the contiguous axis, which is what the ``cpu``
  kernels vectorize over. ``layout="NCHW"`` takes PyTorch's ``(N, C, H, W)`` images and
  ``(C_out, C, KH, KW)`` kernels instead and returns NCHW; it costs one transposed copy of each
  array on the way in and of the result on the way out.
- ``conv2d`` is cross-correlation (as in PyTorch):
  ``y[n, i, j, :] = f(b + sum_{a, b'} xpad[n, i*sh + a*dh, j*sw + b'*dw, :] @ w[a, b'])``.
- ``padding``: ``"valid"`` (none), ``"same"`` (output ``ceil(H / stride)``; with stride 1 that is
  H, the extra row/column of an even total goes to the bottom/right, as in PyTorch and
  TensorFlow), ``"full"`` (``dilation * (K - 1)`` on each side: H + KH - 1 at dilation 1), an int,
  an ``(ph, pw)`` pair, or ``((top, bottom), (left, right))``. Padding is zeros.
- Backward with an activation: pass the same ``activation=`` and the forward result as
  ``output=``; the derivative is computed from the output (relu, sigmoid and tanh all allow it),
  so the pre-activation need not be kept. Same convention as :func:`recfast.dense_backward`.
- ``max_pool2d`` returns ``(out, indices)``: ``indices`` (int64, same shape as ``out``) holds for
  each output element the flat index ``ih * W + iw`` of its maximum within that image's and
  channel's ``(H, W)`` plane (PyTorch's ``return_indices`` convention). Ties go to the first
  maximum in row-major window order; a NaN in a window is its maximum (the first NaN wins);
  padding (``-inf``) is never selected. ``max_pool2d_backward`` adds each gradient to its argmax,
  so overlapping windows (stride < size) accumulate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import select
from recfast._kernel_args import Conv2dArgs, Conv2dBackwardArgs, Pool2dArgs, Pool2dBackwardArgs
from recfast._kinds import NUMPY, Array
from recfast._threads import resolve_num_threads

__all__ = ["conv2d", "conv2d_backward", "conv2d_output_shape", "max_pool2d", "max_pool2d_backward"]


def _permute(xp: Any, a: Any, axes: tuple[int, ...]) -> Any:
    return a.transpose(axes) if xp is np else xp.permute_dims(a, axes)


def _from_nchw(xp: Any, a: Any, name: str) -> Any:
    if a is None:
        return None
    if not check._is_array(a):
        raise TypeError(f"{name} must be an array, got {type(a).__name__}")
    if a.ndim == 4:
        return _permute(xp, a, (0, 2, 3, 1))
    if a.ndim == 3:
        return _permute(xp, a, (1, 2, 0))
    raise ValueError(
        f"{name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {tuple(a.shape)}"
    )


def _to_nchw(xp: Any, a: Any) -> Any:
    axes = (0, 3, 1, 2) if a.ndim == 4 else (2, 0, 1)
    return check.contiguous(xp, _permute(xp, a, axes))


def _weights_from_torch(xp: Any, w: Any) -> Any:
    if not check._is_array(w) or w.ndim != 4:
        shape = tuple(w.shape) if check._is_array(w) else type(w).__name__
        raise ValueError(f"w must be 4-D (C_out, C, KH, KW) with layout='NCHW', got {shape}")
    return _permute(xp, w, (2, 3, 1, 0))


def _prepare(x, w, bias, stride, padding, dilation, layout, xp):
    layout = check.layout("layout", layout)
    if layout == "NCHW":
        x, w = _from_nchw(xp, x, "x"), _weights_from_torch(xp, w)
    x4, w, bias, single = check.conv2d_arrays(x, w, bias, xp)
    geom = check.conv2d_geometry(tuple(x4.shape), tuple(w.shape), stride, padding, dilation)
    return x4, w, bias, single, geom, layout


def conv2d_output_shape(
    x_shape: Sequence[int],
    w_shape: Sequence[int],
    *,
    stride: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
) -> tuple[int, int, int, int]:
    """``(N, OH, OW, C_out)`` of :func:`conv2d` for an NHWC ``x_shape`` and a ``w_shape``."""
    g = check.conv2d_geometry(tuple(x_shape), tuple(w_shape), stride, padding, dilation)
    return (x_shape[0], g.oh, g.ow, w_shape[3])


def conv2d(
    x: Array,
    w: Array,
    bias: Array | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
    layout: str = "NHWC",
    out: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> Array:
    """``f(conv(x, w) + bias)``: 2-D cross-correlation with a fused bias and activation.

    Parameters
    ----------
    x : (N, H, W, C) or (H, W, C), float32 or float64
    w : (KH, KW, C, C_out), same dtype as x (never upcast silently)
    bias : (C_out,), optional
    stride, dilation : int or (vertical, horizontal) pair, >= 1
    padding : "valid", "same", "full", int, (ph, pw) or ((top, bottom), (left, right))
    activation : None, "identity", "relu", "sigmoid" or "tanh", applied in the kernel's epilogue
    layout : "NHWC" (default) or "NCHW" (x (N, C, H, W), w (C_out, C, KH, KW), out NCHW)
    out : C-contiguous output of the result's shape and dtype, optional. Pass one in a loop over
        batches of a fixed shape: a fresh result of tens of MB is new memory that the OS faults in
        and zeroes on first write, every call (batch 128 of 32x32x64 float32, 32 MiB, 2 cores:
        5-45 ms a call with fresh outputs, 3.3 ms into a reused ``out``, whose first call is 6 ms).

    Returns
    -------
    (N, OH, OW, C_out) (or (OH, OW, C_out) for a 3-D x); NCHW shapes with ``layout="NCHW"``.
    """
    kind, (x, w, bias, out) = kinds.inputs((x, w, bias, out), ("x", "w", "bias", "out"))
    _, kernel = select("conv2d_forward", backend, kind)
    xp = kind.xp
    act = check.activation("activation", activation)
    x4, w, bias, single, geom, layout = _prepare(x, w, bias, stride, padding, dilation, layout, xp)
    shape = (x4.shape[0], geom.oh, geom.ow, w.shape[3])
    check.allocation("the output", shape, check.itemsize(x4.dtype), f"padding={padding!r}")
    user_shape = shape[1:] if single else shape
    if layout == "NCHW":
        nchw = (shape[0], shape[3], shape[1], shape[2])
        user_out = check.out_array("out", out, nchw[1:] if single else nchw, x4.dtype, xp)
        res = xp.empty(shape, dtype=x4.dtype)
    else:
        user_out = check.out_array("out", out, user_shape, x4.dtype, xp)
        res = xp.reshape(user_out, shape)  # a view: the kernel writes into user_out
    if out is not None:
        check.no_overlap(xp, {"out": user_out}, {"x": x4, "w": w, "bias": bias})
    nt = resolve_num_threads(num_threads)
    if shape[0]:
        kernel(Conv2dArgs(x4, w, bias, geom, act, res, nt))
    if layout == "NCHW":
        t = _permute(xp, res, (0, 3, 1, 2))
        user_out[...] = t[0, ...] if single else t
    return user_out if kind is NUMPY else kind.wrap(user_out)


def conv2d_backward(
    grad_out: Array,
    x: Array,
    w: Array,
    *,
    stride: int | tuple[int, int] = 1,
    padding: str | int | tuple = "valid",
    dilation: int | tuple[int, int] = 1,
    activation: str | None = None,
    output: Array | None = None,
    needs: Sequence[str] = ("x", "w", "bias"),
    layout: str = "NHWC",
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Array | None, Array | None, Array | None]:
    """Gradients of a loss through :func:`conv2d` (same ``stride``/``padding``/``dilation``).

    Parameters
    ----------
    grad_out : (N, OH, OW, C_out) dL/dy (y = conv2d's result)
    x : (N, H, W, C), w : (KH, KW, C, C_out): the forward inputs
    activation, output :
        The forward ``activation`` and its result ``y``; ``output`` is required with a
        non-identity activation (f' is computed from y: relu 1[y > 0], sigmoid y (1 - y),
        tanh 1 - y^2). Without them ``grad_out`` is taken as the pre-activation gradient.
    needs : which of "x", "w", "bias" to compute (the others come back as None)

    Returns
    -------
    (grad_x like x, grad_w like w, grad_bias (C_out,)), each None unless in ``needs``.
    """
    kind, (grad_out, x, w, output) = kinds.inputs(
        (grad_out, x, w, output), ("grad_out", "x", "w", "output")
    )
    _, kernel = select("conv2d_backward", backend, kind)
    xp = kind.xp
    act = check.activation("activation", activation)
    needs = tuple(needs)
    bad = set(needs) - {"x", "w", "bias"}
    if bad:
        raise ValueError(f"needs may hold 'x', 'w', 'bias'; got {sorted(bad)}")
    x4, w, _, single, geom, layout = _prepare(x, w, None, stride, padding, dilation, layout, xp)
    shape = (x4.shape[0], geom.oh, geom.ow, w.shape[3])

    def as_nhwc(name, a):
        if layout == "NCHW":
            a = _from_nchw(xp, a, name)
        a4, s = check.image_array(name, a, xp, dtype=x4.dtype)
        if s != single or tuple(a4.shape) != shape:
            want = shape[1:] if single else shape
            got = tuple(a4.shape[1:]) if s else tuple(a4.shape)
            raise ValueError(
                f"{name} must have the forward output's shape {want} (NHWC), got {got}"
            )
        return a4

    g = as_nhwc("grad_out", grad_out)
    y = None
    if act is not None:
        if output is None:
            raise ValueError(f"output (the forward result) is required with activation={act!r}")
        y = as_nhwc("output", output)
    nt = resolve_num_threads(num_threads)
    if shape[0] == 0:
        gx = xp.zeros(x4.shape, dtype=x4.dtype) if "x" in needs else None
        gw = xp.zeros(w.shape, dtype=w.dtype) if "w" in needs else None
        gb = xp.zeros((w.shape[3],), dtype=w.dtype) if "bias" in needs else None
    else:
        gx, gw, gb = kernel(Conv2dBackwardArgs(g, x4, w, y, act, geom, needs, nt))
    if gx is not None:
        gx = gx[0, ...] if single else gx
        if layout == "NCHW":
            gx = _to_nchw(xp, gx)
    if gw is not None and layout == "NCHW":
        gw = check.contiguous(xp, _permute(xp, gw, (3, 2, 0, 1)))
    if kind is not NUMPY:
        return kind.wrap(gx), kind.wrap(gw), kind.wrap(gb)
    return gx, gw, gb


def max_pool2d(
    x: Array,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    *,
    layout: str = "NHWC",
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Array, Array]:
    """Max-pooling over ``size`` windows (``stride`` defaults to ``size``; ``padding`` at most half
    the window, implicit ``-inf``). Output size ``floor((H + 2 p - size) / stride) + 1``.

    Parameters
    ----------
    x : (N, H, W, C) or (H, W, C) float32/float64 ((N, C, H, W) with ``layout="NCHW"``)

    Returns
    -------
    out : (N, OH, OW, C), same dtype
    indices : (N, OH, OW, C) int64, flat index ``ih * W + iw`` of each maximum in its (H, W) plane
    """
    kind, (x,) = kinds.inputs((x,), ("x",))
    _, kernel = select("max_pool2d_forward", backend, kind)
    xp = kind.xp
    layout = check.layout("layout", layout)
    if layout == "NCHW":
        x = _from_nchw(xp, x, "x")
    x4, single = check.image_array("x", x, xp)
    if x4.shape[1] < 1 or x4.shape[2] < 1:
        # Every window of an empty image lies wholly in the padding: no maximum to take.
        raise ValueError(f"x must have a non-empty image (H, W >= 1), got shape {tuple(x.shape)}")
    geom = check.pool2d_geometry(tuple(x4.shape), size, stride, padding)
    shape = (x4.shape[0], geom.oh, geom.ow, x4.shape[3])
    out = xp.empty(shape, dtype=x4.dtype)
    idx = xp.empty(shape, dtype=xp.int64)
    nt = resolve_num_threads(num_threads)
    if all(shape):
        kernel(Pool2dArgs(x4, geom, out, idx, nt))
    if single:
        out, idx = out[0, ...], idx[0, ...]
    if layout == "NCHW":
        out, idx = _to_nchw(xp, out), _to_nchw(xp, idx)
    if kind is not NUMPY:
        return kind.wrap(out), kind.wrap(idx)
    return out, idx


def max_pool2d_backward(
    grad_out: Array,
    indices: Array,
    x_shape: Sequence[int],
    *,
    layout: str = "NHWC",
    num_threads: int | None = None,
    backend: str | None = None,
) -> Array:
    """Gradient of :func:`max_pool2d`: each ``grad_out`` element is added to ``grad_x`` at its
    argmax ``indices`` (overlapping windows accumulate).

    Parameters
    ----------
    grad_out : (N, OH, OW, C) (or 3-D, or NCHW with ``layout="NCHW"``)
    indices : the ``indices`` that :func:`max_pool2d` returned, same shape
    x_shape : the forward input's shape, in the same layout

    Returns
    -------
    grad_x of shape ``x_shape``, same dtype as grad_out.
    """
    kind, (grad_out, indices) = kinds.inputs((grad_out, indices), ("grad_out", "indices"))
    _, kernel = select("max_pool2d_backward", backend, kind)
    xp = kind.xp
    layout = check.layout("layout", layout)
    x_shape = check.shape_tuple("x_shape", x_shape)
    if len(x_shape) not in (3, 4):
        raise ValueError(f"x_shape must have 3 or 4 entries, got {x_shape}")
    if layout == "NCHW":
        grad_out, indices = _from_nchw(xp, grad_out, "grad_out"), _from_nchw(xp, indices, "indices")
        x_shape = x_shape[:-3] + (x_shape[-2], x_shape[-1], x_shape[-3])
    g, single = check.image_array("grad_out", grad_out, xp)
    xs = (1, *x_shape) if len(x_shape) == 3 else x_shape
    if single != (len(x_shape) == 3) or g.shape[0] != xs[0] or g.shape[3] != xs[3]:
        got = tuple(g.shape[1:]) if single else tuple(g.shape)
        raise ValueError(
            f"grad_out {got} does not match x_shape {x_shape}: same rank, batch and channel "
            "count expected"
        )
    if check._is_array(indices) and single:
        indices = indices[None, ...]
    idx = check.pool_indices("indices", indices, tuple(g.shape), xs[1] * xs[2], xp)
    nt = resolve_num_threads(num_threads)
    gx = xp.empty(xs, dtype=g.dtype)
    kernel(Pool2dBackwardArgs(g, idx, gx, nt))
    if single:
        gx = gx[0, ...]
    if layout == "NCHW":
        gx = _to_nchw(xp, gx)
    return gx if kind is NUMPY else kind.wrap(gx)
