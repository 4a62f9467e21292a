"""recfast.conv2d / conv2d_backward (issue #3): every live backend against the reference on random
shapes, gradients against finite differences and PyTorch autograd, layouts, threads, bad input."""

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import recfast
from recfast.testing import TORCH_MISSING, live_backends

BACKENDS = live_backends("conv2d_forward")
FAST = [b for b in BACKENDS if b != "reference"]
ACTS = [None, "relu", "sigmoid", "tanh"]
# Max-abs error relative to the largest expected magnitude (sums of up to a few hundred products).
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def close(actual, expected, dtype, what=""):
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}"
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert np.isfinite(a).all(), f"{what}: non-finite entries (unwritten output?)"
    scale = max(1.0, float(np.abs(e).max(initial=0.0)))
    err = float(np.abs(a - e).max(initial=0.0)) / scale
    assert err <= TOL[np.dtype(dtype)], f"{what}: relative error {err:.3g}"


def problem(n, h, w, c, co, kh, kw, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n, h, w, c)).astype(dtype),
        (rng.standard_normal((kh, kw, c, co)) / np.sqrt(kh * kw * c)).astype(dtype),
        rng.standard_normal(co).astype(dtype),
    )


def check_all_backends(x, w, b, act, dtype, backends=BACKENDS, **geom):
    """Forward (into a NaN-poisoned out) and backward of every backend against the reference."""
    ref = recfast.conv2d(x, w, b, activation=act, backend="reference", **geom)
    g = np.random.default_rng(99).standard_normal(ref.shape).astype(dtype)
    kw = dict(activation=act, output=ref) if act else {}
    ref_grads = recfast.conv2d_backward(g, x, w, backend="reference", **kw, **geom)
    for backend in backends:
        out = np.full(ref.shape, np.nan, dtype)
        y = recfast.conv2d(x, w, b, activation=act, out=out, backend=backend, **geom)
        assert y is out
        close(y, ref, dtype, f"{backend} forward")
        kw = dict(activation=act, output=y) if act else {}
        grads = recfast.conv2d_backward(g, x, w, backend=backend, **kw, **geom)
        for name, a, e in zip(("grad_x", "grad_w", "grad_bias"), grads, ref_grads):
            close(a, e, dtype, f"{backend} {name}")


# (N, H, W, C, C_out, KH, KW, geometry): 1x1 (the im2col-free path), kernel as large as the input,
# H != W, odd sizes, strides, dilations, each padding form, many chunks per image (C * K large),
# C_out around the vector widths (1, 7, 8, 9, 17, 33).
CASES = [
    (2, 7, 9, 3, 5, 3, 3, dict(padding="same")),
    (3, 8, 6, 2, 4, 3, 2, dict(padding="full", stride=2, dilation=2)),
    (2, 5, 7, 4, 9, 1, 1, dict()),
    (2, 5, 7, 4, 17, 1, 1, dict(stride=2)),
    (3, 6, 5, 2, 3, 6, 5, dict(padding="valid")),
    (1, 9, 8, 3, 8, 2, 3, dict(stride=(2, 1), dilation=(1, 2), padding=((1, 0), (2, 3)))),
    (1, 11, 13, 1, 33, 3, 3, dict(padding="same")),
    (2, 20, 20, 60, 7, 3, 3, dict(padding=1)),
    (5, 4, 4, 1, 1, 2, 2, dict(padding=(1, 0))),
    (1, 6, 6, 2, 16, 4, 4, dict(padding="same")),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[str(c[:7]) for c in CASES])
def test_match_reference(case, dtype):
    *dims, geom = case
    x, w, b = problem(*dims, dtype=dtype, seed=sum(dims))
    check_all_backends(x, w, b, "tanh", dtype, **geom)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_and_no_bias(act, dtype):
    x, w, b = problem(3, 6, 7, 3, 10, 3, 3, dtype=dtype, seed=4)
    check_all_backends(x, w, b, act, dtype, padding="same")
    check_all_backends(x, w, None, act, dtype, padding="valid")


PADS = st.one_of(
    st.sampled_from(["valid", "same", "full"]),
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
        st.tuples(st.integers(0, 2), st.integers(0, 2)),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    n=st.integers(1, 3),
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    c=st.integers(1, 4),
    co=st.integers(1, 10),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=PADS,
    act=st.sampled_from(ACTS),
    bias=st.booleans(),
    f32=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_shapes(n, h, w, c, co, kh, kw, stride, dilation, padding, act, bias, f32, seed):
    dtype = np.float32 if f32 else np.float64
    try:
        recfast.conv2d_output_shape(
            (n, h, w, c), (kh, kw, c, co), stride=stride, padding=padding, dilation=dilation
        )
    except ValueError:
        assume(False)
    x, wt, b = problem(n, h, w, c, co, kh, kw, dtype=dtype, seed=seed)
    check_all_backends(
        x, wt, b if bias else None, act, dtype, stride=stride, padding=padding, dilation=dilation
    )


def test_reference_hand_computed():
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)  # x[i, j] - x[i+1, j+1]
    y = recfast.conv2d(x, w, np.array([0.5]), backend="reference")
    np.testing.assert_array_equal(y[0, :, :, 0], [[-3.5, -3.5], [-3.5, -3.5]])
    assert recfast.conv2d(x, w, padding="same").shape == (1, 3, 3, 1)
    yf = recfast.conv2d(x, w, padding="full", backend="reference")
    assert yf.shape == (1, 4, 4, 1)  # full padding: H' = H + KH - 1
    assert yf[0, 0, 0, 0] == -0.0 - x[0, 0, 0, 0] and yf[0, 3, 3, 0] == x[0, 2, 2, 0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", ACTS)
def test_gradients_against_finite_differences(backend, act):
    x, w, b = problem(2, 5, 4, 2, 3, 3, 2, seed=7)
    geom = dict(stride=(1, 2), padding="same", dilation=(2, 1))
    g = np.random.default_rng(8).standard_normal(
        recfast.conv2d_output_shape(x.shape, w.shape, **geom)
    )

    def loss():
        y = recfast.conv2d(x, w, b, activation=act, backend="reference", **geom)
        return float((y * g).sum())

    y = recfast.conv2d(x, w, b, activation=act, backend=backend, **geom)
    kw = dict(activation=act, output=y) if act else {}
    grads = recfast.conv2d_backward(g, x, w, backend=backend, **kw, **geom)
    eps = 1e-6
    for arr, grad in zip((x, w, b), grads):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            up = loss()
            arr[idx] = old - eps
            down = loss()
            arr[idx] = old
            num[idx] = (up - down) / (2 * eps)
        if act == "relu":  # a tap may cross relu's kink: compare where it is smooth
            np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-5)
        else:
            np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


GEOMS = [
    dict(padding="same"),
    dict(padding="valid", stride=2),
    dict(padding=((1, 2), (0, 1)), dilation=2),
    dict(padding=1, stride=(2, 3), dilation=(1, 2)),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("geom", GEOMS, ids=range(len(GEOMS)))
def test_against_torch_autograd(backend, geom):
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    F = torch.nn.functional
    x, w, b = problem(3, 9, 8, 4, 6, 3, 3, seed=11)
    y = recfast.conv2d(x, w, b, activation="sigmoid", backend=backend, **geom)
    g = np.random.default_rng(12).standard_normal(y.shape)
    grads = recfast.conv2d_backward(
        g, x, w, activation="sigmoid", output=y, backend=backend, **geom
    )

    tx = torch.tensor(x).permute(0, 3, 1, 2).requires_grad_(True)
    tw = torch.tensor(w).permute(3, 2, 0, 1).requires_grad_(True)
    tb = torch.tensor(b, requires_grad=True)
    pad = geom.get("padding", "valid")
    if isinstance(pad, tuple):  # ((top, bottom), (left, right)): pad explicitly
        (t, bo), (le, r) = pad
        inp, pad = F.pad(tx, (le, r, t, bo)), 0
    else:
        inp = tx
    ty = torch.sigmoid(
        F.conv2d(
            inp, tw, tb, stride=geom.get("stride", 1), padding=pad, dilation=geom.get("dilation", 1)
        )
    )
    ty.backward(torch.tensor(g).permute(0, 3, 1, 2))
    np.testing.assert_allclose(y, ty.detach().permute(0, 2, 3, 1).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[0], tx.grad.permute(0, 2, 3, 1).numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads[1], tw.grad.permute(2, 3, 1, 0).numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(grads[2], tb.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_torch_float32_channels_last():
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    x, w, b = problem(4, 12, 10, 3, 32, 5, 5, dtype=np.float32, seed=13)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)
    tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    ref = torch.relu(torch.nn.functional.conv2d(tx, tw, torch.from_numpy(b), padding="same"))
    for backend in FAST:
        y = recfast.conv2d(x, w, b, padding="same", activation="relu", backend=backend)
        close(y, ref.permute(0, 2, 3, 1).numpy(), np.float32, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nchw_layout(backend):
    x, w, b = problem(2, 6, 5, 3, 4, 3, 2, seed=14)
    geom = dict(padding="same", stride=(1, 2))
    ref = recfast.conv2d(x, w, b, backend="reference", **geom)
    xn, wn = x.transpose(0, 3, 1, 2), w.transpose(3, 2, 0, 1)  # PyTorch's layouts
    out = np.full((2, 4, 6, 3), np.nan)
    y = recfast.conv2d(xn, wn, b, layout="NCHW", out=out, backend=backend, **geom)
    assert y is out
    np.testing.assert_allclose(y, ref.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(15).standard_normal(ref.shape)
    exp = recfast.conv2d_backward(g, x, w, backend="reference", **geom)
    got = recfast.conv2d_backward(
        g.transpose(0, 3, 1, 2), xn, wn, layout="NCHW", backend=backend, **geom
    )
    np.testing.assert_allclose(got[0], exp[0].transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], exp[1].transpose(3, 2, 0, 1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], exp[2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_image_needs_and_empty_batch(backend):
    x, w, b = problem(1, 5, 6, 2, 3, 3, 3, seed=16)
    y = recfast.conv2d(x[0], w, b, padding="same", backend=backend)
    assert y.shape == (5, 6, 3)
    np.testing.assert_allclose(y, recfast.conv2d(x, w, b, padding="same")[0], rtol=1e-12)
    gx, gw, gb = recfast.conv2d_backward(np.ones_like(y), x[0], w, padding="same", needs=("x",))
    assert gx.shape == x[0].shape and gw is None and gb is None
    _, gw, gb = recfast.conv2d_backward(
        np.ones_like(y), x[0], w, padding="same", needs=("w", "bias"), backend=backend
    )
    assert gw.shape == w.shape and gb.shape == (3,)
    e = recfast.conv2d(x[:0], w, b, backend=backend)
    assert e.shape == (0, 3, 4, 3)
    gx, gw, gb = recfast.conv2d_backward(np.zeros(e.shape), x[:0], w, backend=backend)
    assert gx.shape == (0, 5, 6, 2) and not gw.any() and not gb.any()


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("n", [1, 2, 7])
def test_thread_counts_agree(backend, n):
    """1 thread vs several: the tiling (few images: private gradient copies; many: by image)
    changes, the result must not (beyond summation order)."""
    # large enough (> 2M multiply-adds per image) that the kernels do use several threads
    x, w, b = problem(n, 48, 40, 8, 24, 3, 3, dtype=np.float64, seed=17)
    g = np.random.default_rng(18).standard_normal((n, 48, 40, 24))
    one = recfast.conv2d(x, w, b, padding="same", num_threads=1, backend=backend)
    gone = recfast.conv2d_backward(g, x, w, padding="same", num_threads=1, backend=backend)
    for nt in (2, 3, 8):
        close(
            recfast.conv2d(x, w, b, padding="same", num_threads=nt, backend=backend),
            one,
            np.float64,
        )
        got = recfast.conv2d_backward(g, x, w, padding="same", num_threads=nt, backend=backend)
        for a, e in zip(got, gone):
            close(a, e, np.float64)


@pytest.mark.parametrize("backend", FAST)
def test_concurrent_python_threads(backend):
    x, w, b = problem(4, 10, 10, 3, 8, 3, 3, dtype=np.float32, seed=19)
    g = np.random.default_rng(20).standard_normal((4, 10, 10, 8)).astype(np.float32)
    ref = recfast.conv2d(x, w, b, padding="same", backend=backend)
    gref = recfast.conv2d_backward(g, x, w, padding="same", backend=backend)
    errors = []

    def work():
        try:
            for _ in range(20):
                np.testing.assert_array_equal(
                    recfast.conv2d(x, w, b, padding="same", num_threads=2, backend=backend), ref
                )
                got = recfast.conv2d_backward(
                    g, x, w, padding="same", num_threads=2, backend=backend
                )
                for a, e in zip(got, gref):
                    np.testing.assert_array_equal(a, e)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_passes_through(backend):
    x, w, b = problem(2, 6, 6, 2, 3, 3, 3, seed=21)
    x[1, 2, 3, 0] = np.nan
    y = recfast.conv2d(x, w, b, padding="same", activation="relu", backend=backend)
    assert np.isnan(y[1, 1:4, 2:5]).all()  # every window over the NaN, relu included
    assert np.isfinite(y[0]).all() and np.isfinite(y[1, 0]).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_inputs_untouched_and_read_only_ok(backend):
    x, w, b = problem(2, 6, 6, 2, 3, 3, 3, seed=22)
    for a in (x, w, b):
        a.flags.writeable = False
    copies = [a.copy() for a in (x, w, b)]
    y = recfast.conv2d(x, w, b, padding="same", activation="tanh", backend=backend)
    y.flags.writeable = False
    g = np.ones_like(y)
    g.flags.writeable = False
    recfast.conv2d_backward(g, x, w, padding="same", activation="tanh", output=y, backend=backend)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)
    assert (g == 1).all()


def test_non_contiguous_inputs():
    x, w, b = problem(2, 8, 8, 6, 4, 3, 3, seed=23)
    xs = x[:, ::2, :, ::2]  # strided view
    ref = recfast.conv2d(np.ascontiguousarray(xs), w[:, :, ::2], b, backend="reference")
    for backend in BACKENDS:
        y = recfast.conv2d(xs, w[:, :, ::2], b, backend=backend)
        np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    xf = np.asfortranarray(x)
    np.testing.assert_allclose(recfast.conv2d(xf, w), recfast.conv2d(x, w), rtol=1e-12)


BAD = [
    ("rank-2", lambda x, w, b: (x[0, 0], w, b), {}, ValueError, "x must be 4-D"),
    ("rank-5", lambda x, w, b: (x[None], w, b), {}, ValueError, "x must be 4-D"),
    ("w-rank", lambda x, w, b: (x, w[0], b), {}, ValueError, "w must be 4-D"),
    ("channels", lambda x, w, b: (x[..., :1], w, b), {}, ValueError, "channels"),
    ("kernel-too-large", lambda x, w, b: (x[:, :2], w, b), {}, ValueError, "kernel larger"),
    ("stride-0", lambda x, w, b: (x, w, b), {"stride": 0}, ValueError, "stride"),
    ("stride-neg", lambda x, w, b: (x, w, b), {"stride": (1, -1)}, ValueError, "stride"),
    ("dilation-0", lambda x, w, b: (x, w, b), {"dilation": 0}, ValueError, "dilation"),
    ("stride-float", lambda x, w, b: (x, w, b), {"stride": 1.5}, TypeError, "stride"),
    ("padding-str", lambda x, w, b: (x, w, b), {"padding": "half"}, ValueError, "padding"),
    ("padding-neg", lambda x, w, b: (x, w, b), {"padding": -1}, ValueError, "padding"),
    ("activation", lambda x, w, b: (x, w, b), {"activation": "gelu"}, ValueError, "activation"),
    ("int-x", lambda x, w, b: (x.astype(np.int64), w, b), {}, TypeError, "x must have dtype"),
    ("object-x", lambda x, w, b: (x.astype(object), w, b), {}, TypeError, "x must have dtype"),
    ("int-w", lambda x, w, b: (x, w.astype(np.int32), b), {}, TypeError, "w must have dtype"),
    ("mixed", lambda x, w, b: (x.astype(np.float32), w, b), {}, TypeError, "convert w"),
    ("bias-shape", lambda x, w, b: (x, w, b[:1]), {}, ValueError, "bias must have shape"),
    ("bias-dtype", lambda x, w, b: (x, w, b.astype(np.float32)), {}, TypeError, "bias"),
    ("out-shape", lambda x, w, b: (x, w, b), {"out": np.empty((2, 2))}, ValueError, "out"),
    (
        "out-dtype",
        lambda x, w, b: (x, w, b),
        {"out": np.empty((2, 3, 4, 3), np.float32)},
        TypeError,
        "out",
    ),
    ("layout", lambda x, w, b: (x, w, b), {"layout": "NWHC"}, ValueError, "layout"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_input(backend, case):
    _, change, kw, exc, frag = case
    x, w, b = problem(2, 5, 6, 2, 3, 3, 3)
    args = change(x, w, b)
    copies = [np.array(a, copy=True) for a in args]
    with pytest.raises(exc, match=frag):
        recfast.conv2d(*args, backend=backend, **kw)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)


def test_out_must_not_alias_inputs():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2))
    w = np.zeros((1, 1, 2, 2))
    before = x.copy()
    with pytest.raises(ValueError, match="share memory"):
        recfast.conv2d(x, w, out=x)
    np.testing.assert_array_equal(x, before)


def test_bad_backward_input():
    x, w, _ = problem(2, 5, 6, 2, 3, 3, 3)
    g = np.ones((2, 3, 4, 3))
    with pytest.raises(ValueError, match="output"):
        recfast.conv2d_backward(g, x, w, activation="relu")
    with pytest.raises(ValueError, match="needs"):
        recfast.conv2d_backward(g, x, w, needs=("q",))
    with pytest.raises(ValueError, match="grad_out must have the forward output's shape"):
        recfast.conv2d_backward(g, x, w, padding="same")
    with pytest.raises(TypeError, match="grad_out"):
        recfast.conv2d_backward(g.astype(np.float32), x, w)


def test_bindings_recheck_shapes():
    """recfast._cpu can be imported directly: it must refuse inconsistent arrays, not crash."""
    cpu = pytest.importorskip("recfast._cpu")
    if "cpu" not in BACKENDS:
        pytest.skip("cpu backend not live")
    x, w, b = problem(1, 5, 5, 2, 3, 3, 3)
    with pytest.raises(ValueError, match="C of x"):
        cpu.conv2d_forward(
            x, np.ascontiguousarray(w[:, :, :1]), b, np.empty((1, 3, 3, 3)), 1, 1, 1, 1, 0, 0
        )
    with pytest.raises(ValueError, match="stride"):
        cpu.conv2d_forward(x, w, b, np.empty((1, 3, 3, 3)), 0, 1, 1, 1, 0, 0)
    with pytest.raises(TypeError):
        cpu.conv2d_forward(x.astype(np.float32), w, b, np.empty((1, 3, 3, 3)), 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="indices"):
        cpu.max_pool2d_backward(
            np.ones((1, 2, 2, 1)), np.full((1, 2, 2, 1), 99), np.empty((1, 4, 4, 1))
        )


_ALT_PATHS = """
import numpy as np, recfast
rng = np.random.default_rng(0)
for dtype in (np.float32, np.float64):
    # c = 2: k = 18, the small-window kernel; c = 8: k = 72, wide enough for the data gradient
    # through the same kernel, with C_out past one 64-float tile (AVX-512) and a column tail.
    for c, co, geom in ((2, 1, {}), (2, 7, dict(padding="same")), (2, 9, dict(stride=2, padding=1)),
                        (2, 17, dict(dilation=2, padding="full")), (2, 33, dict(padding="same")),
                        (8, 70, dict(padding="same")), (8, 64, dict(stride=2, padding=1)),
                        (8, 1, {})):
        x = rng.standard_normal((3, 9, 11, c)).astype(dtype)
        w = (rng.standard_normal((3, 3, c, co)) / 4 / np.sqrt(c)).astype(dtype)
        b = rng.standard_normal(co).astype(dtype)
        y = recfast.conv2d(x, w, b, activation="tanh", backend="cpu", **geom)
        r = recfast.conv2d(x, w, b, activation="tanh", backend="reference", **geom)
        g = rng.standard_normal(y.shape).astype(dtype)
        got = recfast.conv2d_backward(g, x, w, activation="tanh", output=y, backend="cpu", **geom)
        exp = recfast.conv2d_backward(g, x, w, activation="tanh", output=r, backend="reference",
                                      **geom)
        tol = 1e-4 if dtype == np.float32 else 1e-11
        for a, e in zip((y, *got), (r, *exp)):
            np.testing.assert_allclose(a, e, rtol=tol, atol=tol)
print("ok")
"""


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.skipif("cpu" not in BACKENDS, reason="cpu backend not live")
@pytest.mark.parametrize(
    "env",
    [{}, {"RECFAST_ISA": "avx2"}, {"RECFAST_ISA": "baseline"}, {"RECFAST_CONV_ALGO": "gemm"}],
    ids=str,
)
def test_alternative_kernel_paths(env):
    """Each copy of the register-blocked kernel (AVX-512, AVX2, SSE2: picked by the CPU, lowered
    with RECFAST_ISA) and the im2col + BLAS forward for small windows: chosen once per process,
    so in a subprocess."""
    import os
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-c", _ALT_PATHS],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]


def test_geometry_cache_does_not_bypass_validation():
    """The parsed geometry is cached; True and 1.0 equal 1 as keys but must still be refused."""
    x, w, _ = problem(1, 5, 5, 1, 2, 3, 3)
    recfast.conv2d(x, w, stride=1, padding=1, dilation=(1, 1))
    for bad in (True, 1.0, (True, 1), (1, 1.0)):
        with pytest.raises(TypeError, match="stride"):
            recfast.conv2d(x, w, stride=bad, padding=1)
        with pytest.raises(TypeError, match="dilation"):
            recfast.conv2d(x, w, dilation=bad)
    with pytest.raises(TypeError, match="padding"):
        recfast.conv2d(x, w, padding=1.0)
    np.testing.assert_allclose(  # lists are not hashable: parsed without the cache
        recfast.conv2d(x, w, padding=[[1, 1], [0, 2]]),
        recfast.conv2d(x, w, padding=((1, 1), (0, 2))),
    )
