"""The Numba rnn fallback's two time-loop drivers (inside njit for small per-step products, in
Python around NumPy's BLAS for large ones) against the reference, whichever one a shape picks."""

import numpy as np
import pytest

from recfast._backends.reference import rnn as ref
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs
from recfast.testing import live_backends

pytestmark = pytest.mark.skipif(
    "numba" not in live_backends("rnn_forward"), reason="numba backend not live"
)

G = {"rnn": 1, "gru": 3, "lstm": 4}


def run(mod, cell, act, xs, h0, c0, W, U, b_ih, b_hh, lens, go, gh, gc):
    T, N, _ = xs.shape
    H, dt = h0.shape[1], xs.dtype
    lstm = cell == "lstm"
    f = dict(out=np.full((T, N, H), np.nan, dt), h_last=np.full((N, H), np.nan, dt),
             c_last=np.full((N, H), np.nan, dt) if lstm else None,
             states=np.full((T + 1, N, H), np.nan, dt),
             cells=np.full((T + 1, N, H), np.nan, dt) if lstm else None,
             gates=np.full((T, N, 4 * H), np.nan, dt) if cell != "rnn" else None)  # fmt: skip
    mod.rnn_forward(RnnForwardArgs(cell, act, xs, h0, c0, W, U, b_ih, b_hh, lens, f["out"],
                                   f["h_last"], f["c_last"], f["states"], f["cells"], f["gates"],
                                   1))  # fmt: skip
    g = dict(xs=np.full_like(xs, np.nan), h0=np.full_like(h0, np.nan),
             c0=np.full_like(h0, np.nan) if lstm else None, W=np.full_like(W, np.nan),
             U=np.full_like(U, np.nan), b_ih=np.full(W.shape[0], np.nan, dt),
             b_hh=np.full(W.shape[0], np.nan, dt))  # fmt: skip
    mod.rnn_backward(RnnBackwardArgs(
        cell, act, xs, W, U, lens, f["states"], f["cells"], f["gates"], go, gh, gc, g["xs"],
        g["h0"], g["c0"], g["W"], g["U"], g["b_ih"], g["b_hh"], 1,
    ))  # fmt: skip
    # without a cache (ping-pong buffers), the same outputs
    out2, h2 = np.full((T, N, H), np.nan, dt), np.full((N, H), np.nan, dt)
    c2 = np.full((N, H), np.nan, dt) if lstm else None
    mod.rnn_forward(RnnForwardArgs(cell, act, xs, h0, c0, W, U, b_ih, b_hh, lens, out2, h2, c2,
                                   None, None, None, 1))  # fmt: skip
    np.testing.assert_array_equal(out2, f["out"])
    np.testing.assert_array_equal(h2, f["h_last"])
    return {**f, **{"d" + k: v for k, v in g.items()}}


@pytest.mark.parametrize("driver", ["njit", "python"])
@pytest.mark.parametrize("cell,act", [("rnn", "tanh"), ("rnn", "relu"), ("gru", None),
                                      ("lstm", None)])  # fmt: skip
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_both_drivers_match_reference(monkeypatch, driver, cell, act, dtype):
    from recfast._backends.numba import rnn as nb

    monkeypatch.setattr(nb, "_PY_LOOP_MIN", 1 << 62 if driver == "njit" else 0)
    rng = np.random.default_rng(7)
    T, N, D, H = 6, 5, 4, 3
    xs = rng.standard_normal((T, N, D)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((N, H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((N, H))).astype(dtype) if cell == "lstm" else None
    W = (rng.standard_normal((G[cell] * H, D)) / 2).astype(dtype)
    U = (rng.standard_normal((G[cell] * H, H)) / 2).astype(dtype)
    b_ih = (0.1 * rng.standard_normal(G[cell] * H)).astype(dtype)
    b_hh = (0.1 * rng.standard_normal(G[cell] * H)).astype(dtype) if cell == "gru" else None
    lens = np.array([6, 0, 3, 1, 5], np.int64)
    go = rng.standard_normal((T, N, H)).astype(dtype)
    gh = rng.standard_normal((N, H)).astype(dtype)
    gc = rng.standard_normal((N, H)).astype(dtype) if cell == "lstm" else None
    args = (cell, act, xs, h0, c0, W, U, b_ih, b_hh, lens, go, gh, gc)
    want, got = run(ref, *args), run(nb, *args)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for key, w in want.items():
        if w is None:
            assert got[key] is None
            continue
        np.testing.assert_allclose(got[key], w, rtol=0, atol=tol, err_msg=key)


def test_overlapping_calls_leave_the_blas_pools_as_found():
    import threading

    from threadpoolctl import threadpool_info

    import recfast

    rng = np.random.default_rng(0)
    T, N, D, H = 20, 16, 32, 48  # products above OpenBLAS's one-thread threshold: scoped
    xs = rng.standard_normal((T, N, D)).astype(np.float32)
    h0 = np.zeros((N, H), np.float32)
    p = {"W": (0.2 * rng.standard_normal((3 * H, D))).astype(np.float32),
         "U": (0.2 * rng.standard_normal((3 * H, H))).astype(np.float32)}  # fmt: skip
    want = recfast.rnn_forward(xs, h0, p, cell="gru", num_threads=1, backend="reference").outputs

    def pools():
        return sorted((i["filepath"], i["num_threads"]) for i in threadpool_info()
                      if i["user_api"] == "blas")  # fmt: skip

    # a first call loads SciPy's BLAS too (Numba's np.dot), so that both pools are listed
    recfast.rnn_forward(xs, h0, p, cell="gru", num_threads=1, backend="numba")
    before, results, errors = pools(), [None] * 4, []

    def work(i):
        try:
            for _ in range(5):
                res = recfast.rnn_forward(xs, h0, p, cell="gru", return_cache=True,
                                          num_threads=1 + i % 2, backend="numba")  # fmt: skip
                recfast.rnn_backward(None, np.ones((N, H), np.float32), res.cache, p,
                                     num_threads=1 + i % 2, backend="numba")  # fmt: skip
            results[i] = res.outputs
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert pools() == before
    for r in results:
        np.testing.assert_allclose(r, want, rtol=1e-5, atol=1e-6)
