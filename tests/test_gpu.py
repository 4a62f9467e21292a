"""The GPU backends (issue 10): ``cuda`` (recfast._cuda) and ``cupy`` (the same kernels via NVRTC).

Without a GPU only the first group runs: the extension imports and reports why no device is
usable, NVRTC compiles every fallback kernel, and the device-array checks reject bad arrays
(exercised on stand-in objects that carry a ``__cuda_array_interface__``). The per-element
arithmetic the kernels run is recfast/mf.hpp's and activation.hpp's, which the CPU kernels' tests
cover. The tests marked ``gpu`` run each GPU backend on CuPy arrays and PyTorch CUDA tensors
against the reference on the host, and skip naming what is missing.
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
from op_cases import CASES

import recfast
from recfast._backends import _device as dev
from recfast._backends.cupy import _sources
from recfast.testing import GPU_BACKENDS, random_mf_problem

INFO = {b.name: b for b in recfast.backends()}


# --- no GPU needed ------------------------------------------------------------------------------
def test_cuda_extension_reports_why_no_device():
    if importlib.util.find_spec("recfast._cuda") is None:
        pytest.skip("recfast._cuda is not built here (needs nvcc at install time)")
    cuda = importlib.import_module("recfast._cuda")
    status = cuda.device_status()
    info = INFO["cuda"]
    if cuda.device_count() == 0:
        assert status.startswith("no CUDA device"), status
        assert not info.available
        assert info.reason in (status, "disabled by RECFAST_DISABLE_EXT=1"), info.reason
    else:
        assert status == ""
        assert info.available or info.reason.startswith("disabled"), info.reason
    assert cuda.__version__ == recfast.__version__
    assert cuda.mf_work_size(3) == 5 + 9
    assert cuda.codes()["activation"] == {"identity": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


def test_gpu_backends_named_with_reasons():
    for name in GPU_BACKENDS:
        info = INFO[name]
        assert info.device == "cuda"
        assert info.available or info.reason, name
        assert "sgd_mf_epoch" in info.ops and "dense_forward" in info.ops


def test_bindings_reject_bad_arguments_before_any_launch():
    if importlib.util.find_spec("recfast._cuda") is None:
        pytest.skip("recfast._cuda is not built here")
    cuda = importlib.import_module("recfast._cuda")
    args = ["float32", "int32", 8, 8, 8, 1, 8, 8, 2, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.0, 0.0,
            0.0, 8, 5, 0]  # fmt: skip
    with pytest.raises(ValueError, match="index dtype"):
        cuda.sgd_mf_epoch("float32", "int16", *args[2:])
    with pytest.raises(ValueError, match="dtype must be"):
        cuda.sgd_mf_epoch("bfloat16", *args[1:])
    bad = list(args)
    bad[11] = 8  # user_bias without item_bias
    with pytest.raises(ValueError, match="both user_bias and item_bias"):
        cuda.sgd_mf_epoch(*bad)
    bad = list(args)
    bad[24] = 4  # workspace too small
    with pytest.raises(ValueError, match="workspace too small"):
        cuda.sgd_mf_epoch(*bad)
    with pytest.raises(ValueError, match="activation code"):
        cuda.bias_activation("float32", 8, 0, 2, 2, 9, 0)


def _nvrtc_or_skip():
    try:
        _sources._find_nvrtc()
    except OSError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("name", sorted(_sources.every_instantiation()))
def test_nvrtc_compiles_every_fallback_kernel(name):
    _nvrtc_or_skip()
    names = _sources.every_instantiation()[name]
    size, _ = _sources.nvrtc_compile(name, names, arch="sm_90")
    assert size > 0


def test_nvrtc_reports_a_template_error():
    _nvrtc_or_skip()
    with pytest.raises(RuntimeError, match="did not resolve|failed"):
        _sources.nvrtc_compile("mf", ["recfast::gpu::sgd_mf_hogwild<float, int, 3, banana>"])


class FakeDeviceArray:
    """A stand-in carrying a __cuda_array_interface__ (never dereferenced)."""

    def __init__(self, shape, typestr="<f4", strides=None, readonly=False, device=0):
        self.shape = shape
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "strides": strides,
            "data": (4096, readonly), "version": 3,
        }  # fmt: skip
        self.device = type("Dev", (), {"id": device})()


def test_device_pointer_checks():
    assert dev.pointer(None, "x") == 0
    assert dev.pointer(FakeDeviceArray((3, 4)), "x") == 4096
    assert dev.pointer(FakeDeviceArray((3, 4), strides=(16, 4)), "x") == 4096  # C order spelled
    assert dev.pointer(FakeDeviceArray((3, 1), strides=(4, 999)), "x") == 4096  # size-1 axis
    with pytest.raises(ValueError, match="C-contiguous"):
        dev.pointer(FakeDeviceArray((3, 4), strides=(4, 12)), "x")  # Fortran order
    with pytest.raises(ValueError, match="C-contiguous"):
        dev.pointer(FakeDeviceArray((3, 4), strides=(32, 4)), "x")  # a column slice
    with pytest.raises(ValueError, match="out is a read-only device array"):
        dev.pointer(FakeDeviceArray((3,), readonly=True), "out", writable=True)
    assert dev.pointer(FakeDeviceArray((3,), readonly=True), "x") == 4096  # inputs may be
    with pytest.raises(TypeError, match="x must be float64, got float32"):
        dev.pointer(FakeDeviceArray((3,)), "x", dtype="float64")
    with pytest.raises(TypeError, match="CUDA device array"):
        dev.pointer(np.zeros(3), "x")
    with pytest.raises(ValueError, match="two devices: a is on GPU 0 but b is on GPU 1"):
        dev.same_device(
            {"a": FakeDeviceArray((2,)), "n": None, "b": FakeDeviceArray((2,), device=1)}
        )
    assert dev.same_device({"a": FakeDeviceArray((2,), device=1)}) == 1


# --- on a GPU -----------------------------------------------------------------------------------
def _backend_or_skip(name):
    info = INFO[name]
    if not info.available:
        pytest.skip(f"backend {name!r}: {info.reason}")


def _to_device(kind):
    """numpy -> the kind's device arrays, or skip naming what is missing."""
    if kind == "cupy":
        try:
            import cupy
        except ImportError:
            pytest.skip("cupy is not installed (pip install cupy-cuda13x)")
        if not cupy.is_available():
            pytest.skip("cupy sees no CUDA device")
        return cupy.asarray, cupy.asnumpy
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip(f"torch {torch.__version__} sees no CUDA device")
    return (lambda a: torch.from_numpy(np.ascontiguousarray(a)).cuda()), (lambda t: t.cpu().numpy())


KINDS = ["cupy", "torch"]
gpu = pytest.mark.gpu


def _matching_problem(n, k, dtype, index_dtype, seed):
    """Ratings that share no user and no item: concurrent warps cannot interact, so a Hogwild
    epoch must equal the sequential one exactly up to summation order."""
    rng = np.random.default_rng(seed)
    p = random_mf_problem(n, n, n, k, dtype=dtype, index_dtype=index_dtype, seed=seed)
    p.rows = rng.permutation(n).astype(index_dtype)
    p.cols = rng.permutation(n).astype(index_dtype)
    return p


def _epochs(p, backend, conv, ada, biased, epochs=3, **kw):
    U, V, ub, ib = (conv(a) for a in p.copy_state())
    dt = p.values.dtype
    acc = (
        dict(user_accum=conv(np.ones(len(p.user_factors), dt)),
             item_accum=conv(np.ones(len(p.item_factors), dt)))
        if ada else {}
    )  # fmt: skip
    bias = dict(user_bias=ub, item_bias=ib) if biased else {}
    rows, cols, vals = conv(p.rows), conv(p.cols), conv(p.values)
    kw = {k: conv(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    losses = [
        recfast.sgd_mf_epoch(rows, cols, vals, U, V, global_mean=3.0, learning_rate=0.05,
                             regularization=0.02, bias_regularization=0.01, backend=backend,
                             **bias, **acc, **kw)
        for _ in range(epochs)
    ]  # fmt: skip
    return U, V, ub, ib, losses, acc


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [64, 7, 128])
@pytest.mark.parametrize("ada", [False, True], ids=["sgd", "adagrad"])
@pytest.mark.parametrize("biased", [True, False], ids=["bias", "nobias"])
def test_sgd_mf_hogwild_matches_reference(backend, kind, dtype, k, ada, biased):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    p = _matching_problem(3000, k, dtype, np.int64 if k == 7 else np.int32, seed=k)
    ident = lambda a: a  # noqa: E731
    ref = _epochs(p, "reference", ident, ada, biased)
    out = _epochs(p, backend, to, ada, biased)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(out[:2], ref[:2]):
        assert type(a).__module__.split(".")[0] == kind  # the caller's kind, updated in place
        np.testing.assert_allclose(back(a), b, rtol=tol, atol=tol)
    np.testing.assert_allclose(out[4], ref[4], rtol=tol)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_mf_blocked_equals_sequential(backend, dtype):
    """The FPSGD strata on the device equal the sequential pass in layout order."""
    _backend_or_skip(backend)
    to, back = _to_device("cupy")
    p = random_mf_problem(300, 200, 20000, 32, dtype=dtype, seed=5)
    r, c, v, bp = recfast.mf_block_layout(p.rows, p.cols, p.values, 300, 200, 6, seed=1)
    p.rows, p.cols, p.values = r, c, v
    ref = _epochs(p, "cpu", lambda a: a, True, True, num_threads=1)
    out = _epochs(p, backend, to, True, True, block_ptr=bp, n_blocks=6)
    tol = 2e-4 if dtype == np.float32 else 1e-9
    for a, b in zip(out[:4], ref[:4]):
        np.testing.assert_allclose(back(a), b, rtol=tol, atol=tol)
    np.testing.assert_allclose(out[4], ref[4], rtol=tol)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_sgd_mf_hogwild_converges_with_collisions(backend):
    _backend_or_skip(backend)
    to, back = _to_device("cupy")
    p = random_mf_problem(200, 100, 50000, 16, dtype=np.float32, seed=2)
    out = _epochs(p, backend, to, False, True, epochs=8)
    ref = _epochs(p, "cpu", lambda a: a, False, True, epochs=8, num_threads=1)
    assert out[4][-1] < out[4][0] * 0.8
    assert abs(out[4][-1] - ref[4][-1]) / ref[4][-1] < 0.05  # Hogwild: statistically the same


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_sgd_mf_bad_device_input(backend):
    _backend_or_skip(backend)
    to, back = _to_device("cupy")
    p = random_mf_problem(50, 40, 500, 8, dtype=np.float32, seed=1)
    U, V = to(p.user_factors), to(p.item_factors)
    rows, cols, vals = to(p.rows), to(p.cols), to(p.values)
    kw = dict(learning_rate=0.05, regularization=0.0, backend=backend)
    with pytest.raises(TypeError, match="mix"):
        recfast.sgd_mf_epoch(p.rows, cols, vals, U, V, **kw)  # NumPy mixed with CuPy
    bad = p.rows.copy()
    bad[7] = 50
    # The public check or the device pre-check: either way before anything changes.
    with pytest.raises(ValueError, match="rows"):
        recfast.sgd_mf_epoch(to(bad), cols, vals, U, V, **kw)
    np.testing.assert_array_equal(back(U), p.user_factors)
    Uf = to(np.asfortranarray(p.user_factors))
    with pytest.raises(ValueError, match="contiguous"):
        recfast.sgd_mf_epoch(rows, cols, vals, Uf[:, :], V, **kw)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh"])
def test_dense_matches_reference(backend, kind, dtype, activation):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 19)).astype(dtype)
    W = rng.standard_normal((23, 19)).astype(dtype)
    b = rng.standard_normal(23).astype(dtype)
    g = rng.standard_normal((37, 23)).astype(dtype)
    ref = recfast.dense(x, W, b, activation=activation, backend="reference")
    out = recfast.dense(to(x), to(W), to(b), activation=activation, backend=backend)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(back(out), ref, rtol=tol, atol=tol)
    gr = recfast.dense_backward(g, x, W, output=ref, activation=activation, backend="reference")
    go = recfast.dense_backward(
        to(g), to(x), to(W), output=out, activation=activation, backend=backend
    )
    for a, e in zip(go, gr):
        np.testing.assert_allclose(back(a), e, rtol=tol, atol=tol)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("ragged", [False, True], ids=["full", "lengths"])
def test_rnn_forward_backward_match_reference(backend, kind, dtype, cell, ragged):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    rng = np.random.default_rng(7)
    T, N, D, H = 6, 5, 4, 3
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = rng.standard_normal((N, H)).astype(dtype) * 0.5
    p = {"W": rng.standard_normal((G * H, D)) * 0.4, "U": rng.standard_normal((G * H, H)) * 0.4}
    if cell == "gru":
        p["b_ih"], p["b_hh"] = rng.standard_normal(G * H), rng.standard_normal(G * H)
    else:
        p["b"] = rng.standard_normal(G * H)
    p = {k: v.astype(dtype) for k, v in p.items()}
    c0 = (rng.standard_normal((N, H)) * 0.5).astype(dtype) if cell == "lstm" else None
    lengths = np.array([6, 0, 3, 1, 6], np.int64) if ragged else None
    kw = dict(cell=cell, activation="tanh", return_cache=True)
    ref = recfast.rnn_forward(xs, h0, p, c0=c0, lengths=lengths, backend="reference", **kw)
    dv = lambda a: None if a is None else to(a)  # noqa: E731
    out = recfast.rnn_forward(
        to(xs), to(h0), {k: to(v) for k, v in p.items()}, c0=dv(c0), lengths=dv(lengths),
        backend=backend, **kw,
    )  # fmt: skip
    tol = 2e-5 if dtype == np.float32 else 1e-12
    pairs = [(out.outputs, ref.outputs), (out.h_last, ref.h_last), (out.c_last, ref.c_last),
             (out.cache.states, ref.cache.states), (out.cache.cells, ref.cache.cells),
             (out.cache.gates, ref.cache.gates)]  # fmt: skip
    for got, want in pairs:
        if want is None:
            assert got is None
            continue
        np.testing.assert_allclose(back(got), want, rtol=tol, atol=tol)
    # BPTT on the device against the reference (every gradient is a freshly allocated array)
    gy = rng.standard_normal((T, N, H)).astype(dtype)
    ghl = rng.standard_normal((N, H)).astype(dtype)
    gcl = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
    gref = recfast.rnn_backward(gy, ghl, ref.cache, p, grad_c_last=gcl, backend="reference")
    gout = recfast.rnn_backward(
        to(gy), to(ghl), out.cache, {k: to(v) for k, v in p.items()}, grad_c_last=dv(gcl),
        backend=backend,
    )  # fmt: skip
    assert sorted(gout) == sorted(gref)
    gtol = 1e-4 if dtype == np.float32 else 1e-11
    for key in gref:
        np.testing.assert_allclose(back(gout[key]), gref[key], rtol=gtol, atol=gtol, err_msg=key)
    # the step op is a T = 1 sequence on the same kernel
    if cell == "gru":
        h1 = recfast.gru_step(to(xs[0]), to(h0), to(p["W"]), to(p["U"]), to(p["b_ih"]),
                              to(p["b_hh"]), backend=backend)  # fmt: skip
        r1 = recfast.gru_step(xs[0], h0, p["W"], p["U"], p["b_ih"], p["b_hh"], backend="reference")
        np.testing.assert_allclose(back(h1), r1, rtol=tol, atol=tol)


CONV_CASES = [  # (x shape, w shape, stride, padding, dilation)
    ((2, 7, 6, 3), (3, 3, 3, 4), 1, "same", 1),
    ((1, 9, 8, 2), (3, 2, 2, 5), (2, 1), "valid", (1, 2)),
    ((3, 5, 5, 1), (2, 2, 1, 3), 2, "full", 1),
]


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
def test_conv2d_matches_reference(backend, kind, dtype, case, activation):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    xs, ws, stride, padding, dilation = CONV_CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = (rng.standard_normal(ws) * 0.3).astype(dtype)
    b = rng.standard_normal(ws[3]).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, activation=activation)
    ref = recfast.conv2d(x, w, b, backend="reference", **kw)
    out = recfast.conv2d(to(x), to(w), to(b), backend=backend, **kw)
    tol = 1e-4 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(back(out), ref, rtol=tol, atol=tol)
    g = rng.standard_normal(ref.shape).astype(dtype)
    gref = recfast.conv2d_backward(g, x, w, output=ref, backend="reference", **kw)
    gout = recfast.conv2d_backward(to(g), to(x), to(w), output=out, backend=backend, **kw)
    for got, want in zip(gout, gref):
        np.testing.assert_allclose(back(got), want, rtol=tol, atol=tol)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), 1, (1, 0))])
def test_max_pool2d_matches_reference(backend, kind, dtype, size, stride, padding):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 7, 6, 3)).astype(dtype)
    x[0, 1, 1, 0] = np.nan  # a NaN wins its windows, as on the CPU
    x[1, 2:4, 2:4, 1] = 0.5  # ties: the first maximum in window order
    ref, ridx = recfast.max_pool2d(x, size, stride, padding, backend="reference")
    out, idx = recfast.max_pool2d(to(x), size, stride, padding, backend=backend)
    np.testing.assert_array_equal(back(idx), ridx)
    np.testing.assert_array_equal(back(out), ref)
    g = rng.standard_normal(ref.shape).astype(dtype)
    gref = recfast.max_pool2d_backward(g, ridx, x.shape, backend="reference")
    gout = recfast.max_pool2d_backward(to(g), idx, x.shape, backend=backend)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(back(gout), gref, rtol=tol, atol=tol)
    bad = back(idx).copy()
    bad.flat[5] = 7 * 6  # one past the end
    with pytest.raises(ValueError, match="indices"):
        recfast.max_pool2d_backward(to(g), to(bad), x.shape, backend=backend)


# The cases every backend and kind runs (tests/op_cases.py), here on the device. SGD-MF's case
# has colliding ratings (Hogwild on the GPU is not sequential: the matching-problem test above
# covers it), and the block layout has no GPU kernel.
DEVICE_CASES = [c for c in CASES if c not in ("sgd_mf_epoch", "mf_block_layout")]


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", DEVICE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_op_case_on_the_device(backend, kind, case, dtype):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    make, call = CASES[case]
    a = make(np.random.default_rng(0), dtype)
    want = call({k: v.copy() for k, v in a.items()}, "reference")
    got = call({k: to(v) if isinstance(v, np.ndarray) else v for k, v in a.items()}, backend)
    assert set(got) == set(want)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for key, w in want.items():
        g = got[key]
        if isinstance(w, np.ndarray):
            assert type(g).__module__.split(".")[0] == kind, f"{key}: {type(g)}"
            np.testing.assert_allclose(back(g), w, rtol=tol, atol=tol, err_msg=key)
        else:
            assert g == pytest.approx(w, rel=tol), key


# --- MatrixFactorization on device arrays (recfast/models/_mf_device.py) -----------------------
@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("solver", ["adagrad", "sgd"])
def test_matrix_factorization_fit_on_the_device_equals_its_host_run(backend, kind, solver):
    """Ratings that share no user and no item: the device's Hogwild epochs equal the same code
    path run on the host (same initial draws, the same device-computed shuffle)."""
    from recfast._kinds import NUMPY
    from recfast.models import _mf_device

    _backend_or_skip(backend)
    to, back = _to_device(kind)
    n, rng = 3000, np.random.default_rng(4)
    r, c = rng.permutation(n), rng.permutation(n)
    v = rng.integers(1, 6, n).astype(np.float64)
    kw = dict(factors=64, epochs=3, solver=solver, random_state=5, dtype=np.float64)
    m = recfast.MatrixFactorization(backend=backend, **kw).fit((to(r), to(c), to(v)))
    want, hist = _mf_device.fit(recfast.MatrixFactorization(backend="cpu", num_threads=1, **kw),
                                (r, c, v), NUMPY, None, None)  # fmt: skip
    assert m.array_kind_ == ("cupy" if kind == "cupy" else "torch-cuda")
    U = m.user_factors_
    assert type(U).__module__.split(".")[0] == kind
    np.testing.assert_allclose(back(U), want.U, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back(m.item_factors_), want.V, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(back(m.user_bias_), want.ub, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.history_["loss"], hist["loss"], rtol=1e-9)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
def test_matrix_factorization_on_the_device_fits_predicts_and_scores(backend, kind):
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    rng = np.random.default_rng(0)
    nu, ni, k, nnz = 500, 300, 6, 40000
    P, Q = rng.standard_normal((nu, k)), rng.standard_normal((ni, k))
    r, c = rng.integers(0, nu, nnz), rng.integers(0, ni, nnz)
    v = np.clip((P[r] * Q[c]).sum(1) / 3 + 3, 1, 5).astype(np.float32)
    tr = np.arange(nnz) % 5 != 0
    val = (r[~tr], c[~tr], v[~tr])
    host = recfast.MatrixFactorization(factors=16, epochs=20, random_state=0)
    host.fit((r[tr], c[tr], v[tr]), validation=val)
    m = recfast.MatrixFactorization(factors=16, epochs=20, random_state=0, backend=backend)
    m.fit(tuple(to(a) for a in (r[tr], c[tr], v[tr])), validation=tuple(to(a) for a in val))
    assert abs(m.history_["val_rmse"][-1] - host.history_["val_rmse"][-1]) < 0.01
    pred = m.predict(to(r[:50]), to(c[:50]))
    assert type(pred).__module__.split(".")[0] == kind
    U, V = back(m.user_factors_), back(m.item_factors_)
    ub, ib = back(m.user_bias_), back(m.item_bias_)
    want = np.clip(m.global_mean_ + ub[r[:50]] + ib[c[:50]] + (U[r[:50]] * V[c[:50]]).sum(1),
                   *m.rating_range_)  # fmt: skip
    np.testing.assert_allclose(back(pred), want, rtol=1e-5, atol=1e-5)
    assert m.score(tuple(to(a) for a in val)) == pytest.approx(m.history_["val_rmse"][-1], 1e-5)
    items, _ = m.recommend(to(np.arange(3)), n=5)
    assert back(items).shape == (3, 5)
    with pytest.raises(TypeError, match="same array kind"):
        m.fit(tuple(to(a) for a in (r, c, v)), validation=val)


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("k", [64, 7])
@pytest.mark.parametrize("ada", [False, True], ids=["sgd", "adagrad"])
def test_sgd_mf_half_factors_match_reference(backend, kind, k, ada):
    """float16 factor storage on the device: ratings that share no row, so Hogwild equals the
    sequential reference up to summation order (then one float16 ulp here and there)."""
    _backend_or_skip(backend)
    to, back = _to_device(kind)
    p = _matching_problem(2000, k, np.float32, np.int32, seed=3)
    U0, V0 = p.user_factors.astype(np.float16), p.item_factors.astype(np.float16)
    nu, ni = len(U0), len(V0)
    extra = dict(user_bias=np.zeros(nu, np.float32), item_bias=np.zeros(ni, np.float32))
    if ada:
        extra.update(user_accum=np.ones(nu, np.float32), item_accum=np.ones(ni, np.float32))
    kw = dict(global_mean=3.0, learning_rate=0.05, regularization=0.02)
    dev_extra = {key: to(v) for key, v in extra.items()}
    Ud, Vd = to(U0), to(V0)
    Ur, Vr = U0.copy(), V0.copy()
    for _ in range(2):
        got = recfast.sgd_mf_epoch(to(p.rows), to(p.cols), to(p.values), Ud, Vd, backend=backend,
                                   **dev_extra, **kw)  # fmt: skip
        want = recfast.sgd_mf_epoch(p.rows, p.cols, p.values, Ur, Vr, backend="reference",
                                    **extra, **kw)  # fmt: skip
        assert got == pytest.approx(want, rel=1e-4)
    for d, r in ((Ud, Ur), (Vd, Vr)):
        h = back(d)
        assert h.dtype == np.float16
        np.testing.assert_allclose(h.astype(np.float32), r.astype(np.float32), rtol=2e-3, atol=1e-4)
    np.testing.assert_allclose(back(dev_extra["user_bias"]), extra["user_bias"], rtol=1e-4,
                               atol=1e-5)  # fmt: skip


@gpu
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_matrix_factorization_half_factors_on_the_device(backend):
    _backend_or_skip(backend)
    to, back = _to_device("cupy")
    rng = np.random.default_rng(1)
    r, c = rng.integers(0, 400, 30000), rng.integers(0, 300, 30000)
    v = rng.integers(1, 6, 30000).astype(np.float32)
    kw = dict(factors=32, epochs=10, random_state=0)
    half = recfast.MatrixFactorization(factor_dtype="float16", backend=backend, **kw)
    half.fit((to(r), to(c), to(v)))
    full = recfast.MatrixFactorization(backend=backend, **kw).fit((to(r), to(c), to(v)))
    assert back(half.user_factors_).dtype == np.float16
    assert abs(half.history_["train_rmse"][-1] - full.history_["train_rmse"][-1]) < 0.01
