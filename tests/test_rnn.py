"""recfast.rnn (issue #4): RNN / GRU / LSTM sequences and steps on every live backend against the
reference with poisoned outputs, gradients against central finite differences and PyTorch
autograd (when installed), variable lengths, bad input."""

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recfast import rnn
from recfast._backends import select
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs
from recfast.testing import TORCH_MISSING, live_backends

BACKENDS = live_backends("rnn_forward")
CELLS = ["rnn", "gru", "lstm"]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# Max-abs error relative to max(1, |expected|): float32 steps compound over T, hence looser.
TOL = {np.dtype(np.float64): 1e-11, np.dtype(np.float32): 2e-5}


def close(actual, expected, dtype, what=""):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    assert not np.isnan(actual).any(), f"{what}: NaN (an element left unwritten?)"
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    err = float(np.abs(actual - expected).max(initial=0)) / scale
    assert err <= TOL[np.dtype(dtype)], f"{what}: relative error {err:.3g}"


def make_params(cell, D, H, dtype, rng, bias=True, scale=0.5):
    G = GATES[cell]
    p = {
        "W": (rng.standard_normal((G * H, D)) * scale).astype(dtype),
        "U": (rng.standard_normal((G * H, H)) * scale / np.sqrt(max(H, 1))).astype(dtype),
    }
    if bias:
        if cell == "gru":
            p["b_ih"] = rng.standard_normal(G * H).astype(dtype) * 0.5
            p["b_hh"] = rng.standard_normal(G * H).astype(dtype) * 0.5
        else:
            p["b"] = rng.standard_normal(G * H).astype(dtype) * 0.5
    return p


def make_problem(cell, T, N, D, H, dtype=np.float64, seed=0, lengths="random", bias=True):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = (rng.standard_normal((N, H)) * 0.5).astype(dtype)
    c0 = (rng.standard_normal((N, H)) * 0.5).astype(dtype) if cell == "lstm" else None
    lens = None
    if lengths == "random":
        lens = rng.integers(0, T + 1, N)
    return xs, h0, c0, make_params(cell, D, H, dtype, rng, bias), lens, rng


def kernel_args(p, cell):
    """The (W, U, b_ih, b_hh) the backend ops take."""
    if cell == "gru":
        return p["W"], p["U"], p.get("b_ih"), p.get("b_hh")
    return p["W"], p["U"], p.get("b"), None


def run_forward_op(backend, cell, act, xs, h0, c0, p, lens, *, cache=True, sequences=True):
    """Call the backend op directly with NaN-poisoned outputs and cache."""
    T, N, _ = xs.shape
    H, dt = h0.shape[1], xs.dtype
    nan = lambda *s: np.full(s, np.nan, dt)  # noqa: E731
    out = nan(T, N, H) if sequences else None
    h_last = nan(N, H)
    c_last = nan(N, H) if cell == "lstm" else None
    states = nan(T + 1, N, H) if cache else None
    cells = nan(T + 1, N, H) if cache and cell == "lstm" else None
    gates = nan(T, N, 4 * H) if cache and cell != "rnn" else None
    W, U, b_ih, b_hh = kernel_args(p, cell)
    ln = None if lens is None else np.asarray(lens, np.int64)
    _, k = select("rnn_forward", backend)
    k(RnnForwardArgs(cell, act, xs, h0, c0, W, U, b_ih, b_hh, ln, out, h_last, c_last, states,
                     cells, gates, 2))  # fmt: skip
    return dict(out=out, h_last=h_last, c_last=c_last, states=states, cells=cells, gates=gates)


def run_backward_op(backend, cell, act, xs, p, lens, cache, go, gh, gc):
    T, N, D = xs.shape
    H, dt = cache["states"].shape[2], xs.dtype
    W, U, b_ih, b_hh = kernel_args(p, cell)
    nan = lambda *s: np.full(s, np.nan, dt)  # noqa: E731
    g = dict(xs=nan(T, N, D), h0=nan(N, H), W=nan(*W.shape), U=nan(*U.shape))
    g["c0"] = nan(N, H) if cell == "lstm" else None
    g["b_ih"] = nan(W.shape[0]) if b_ih is not None else None
    g["b_hh"] = nan(W.shape[0]) if b_hh is not None else None
    ln = None if lens is None else np.asarray(lens, np.int64)
    _, k = select("rnn_backward", backend)
    k(RnnBackwardArgs(cell, act, xs, W, U, ln, cache["states"], cache["cells"], cache["gates"],
                      go, gh, gc, g["xs"], g["h0"], g["c0"], g["W"], g["U"], g["b_ih"],
                      g["b_hh"], 2))  # fmt: skip
    return {key: v for key, v in g.items() if v is not None}


def compare_all(backend, cell, act, T, N, D, H, dtype, seed, lengths="random", bias=True):
    xs, h0, c0, p, lens, rng = make_problem(cell, T, N, D, H, dtype, seed, lengths, bias)
    ref = run_forward_op("reference", cell, act, xs, h0, c0, p, lens)
    got = run_forward_op(backend, cell, act, xs, h0, c0, p, lens)
    for key, v in ref.items():
        if v is not None:
            close(got[key], v, dtype, f"{backend} {cell} forward {key}")
    if lens is not None:  # outputs past each sequence's end are exactly zero
        for n, L in enumerate(lens):
            assert not got["out"][L:, n].any()
    go = rng.standard_normal((T, N, H)).astype(dtype)
    gh = rng.standard_normal((N, H)).astype(dtype)
    gc = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
    gref = run_backward_op("reference", cell, act, xs, p, lens, ref, go, gh, gc)
    ggot = run_backward_op(backend, cell, act, xs, p, lens, ref, go, gh, gc)
    for key, v in gref.items():
        close(ggot[key], v, dtype, f"{backend} {cell} backward {key}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lengths", ["random", None])
def test_backend_matches_reference(backend, cell, dtype, lengths):
    compare_all(backend, cell, "tanh" if cell == "rnn" else None, 7, 5, 6, 9, dtype, 3, lengths)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh"])
def test_rnn_activations_match_reference(backend, act):
    compare_all(backend, "rnn", act, 5, 4, 3, 6, np.float64, 11)


@settings(max_examples=30, deadline=None)
@given(
    cell=st.sampled_from(CELLS),
    T=st.integers(0, 6),
    N=st.integers(0, 5),
    D=st.integers(1, 7),
    H=st.integers(1, 9),
    act=st.sampled_from([None, "relu", "sigmoid", "tanh"]),
    lengths=st.sampled_from(["random", None]),
    bias=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_random_shapes(cell, T, N, D, H, act, lengths, bias, seed):
    act = act if cell == "rnn" else None
    for backend in BACKENDS:
        compare_all(backend, cell, act, T, N, D, H, np.float64, seed, lengths, bias)


# --------------------------------------------------------------------------- public API
def loss_and_grads(cell, xs, h0, c0, p, lens, backend, act="tanh"):
    """A random linear functional of every output, and its gradients through rnn_backward."""
    res = rnn.rnn_forward(xs, h0, p, cell=cell, activation=act, c0=c0, lengths=lens,
                          return_cache=True, backend=backend)  # fmt: skip
    rng = np.random.default_rng(99)
    go = rng.standard_normal(res.outputs.shape)
    gh = rng.standard_normal(res.h_last.shape)
    gc = rng.standard_normal(res.h_last.shape) if cell == "lstm" else None
    loss = (res.outputs * go).sum() + (res.h_last * gh).sum()
    if cell == "lstm":
        loss += (res.c_last * gc).sum()
    grads = rnn.rnn_backward(go, gh, res.cache, p, grad_c_last=gc, backend=backend)
    return loss, grads


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", CELLS)
def test_gradients_match_finite_differences(backend, cell):
    xs, h0, c0, p, lens, _ = make_problem(cell, 4, 3, 3, 4, seed=5)
    lens = np.array([4, 2, 0])
    _, grads = loss_and_grads(cell, xs, h0, c0, p, lens, backend)
    inputs = {"xs": xs, "h0": h0, **p}
    if cell == "lstm":
        inputs["c0"] = c0
    eps = 1e-6
    for name, arr in inputs.items():
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + eps
            lp, _ = loss_and_grads(cell, xs, h0, c0, p, lens, "reference")
            arr[idx] = old - eps
            lm, _ = loss_and_grads(cell, xs, h0, c0, p, lens, "reference")
            arr[idx] = old
            num[idx] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-6, atol=1e-7, err_msg=name)


def test_step_functions_equal_one_step_sequences():
    rng = np.random.default_rng(0)
    N, D, H = 3, 4, 5
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    for cell in CELLS:
        p = make_params(cell, D, H, np.float64, rng)
        seq = rnn.rnn_forward(x[None], h, p, cell=cell, c0=c if cell == "lstm" else None)
        for backend in BACKENDS:
            if cell == "rnn":
                got = rnn.rnn_step(x, h, p["W"], p["U"], p["b"], backend=backend)
            elif cell == "gru":
                got = rnn.gru_step(x, h, p["W"], p["U"], p["b_ih"], p["b_hh"], backend=backend)
            else:
                got, c1 = rnn.lstm_step(x, h, c, p["W"], p["U"], p["b"], backend=backend)
                close(c1, seq.c_last, np.float64, f"{backend} lstm c")
            close(got, seq.h_last, np.float64, f"{backend} {cell} step")
            close(got, seq.outputs[0], np.float64, f"{backend} {cell} step output")


def test_step_takes_single_vectors_and_out():
    rng = np.random.default_rng(1)
    D, H = 4, 3
    x, h, c = rng.standard_normal(D), rng.standard_normal(H), rng.standard_normal(H)
    W, U, b = rng.standard_normal((H, D)), rng.standard_normal((H, H)), rng.standard_normal(H)
    expected = np.tanh(W @ x + U @ h + b)  # the column-vector formula
    for backend in BACKENDS:
        out = np.full(H, np.nan)
        got = rnn.rnn_step(x, h, W, U, b, out=out, backend=backend)
        assert got is out
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    W4, U4, b4 = rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)), np.zeros(4 * H)
    h1, c1 = rnn.lstm_step(x, h, c, W4, U4, b4)
    assert h1.shape == c1.shape == (H,)


def test_rnn_output_is_the_seed_formula():
    rng = np.random.default_rng(2)
    h, V, c = rng.standard_normal((3, 5)), rng.standard_normal((2, 5)), rng.standard_normal(2)
    y = rnn.rnn_output(h, V, c, activation="sigmoid")
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-(h @ V.T + c))), rtol=1e-12)


def test_empty_sequence_and_batch():
    for cell in CELLS:
        xs, h0, c0, p, _, _ = make_problem(cell, 0, 3, 2, 4)
        res = rnn.rnn_forward(xs, h0, p, cell=cell, c0=c0, return_cache=True)
        assert res.outputs.shape == (0, 3, 4)
        np.testing.assert_array_equal(res.h_last, h0)
        g = rnn.rnn_backward(None, np.ones((3, 4)), res.cache, p)
        np.testing.assert_array_equal(g["h0"], np.ones((3, 4)))
        assert not g["W"].any()
        xs, h0, c0, p, _, _ = make_problem(cell, 3, 0, 2, 4)
        res = rnn.rnn_forward(xs, h0, p, cell=cell, c0=c0)
        assert res.outputs.shape == (3, 0, 4) and res.h_last.shape == (0, 4)


def test_lengths_freeze_state():
    xs, h0, _, p, _, _ = make_problem("gru", 6, 3, 2, 4, lengths=None)
    lens = np.array([6, 3, 0])
    full = rnn.rnn_forward(xs, h0, p, cell="gru", lengths=lens)
    for n, L in enumerate(lens):
        alone = rnn.rnn_forward(xs[:L, n : n + 1], h0[n : n + 1], p, cell="gru")
        np.testing.assert_allclose(full.h_last[n], alone.h_last[0], rtol=1e-13)
        np.testing.assert_allclose(full.outputs[:L, n], alone.outputs[:, 0], rtol=1e-13)
        assert not full.outputs[L:, n].any()


def test_backward_recomputes_from_inputs():
    xs, h0, c0, p, lens, rng = make_problem("lstm", 5, 3, 2, 4)
    res = rnn.rnn_forward(xs, h0, p, cell="lstm", c0=c0, lengths=lens, return_cache=True)
    go = rng.standard_normal(res.outputs.shape)
    a = rnn.rnn_backward(go, None, res.cache, p)
    inputs = {"xs": xs, "h0": h0, "c0": c0, "lengths": lens, "cell": "lstm"}
    b = rnn.rnn_backward(go, None, inputs, p)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_two_biases_for_rnn_and_lstm_are_summed():
    xs, h0, c0, p, _, _ = make_problem("lstm", 3, 2, 2, 3, lengths=None)
    split = {"W": p["W"], "U": p["U"], "b_ih": p["b"] * 0.25, "b_hh": p["b"] * 0.75}
    a = rnn.rnn_forward(xs, h0, p, cell="lstm", c0=c0, return_cache=True)
    b = rnn.rnn_forward(xs, h0, split, cell="lstm", c0=c0, return_cache=True)
    np.testing.assert_allclose(a.outputs, b.outputs, rtol=1e-14)
    g = rnn.rnn_backward(np.ones_like(b.outputs), None, b.cache, split)
    np.testing.assert_array_equal(g["b_ih"], g["b_hh"])


def test_nan_passes_through():
    xs, h0, c0, p, _, _ = make_problem("gru", 3, 2, 2, 3, lengths=None)
    xs[1, 0, 0] = np.nan
    for backend in BACKENDS:
        res = rnn.rnn_forward(xs, h0, p, cell="gru", backend=backend)
        assert np.isnan(res.outputs[1:, 0]).all() and not np.isnan(res.outputs[:, 1]).any()
        assert not np.isnan(res.outputs[0]).any()


def test_threads_and_gil():
    xs, h0, _, p, lens, _ = make_problem("gru", 30, 16, 32, 48, np.float32)
    expected = rnn.rnn_forward(xs, h0, p, cell="gru", lengths=lens, num_threads=1).outputs
    results, errors = [None] * 4, []

    def work(i):
        try:
            for _ in range(3):
                r = rnn.rnn_forward(xs, h0, p, cell="gru", lengths=lens, num_threads=1 + i % 2)
            results[i] = r.outputs
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    from threadpoolctl import threadpool_info

    def blas_threads():
        return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                      if i["user_api"] == "blas")  # fmt: skip

    before = blas_threads()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert blas_threads() == before  # overlapping calls leave the BLAS pool as they found it
    for r in results:
        np.testing.assert_allclose(r, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- bad input
def good(cell="gru"):
    xs, h0, c0, p, lens, _ = make_problem(cell, 4, 3, 2, 5)
    return xs, h0, c0, p, lens


@pytest.mark.parametrize(
    "mutate, exc, match",
    [
        (lambda a: a.update(xs=a["xs"][..., :1]), ValueError, r"params\['W'\].*\(15, 1\)"),
        (lambda a: a.update(h0=np.zeros((3, 4))), ValueError, r"params\['W'\].*\(12, 2\)"),
        (lambda a: a.update(h0=np.zeros((2, 5))), ValueError, "h0 must have shape"),
        (lambda a: a["p"].update(W=np.zeros((5, 2))), ValueError, r"3 gates x H=5"),
        (lambda a: a["p"].update(U=np.zeros((15, 4))), ValueError, r"params\['U'\]"),
        (lambda a: a["p"].update(b_hh=np.zeros(5)), ValueError, r"params\['b_hh'\]"),
        (lambda a: a["p"].update(b=np.zeros(15)), ValueError, "does not take"),
        (lambda a: a["p"].pop("W"), ValueError, "must contain 'W'"),
        (lambda a: a.update(p=[1, 2]), TypeError, "mapping"),
        (
            lambda a: a.update(lens=np.array([1, 2, 5])),
            ValueError,
            r"lengths must lie in \[0, T=4\]",
        ),
        (lambda a: a.update(lens=np.array([1, -1, 2])), ValueError, "lengths must lie"),
        (lambda a: a.update(lens=np.array([1, 2])), ValueError, r"lengths must have shape \(N,\)"),
        (lambda a: a.update(lens=np.array([1.0, 2, 3])), TypeError, "lengths must be an integer"),
        (lambda a: a.update(cell="lstmx"), ValueError, "cell must be one of"),
        (lambda a: a.update(xs=a["xs"].astype(np.int64)), TypeError, "xs must have dtype float"),
        (lambda a: a.update(xs=a["xs"].astype(np.float32)), TypeError, "h0 has dtype float64"),
        (lambda a: a["p"].update(U=a["p"]["U"].astype(np.float32)), TypeError, r"params\['U'\]"),
        (lambda a: a.update(xs=a["xs"][0]), ValueError, "xs must be 3-D"),
        (lambda a: a.update(c0=np.zeros((3, 5))), ValueError, "c0 is the LSTM's"),
    ],
)
def test_bad_sequence_input(mutate, exc, match):
    xs, h0, c0, p, lens = good()
    args = dict(xs=xs, h0=h0, p=p, lens=lens, cell="gru", c0=None)
    mutate(args)
    before = {k: v.copy() for k, v in p.items()}, xs.copy(), h0.copy()
    with pytest.raises(exc, match=match):
        rnn.rnn_forward(args["xs"], args["h0"], args["p"], cell=args["cell"], c0=args["c0"],
                        lengths=args["lens"])  # fmt: skip
    for k, v in before[0].items():
        np.testing.assert_array_equal(p[k], v)
    np.testing.assert_array_equal(xs, before[1])
    np.testing.assert_array_equal(h0, before[2])


def test_bad_activation_and_backward_input():
    xs, h0, c0, p, lens = good("rnn")
    with pytest.raises(ValueError, match="activation must be one of"):
        rnn.rnn_forward(xs, h0, p, activation="softmax")
    res = rnn.rnn_forward(xs, h0, p, lengths=lens, return_cache=True)
    with pytest.raises(ValueError, match=r"grad_outputs must have shape \(T, N, H\)"):
        rnn.rnn_backward(np.ones((4, 3, 4)), None, res.cache, p)
    with pytest.raises(ValueError, match="grad_h_last must have shape"):
        rnn.rnn_backward(None, np.ones((3, 4)), res.cache, p)
    with pytest.raises(ValueError, match="grad_c_last belongs to the LSTM"):
        rnn.rnn_backward(None, None, res.cache, p, grad_c_last=np.ones((3, 5)))
    with pytest.raises(TypeError, match="cache_or_inputs must be"):
        rnn.rnn_backward(None, None, xs, p)
    with pytest.raises(TypeError, match="grad_outputs has dtype float32"):
        rnn.rnn_backward(np.ones((4, 3, 5), np.float32), None, res.cache, p)


def test_bad_step_input():
    rng = np.random.default_rng(0)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    W, U = rng.standard_normal((4, 3)), rng.standard_normal((4, 4))
    with pytest.raises(ValueError, match=r"params\['W'\] must have shape \(12, 3\) \(3 gates"):
        rnn.gru_step(x, h, W, U)
    with pytest.raises(ValueError, match=r"params\['U'\] must have shape \(4, 4\)"):
        rnn.rnn_step(x, h, W, U[:, :3])
    with pytest.raises(ValueError, match="h_prev must have shape"):
        rnn.rnn_step(x, h[:1], W, U)
    with pytest.raises(TypeError, match="c_prev must have dtype float32 or float64"):
        rnn.lstm_step(x, h, np.ones((2, 4), np.int32), np.zeros((16, 3)), np.zeros((16, 4)))
    with pytest.raises(ValueError, match="out must have shape"):
        rnn.rnn_step(x, h, W, U, out=np.empty((2, 5)))


def test_binding_rejects_bad_lengths_directly():
    if "cpu" not in BACKENDS:
        pytest.skip("no recfast._cpu")
    from recfast import _cpu

    xs, h0, _, p, _, _ = make_problem("rnn", 3, 2, 2, 3, lengths=None)
    h_last = np.empty((2, 3))
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, T\]"):
        _cpu.rnn_forward(0, 3, xs, h0, None, p["W"], p["U"], p["b"], None, np.array([1, 9]),
                         None, h_last, None, None, None, None, 1)  # fmt: skip
    with pytest.raises(ValueError, match="U must have shape"):
        _cpu.rnn_forward(0, 3, xs, h0, None, p["W"], p["U"][:2], p["b"], None, None, None,
                         h_last, None, None, None, None, 1)  # fmt: skip


# --------------------------------------------------------------------------- PyTorch
def _torch():
    return pytest.importorskip("torch", reason=TORCH_MISSING)


@pytest.mark.parametrize("cell", ["rnn_tanh", "rnn_relu", "gru", "lstm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_torch_with_variable_lengths(cell, backend):
    torch = _torch()
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.manual_seed(0)
    T, N, D, H = 6, 4, 3, 5
    kind = cell.split("_")[0]
    if kind == "rnn":
        mod = torch.nn.RNN(D, H, nonlinearity=cell.split("_")[1]).double()
    else:
        mod = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](D, H).double()
    k, act, p = rnn.from_torch(mod)
    assert k == kind
    rng = np.random.default_rng(0)
    xs, h0 = rng.standard_normal((T, N, D)), rng.standard_normal((N, H))
    c0 = rng.standard_normal((N, H)) if kind == "lstm" else None
    lens = np.array([6, 1, 4, 3])
    X = torch.tensor(xs, requires_grad=True)
    H0 = torch.tensor(h0[None], requires_grad=True)
    state = H0
    if kind == "lstm":
        C0 = torch.tensor(c0[None], requires_grad=True)
        state = (H0, C0)
    packed = pack_padded_sequence(X, torch.tensor(lens), enforce_sorted=False)
    y, hn = mod(packed, state)
    y, _ = pad_packed_sequence(y, total_length=T)
    hn, cn = hn if kind == "lstm" else (hn, None)
    res = rnn.rnn_forward(xs, h0, p, cell=kind, activation=act, c0=c0, lengths=lens,
                          return_cache=True, backend=backend)  # fmt: skip
    close(res.outputs, y.detach().numpy(), np.float64, "outputs")
    close(res.h_last, hn[0].detach().numpy(), np.float64, "h_last")
    go, gh = rng.standard_normal((T, N, H)), rng.standard_normal((N, H))
    loss = (y * torch.tensor(go)).sum() + (hn[0] * torch.tensor(gh)).sum()
    gc = None
    if kind == "lstm":
        close(res.c_last, cn[0].detach().numpy(), np.float64, "c_last")
        gc = rng.standard_normal((N, H))
        loss = loss + (cn[0] * torch.tensor(gc)).sum()
    loss.backward()
    g = rnn.rnn_backward(go, gh, res.cache, p, grad_c_last=gc, backend=backend)
    close(g["xs"], X.grad.numpy(), np.float64, "grad xs")
    close(g["h0"], H0.grad.numpy()[0], np.float64, "grad h0")
    if kind == "lstm":
        close(g["c0"], C0.grad.numpy()[0], np.float64, "grad c0")
    for ours, theirs in (("W", "weight_ih_l0"), ("U", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                         ("b_hh", "bias_hh_l0")):  # fmt: skip
        close(g[ours], getattr(mod, theirs).grad.numpy(), np.float64, f"grad {ours}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_cells_match_torch_cells(backend):
    torch = _torch()
    torch.manual_seed(1)
    N, D, H = 3, 4, 6
    rng = np.random.default_rng(1)
    x, h, c = rng.standard_normal((N, D)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    X, Hh, C = (torch.tensor(a) for a in (x, h, c))
    with torch.no_grad():
        m = torch.nn.RNNCell(D, H, nonlinearity="relu").double()
        _, act, p = rnn.from_torch(m)
        got = rnn.rnn_step(x, h, p["W"], p["U"], p["b_ih"] + p["b_hh"], activation=act,
                           backend=backend)  # fmt: skip
        close(got, m(X, Hh).numpy(), np.float64, "RNNCell")
        m = torch.nn.GRUCell(D, H).double()
        _, _, p = rnn.from_torch(m)
        got = rnn.gru_step(x, h, p["W"], p["U"], p["b_ih"], p["b_hh"], backend=backend)
        close(got, m(X, Hh).numpy(), np.float64, "GRUCell")
        m = torch.nn.LSTMCell(D, H).double()
        _, _, p = rnn.from_torch(m)
        h1, c1 = rnn.lstm_step(x, h, c, p["W"], p["U"], p["b_ih"] + p["b_hh"], backend=backend)
        th, tc = m(X, (Hh, C))
        close(h1, th.numpy(), np.float64, "LSTMCell h")
        close(c1, tc.numpy(), np.float64, "LSTMCell c")


@pytest.mark.parametrize("cell", CELLS)
def test_torch_state_dict_round_trip(cell):
    torch = _torch()
    rng = np.random.default_rng(3)
    D, H = 3, 4
    p = make_params(cell, D, H, np.float32, rng)
    mod = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell](D, H)
    mod.load_state_dict(rnn.to_torch_state_dict(p, cell=cell))
    xs, h0 = rng.standard_normal((5, 2, D)).astype(np.float32), np.zeros((2, H), np.float32)
    with torch.no_grad():
        y = mod(torch.from_numpy(xs))[0].numpy()
    close(rnn.rnn_forward(xs, h0, p, cell=cell).outputs, y, np.float32, "round trip")
    kind, _, back = rnn.from_torch(mod)
    assert kind == cell and set(back) == {"W", "U", "b_ih", "b_hh"}
    np.testing.assert_array_equal(back["W"], p["W"])


def test_top_level_exports():
    import recfast

    for name in ("rnn_forward", "rnn_backward", "rnn_step", "gru_step", "lstm_step", "rnn_output"):
        assert getattr(recfast, name) is getattr(rnn, name)


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("N", [16, 70])  # packed weights with 2 threads / BLAS products (N > 64)
def test_large_batch_paths_and_thread_counts(cell, N):
    """Both product paths of the native kernel, and thread counts, against the reference."""
    xs, h0, c0, p, lens, rng = make_problem(cell, 5, N, 24, 64, np.float64, seed=N)
    ref = run_forward_op("reference", cell, "tanh", xs, h0, c0, p, lens)
    go = rng.standard_normal((5, N, 64))
    gh = rng.standard_normal((N, 64))
    gc = rng.standard_normal((N, 64)) if cell == "lstm" else None
    gref = run_backward_op("reference", cell, "tanh", xs, p, lens, ref, go, gh, gc)
    for backend in BACKENDS:
        for nt in (1, 2):
            res = rnn.rnn_forward(xs, h0, p, cell=cell, c0=c0, lengths=lens, return_cache=True,
                                  num_threads=nt, backend=backend)  # fmt: skip
            close(res.outputs, ref["out"], np.float64, f"{backend} nt={nt} outputs")
            close(res.cache.states, ref["states"], np.float64, f"{backend} nt={nt} states")
            g = rnn.rnn_backward(go, gh, res.cache, p, grad_c_last=gc, num_threads=nt,
                                 backend=backend)  # fmt: skip
            for key in ("xs", "h0", "W", "U"):
                close(g[key], gref[key], np.float64, f"{backend} nt={nt} grad {key}")


def test_summed_bias_gradients_are_separate_arrays():
    xs, h0, _, p, _, _ = make_problem("rnn", 3, 2, 2, 3, lengths=None)
    split = {"W": p["W"], "U": p["U"], "b_ih": p["b"] * 0.5, "b_hh": p["b"] * 0.5}
    res = rnn.rnn_forward(xs, h0, split, return_cache=True)
    g = rnn.rnn_backward(np.ones_like(res.outputs), None, res.cache, split)
    assert g["b_ih"] is not g["b_hh"] and not np.shares_memory(g["b_ih"], g["b_hh"])
    np.testing.assert_array_equal(g["b_ih"], g["b_hh"])


_ISA_COPY = """
import os
import numpy as np
from recfast import _cpu
from recfast._backends import select
from recfast._kernel_args import RnnForwardArgs
level = os.environ["RECFAST_ISA"]
assert _cpu.simd_level() == level, (_cpu.simd_level(), level)
rng = np.random.default_rng(0)
# Shapes for every block of the dot-form kernel (gemm_nt.inc): 1-3 leftover rows, the 16-row
# chunks, K and unit tails, one step, and a layer too wide for it (D + H > 2048: the BLAS path).
shapes = [(4, 6, 5, 7), (1, 1, 3, 2), (2, 3, 33, 40), (3, 17, 16, 16), (1, 37, 20, 65),
          (2, 5, 2100, 9)]
for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
    for cell, G in (("rnn", 1), ("gru", 3), ("lstm", 4)):
        for T, N, D, H in shapes:
            xs = (rng.standard_normal((T, N, D)) / np.sqrt(D)).astype(dtype)
            h0 = rng.standard_normal((N, H)).astype(dtype)
            c0 = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
            W = rng.standard_normal((G * H, D)).astype(dtype)
            U = (rng.standard_normal((G * H, H)) * 0.3).astype(dtype)
            b = rng.standard_normal(G * H).astype(dtype)
            b2 = rng.standard_normal(G * H).astype(dtype) if cell == "gru" else None
            lens = rng.integers(0, T + 1, N)
            outs = {}
            for be in ("cpu", "reference"):
                out, hl = np.full((T, N, H), np.nan, dtype), np.full((N, H), np.nan, dtype)
                cl = np.full((N, H), np.nan, dtype) if cell == "lstm" else None
                select("rnn_forward", be)[1](RnnForwardArgs(cell, "tanh", xs, h0, c0, W, U, b, b2,
                                                            lens, out, hl, cl, None, None, None, 2))
                outs[be] = (out, hl, cl)
            for got, want in zip(outs["cpu"], outs["reference"]):
                if want is not None:
                    np.testing.assert_allclose(got, want, rtol=tol, atol=tol,
                                               err_msg=f"{level} {cell} {dtype} {(T, N, D, H)}")
print("ok")
"""


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_every_isa_copy(level):
    """The gate passes and the dot-form products of each instruction-set copy (RECFAST_ISA, in a
    subprocess: the level is read once per process), against the reference."""
    if "cpu" not in BACKENDS:
        pytest.skip("no recfast._cpu")
    import os
    import subprocess
    import sys

    from recfast import _cpu

    order = ["baseline", "avx2", "avx512"]
    if order.index(level) > order.index(_cpu.simd_level()):
        pytest.skip(f"this CPU runs {_cpu.simd_level()}, not {level}")
    res = subprocess.run([sys.executable, "-c", _ISA_COPY],
                         env={**os.environ, "RECFAST_ISA": level}, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr[-3000:]
