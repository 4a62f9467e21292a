"""recfast.dense / dense_backward: every live backend against the reference, gradients against
finite differences (and PyTorch when installed), bad input. A first piece of issue #4."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recfast
from recfast.testing import TOLERANCE, TORCH_MISSING, live_backends

BACKENDS = live_backends("dense_forward")
ACTS = [None, "relu", "sigmoid", "tanh"]


def problem(n, d, h, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, d)).astype(dtype),
        rng.standard_normal((h, d)).astype(dtype),
        rng.standard_normal(h).astype(dtype),
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_backward_match_reference(backend, activation, dtype):
    x, W, b = problem(70, 33, 41, dtype, seed=1)
    out = np.full((70, 41), np.nan, dtype)  # poisoned: an unwritten element fails
    y = recfast.dense(x, W, b, activation=activation, out=out, backend=backend)
    assert y is out
    ref = recfast.dense(x, W, b, activation=activation, backend="reference")
    tol = TOLERANCE[np.dtype(dtype)] * 100
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    got = recfast.dense_backward(g, x, W, output=y, activation=activation, backend=backend)
    exp = recfast.dense_backward(g, x, W, output=ref, activation=activation, backend="reference")
    for a, e in zip(got, exp):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, e, rtol=tol, atol=tol * 10)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 40),
    d=st.integers(1, 40),
    h=st.integers(1, 40),
    act=st.sampled_from(ACTS),
    bias=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_random_shapes(n, d, h, act, bias, seed):
    x, W, b = problem(n, d, h, np.float64, seed)
    b = b if bias else None
    ref = recfast.dense(x, W, b, activation=act, backend="reference")
    for backend in BACKENDS:
        y = recfast.dense(x, W, b, activation=act, backend=backend)
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)


def test_reference_hand_computed():
    y = recfast.dense(
        np.array([[1.0, 2.0]]),
        np.array([[3.0, -1.0], [0.5, 0.5]]),
        np.array([0.5, -2.0]),
        activation="relu",
        backend="reference",
    )
    np.testing.assert_array_equal(y, [[1.5, 0.0]])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ACTS)
def test_gradients_against_finite_differences(backend, activation):
    x, W, b = problem(4, 5, 3, np.float64, seed=3)
    x += 0.05 * np.sign(x)  # keep relu inputs away from its kink
    g = np.random.default_rng(4).standard_normal((4, 3))

    def loss(x_, W_, b_):
        return float(
            (recfast.dense(x_, W_, b_, activation=activation, backend="reference") * g).sum()
        )

    y = recfast.dense(x, W, b, activation=activation, backend=backend)
    gx, gW, gb = recfast.dense_backward(g, x, W, output=y, activation=activation, backend=backend)
    eps = 1e-6
    for arr, grad in ((x, gx), (W, gW), (b, gb)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss(x, W, b)
            arr[idx] = old - eps
            down = loss(x, W, b)
            arr[idx] = old
            num[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


def test_against_torch_linear():
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    x, W, b = problem(8, 6, 5, np.float64, seed=5)
    tx = torch.tensor(x, requires_grad=True)
    lin = torch.nn.Linear(6, 5, dtype=torch.float64)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(W))
        lin.bias.copy_(torch.tensor(b))
    ty = torch.tanh(lin(tx))
    g = np.random.default_rng(6).standard_normal((8, 5))
    ty.backward(torch.tensor(g))
    y = recfast.dense(x, W, b, activation="tanh")
    gx, gW, gb = recfast.dense_backward(g, x, W, output=y, activation="tanh")
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gW, lin.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(gb, lin.bias.grad.numpy(), rtol=1e-10)


def test_vector_input_and_needs():
    x, W, b = problem(1, 4, 3, np.float64)
    y = recfast.dense(x[0], W, b)
    assert y.shape == (3,)
    gx, gW, gb = recfast.dense_backward(np.ones(3), x[0], W, needs=("x",))
    assert gx.shape == (4,) and gW is None and gb is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_passes_through(backend):
    x, W, b = problem(3, 4, 2, np.float64)
    x[1, 2] = np.nan
    y = recfast.dense(x, W, b, activation="tanh", backend=backend)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


BAD = [
    ("int-x", lambda x, W, b: (x.astype(np.int64), W, b), {}, TypeError, "x"),
    ("mixed-dtype", lambda x, W, b: (x.astype(np.float32), W, b), {}, TypeError, "W"),
    ("feature-mismatch", lambda x, W, b: (x[:, :3], W, b), {}, ValueError, "features"),
    ("bias-shape", lambda x, W, b: (x, W, b[:2]), {}, ValueError, "b must have shape"),
    ("rank-3", lambda x, W, b: (x[None], W, b), {}, ValueError, "x"),
    ("activation", lambda x, W, b: (x, W, b), {"activation": "gelu"}, ValueError, "activation"),
    ("out-shape", lambda x, W, b: (x, W, b), {"out": np.empty((2, 2))}, ValueError, "out"),
    (
        "out-dtype",
        lambda x, W, b: (x, W, b),
        {"out": np.empty((5, 3), np.float32)},
        TypeError,
        "out",
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input(backend, case):
    _, change, kw, exc, frag = case
    x, W, b = problem(5, 4, 3, np.float64)
    with pytest.raises(exc, match=frag):
        recfast.dense(*change(x, W, b), backend=backend, **kw)


def test_backward_needs_output_with_activation():
    x, W, _ = problem(5, 4, 3, np.float64)
    with pytest.raises(ValueError, match="output"):
        recfast.dense_backward(np.ones((5, 3)), x, W, activation="relu")
    with pytest.raises(ValueError, match="needs"):
        recfast.dense_backward(np.ones((5, 3)), x, W, needs=("q",))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ACTS)
def test_nan_stays_nan_through_every_activation(backend, activation):
    x, W, b = problem(3, 4, 5, np.float64, seed=7)
    x[1, 2] = np.nan
    y = recfast.dense(x, W, b, activation=activation, backend=backend)
    assert np.isnan(y[1]).all() and not np.isnan(y[[0, 2]]).any()
