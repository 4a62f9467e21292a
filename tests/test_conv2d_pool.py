"""recfast.max_pool2d / max_pool2d_backward (issue #3): every live backend against the reference
and PyTorch, the index convention, ties and NaN, overlapping windows, bad input."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import recfast
from recfast.testing import TORCH_MISSING, live_backends

BACKENDS = live_backends("max_pool2d_forward")


def images(n, h, w, c, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal((n, h, w, c)).astype(dtype)


def check(x, size, stride, padding, dtype):
    ref_out, ref_idx = recfast.max_pool2d(x, size, stride, padding, backend="reference")
    g = np.random.default_rng(1).standard_normal(ref_out.shape).astype(dtype)
    ref_gx = recfast.max_pool2d_backward(g, ref_idx, x.shape, backend="reference")
    for backend in BACKENDS:
        out, idx = recfast.max_pool2d(x, size, stride, padding, backend=backend)
        assert out.dtype == dtype and idx.dtype == np.int64
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_array_equal(idx, ref_idx)
        gx = recfast.max_pool2d_backward(g, idx, x.shape, backend=backend)
        assert gx.dtype == dtype
        np.testing.assert_allclose(gx, ref_gx, rtol=1e-6 if dtype == np.float32 else 1e-13)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    c=st.integers(1, 5),
    size=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    f32=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_shapes(n, h, w, c, size, stride, padding, f32, seed):
    assume(2 * padding[0] <= size[0] and 2 * padding[1] <= size[1])
    assume(h + 2 * padding[0] >= size[0] and w + 2 * padding[1] >= size[1])
    dtype = np.float32 if f32 else np.float64
    check(images(n, h, w, c, dtype, seed), size, stride, padding, dtype)


def test_large_and_overlapping():
    check(images(3, 30, 26, 40, np.float32, 2), 3, 2, 1, np.float32)  # overlapping windows
    # above the kernels' parallel threshold (2**18 outputs): by image, and by channel block
    check(images(8, 64, 64, 32, np.float32, 3), 2, None, 0, np.float32)
    check(images(1, 128, 128, 64, np.float32, 4), 2, None, 0, np.float32)


def test_hand_computed_and_index_convention():
    x = np.array([[1.0, 5.0, 2.0], [7.0, 3.0, 9.0], [4.0, 8.0, 6.0]]).reshape(1, 3, 3, 1)
    for backend in BACKENDS:
        out, idx = recfast.max_pool2d(x, 2, 1, backend=backend)
        np.testing.assert_array_equal(out[0, :, :, 0], [[7, 9], [8, 9]])
        np.testing.assert_array_equal(idx[0, :, :, 0], [[3, 5], [7, 5]])  # ih * W + iw
        gx = recfast.max_pool2d_backward(np.ones_like(out), idx, x.shape, backend=backend)
        # 9 is the maximum of two overlapping windows: its gradient adds up
        np.testing.assert_array_equal(gx[0, :, :, 0], [[0, 0, 0], [1, 0, 2], [0, 1, 0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_nan_and_padding(backend):
    x = np.zeros((1, 2, 2, 2))
    x[0, 1, 0, 1] = np.nan
    x[0, 1, 1, 1] = np.nan
    out, idx = recfast.max_pool2d(x, 2, backend=backend)
    assert out[0, 0, 0, 0] == 0 and idx[0, 0, 0, 0] == 0  # tie: the first in window order
    assert np.isnan(out[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 2  # the first NaN
    neg = -np.ones((1, 3, 3, 1))
    out, idx = recfast.max_pool2d(neg, 3, 3, 1, backend=backend)  # padding is never the max
    assert out.shape == (1, 1, 1, 1) and out[0, 0, 0, 0] == -1 and idx[0, 0, 0, 0] == 0
    inf = np.full((1, 2, 2, 1), -np.inf)
    out, idx = recfast.max_pool2d(inf, 2, 1, 1, backend=backend)
    assert (out == -np.inf).all() and (idx >= 0).all() and (idx < 4).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cfg", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0))])
def test_against_torch(backend, cfg):
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    size, stride, padding = cfg
    x = images(2, 9, 8, 3, seed=4)
    xn = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    out, idx = recfast.max_pool2d(xn, size, stride, padding, layout="NCHW", backend=backend)
    tx = torch.tensor(xn, requires_grad=True)
    tout, tidx = torch.nn.functional.max_pool2d(
        tx, size, stride if stride is not None else size, padding, return_indices=True
    )
    np.testing.assert_array_equal(out, tout.detach().numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())  # the same index convention as PyTorch
    g = np.random.default_rng(5).standard_normal(out.shape)
    tout.backward(torch.tensor(g))
    gx = recfast.max_pool2d_backward(g, idx, xn.shape, layout="NCHW", backend=backend)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-13)


def test_single_image():
    x = images(1, 6, 6, 2, seed=6)
    out, idx = recfast.max_pool2d(x[0])
    assert out.shape == (3, 3, 2) and idx.shape == (3, 3, 2)
    gx = recfast.max_pool2d_backward(np.ones_like(out), idx, x[0].shape)
    assert gx.shape == (6, 6, 2) and gx.sum() == 18


BAD = [
    ("rank", lambda x: (x[0, 0],), {}, ValueError, "x must be 4-D"),
    ("int", lambda x: (x.astype(int),), {}, TypeError, "dtype"),
    ("size-0", lambda x: (x,), {"size": 0}, ValueError, "size"),
    ("stride-0", lambda x: (x,), {"stride": 0}, ValueError, "stride"),
    ("padding-big", lambda x: (x,), {"size": 2, "padding": 2}, ValueError, "half the window"),
    ("window-big", lambda x: (x,), {"size": 9}, ValueError, "larger than the padded input"),
    ("layout", lambda x: (x,), {"layout": "HWC"}, ValueError, "layout"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input(backend, case):
    _, change, kw, exc, frag = case
    with pytest.raises(exc, match=frag):
        recfast.max_pool2d(*change(images(1, 4, 4, 2)), backend=backend, **kw)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_backward_input(backend):
    x = images(2, 4, 4, 3)
    out, idx = recfast.max_pool2d(x)
    g = np.ones_like(out)
    bad = idx.copy()
    bad[0, 0, 0, 0] = 16
    with pytest.raises(ValueError, match="indices has entry 16 outside"):
        recfast.max_pool2d_backward(g, bad, x.shape, backend=backend)
    bad[0, 0, 0, 0] = -1
    with pytest.raises(ValueError, match="indices"):
        recfast.max_pool2d_backward(g, bad, x.shape, backend=backend)
    with pytest.raises(TypeError, match="indices"):
        recfast.max_pool2d_backward(g, idx.astype(float), x.shape, backend=backend)
    with pytest.raises(ValueError, match="indices must have shape"):
        recfast.max_pool2d_backward(g, idx[:, :1], x.shape, backend=backend)
    with pytest.raises(ValueError, match="x_shape"):
        recfast.max_pool2d_backward(g, idx, (2, 4, 4, 5), backend=backend)
    with pytest.raises(ValueError, match="x_shape"):
        recfast.max_pool2d_backward(g, idx, (4, 4), backend=backend)
