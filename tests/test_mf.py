"""sgd_mf_epoch and mf_block_layout: every live backend against the NumPy reference (issue #2)."""

import threading

import numpy as np
import pytest
from conftest import MF_BACKENDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recfast
from recfast.testing import TOLERANCE, assert_close, random_mf_problem

FAST = [b for b in MF_BACKENDS if b != "reference"]


def run_epochs(p, backend, epochs=3, ada=False, biased=True, **kw):
    U, V, ub, ib = p.copy_state()
    dt = U.dtype
    acc = dict(user_accum=np.ones(len(U), dt), item_accum=np.ones(len(V), dt)) if ada else {}
    bias = dict(user_bias=ub, item_bias=ib) if biased else {}
    losses = [
        recfast.sgd_mf_epoch(
            p.rows,
            p.cols,
            p.values,
            U,
            V,
            global_mean=3.0,
            learning_rate=0.05,
            regularization=0.02,
            bias_regularization=0.01,
            backend=backend,
            **bias,
            **acc,
            **kw,
        )
        for _ in range(epochs)
    ]
    return U, V, ub, ib, losses, acc


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("ada", [False, True], ids=["sgd", "adagrad"])
@pytest.mark.parametrize("biased", [True, False], ids=["bias", "nobias"])
def test_matches_reference_one_thread(backend, dtype, index_dtype, ada, biased):
    p = random_mf_problem(40, 30, 700, 13, dtype=dtype, index_dtype=index_dtype, seed=1)
    order = np.random.default_rng(2).permutation(700)[:600]
    ref = run_epochs(p, "reference", ada=ada, biased=biased, order=order, num_threads=1)
    out = run_epochs(p, backend, ada=ada, biased=biased, order=order, num_threads=1)
    for name, a, b in zip(("U", "V", "ub", "ib"), out[:4], ref[:4]):
        assert_close(a, b, dtype, name)
    np.testing.assert_allclose(out[4], ref[4], rtol=TOLERANCE[np.dtype(dtype)] * 10)
    for key in out[5]:
        assert_close(out[5][key], ref[5][key], dtype, key)
    if not biased:
        assert np.array_equal(out[2], p.user_bias)  # untouched when not passed


def test_reference_hand_computed():
    # One rating, k=1: pred = 3 + 0.1 + 0.2 + 0.5*0.4 = 3.5, e = 0.5.
    U, V = np.array([[0.5]]), np.array([[0.4]])
    ub, ib = np.array([0.1]), np.array([0.2])
    loss = recfast.sgd_mf_epoch(
        [0],
        [0],
        np.array([4.0]),
        U,
        V,
        user_bias=ub,
        item_bias=ib,
        global_mean=3.0,
        learning_rate=0.1,
        regularization=0.5,
        bias_regularization=0.0,
        backend="reference",
    )
    assert loss == pytest.approx(0.25)
    assert U[0, 0] == pytest.approx(0.5 + 0.1 * (0.5 * 0.4 - 0.5 * 0.5))
    assert V[0, 0] == pytest.approx(0.4 + 0.1 * (0.5 * 0.5 - 0.5 * 0.4))
    assert ub[0] == pytest.approx(0.15) and ib[0] == pytest.approx(0.25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_users=st.integers(1, 30),
    n_items=st.integers(1, 30),
    nnz=st.integers(0, 200),
    k=st.integers(1, 40),
    f32=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes(n_users, n_items, nnz, k, f32, seed):
    dtype = np.float32 if f32 else np.float64
    p = random_mf_problem(n_users, n_items, nnz, k, dtype=dtype, seed=seed)
    ref = run_epochs(p, "reference", epochs=2, num_threads=1)
    for backend in FAST:
        out = run_epochs(p, backend, epochs=2, num_threads=1)
        for a, b in zip(out[:4], ref[:4]):
            assert_close(a, b, dtype, backend)


@pytest.mark.parametrize("backend", MF_BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_layout_identical_across_backends(backend, dtype):
    p = random_mf_problem(57, 23, 3000, 4, dtype=dtype, seed=3)
    ref = recfast.mf_block_layout(p.rows, p.cols, p.values, 57, 23, 5, seed=99, backend="reference")
    out = recfast.mf_block_layout(p.rows, p.cols, p.values, 57, 23, 5, seed=99, backend=backend)
    for a, b in zip(out, ref):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    rows, cols, values, bp = out
    # a permutation of the input, stratum-major blocks that share no user or item in a stratum
    key = lambda r, c, v: sorted(zip(r.tolist(), c.tolist(), v.tolist()))  # noqa: E731
    assert key(rows, cols, values) == key(p.rows, p.cols, p.values)
    nb = 5
    for s in range(nb):
        users, items = set(), set()
        for b in range(nb):
            lo, hi = bp[s * nb + b], bp[s * nb + b + 1]
            u, i = set(rows[lo:hi].tolist()), set(cols[lo:hi].tolist())
            assert not (u & users) and not (i & items)
            users |= u
            items |= i
            assert np.all(np.diff(rows[lo:hi]) >= 0)  # users ascend within a block


def test_block_layout_without_seed_is_stable():
    rows = np.array([1, 0, 1, 0], np.int32)
    cols = np.array([0, 1, 1, 0], np.int32)
    vals = np.array([1.0, 2.0, 3.0, 4.0])
    r, c, v, bp = recfast.mf_block_layout(rows, cols, vals, 2, 2, 1)
    np.testing.assert_array_equal(r, [0, 0, 1, 1])
    np.testing.assert_array_equal(v, [2.0, 4.0, 1.0, 3.0])
    np.testing.assert_array_equal(bp, [0, 4])


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("backend", MF_BACKENDS)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_blocked_schedule_equals_sequential(backend, threads):
    # Large enough to run in parallel (the kernels go parallel above 16384 ratings).
    n = 20000 if backend != "reference" else 3000
    p = random_mf_problem(300, 200, n, 8, dtype=np.float64, seed=4)
    rows, cols, values, bp = recfast.mf_block_layout(p.rows, p.cols, p.values, 300, 200, 6, seed=1)
    p.rows, p.cols, p.values = rows, cols, values
    seq = run_epochs(p, "reference" if backend == "reference" else backend, epochs=2, num_threads=1)
    blk = run_epochs(p, backend, epochs=2, block_ptr=bp, n_blocks=6, num_threads=threads)
    for a, b in zip(blk[:5], seq[:5]):
        assert_close(a, b, np.float64)


@pytest.mark.parametrize("backend", FAST)
def test_blocked_schedule_is_bit_reproducible_in_parallel(backend):
    p = random_mf_problem(500, 300, 40000, 16, dtype=np.float32, seed=5)
    rows, cols, values, bp = recfast.mf_block_layout(p.rows, p.cols, p.values, 500, 300, 8)
    p.rows, p.cols, p.values = rows, cols, values
    a = run_epochs(p, backend, block_ptr=bp, n_blocks=8, num_threads=2)
    b = run_epochs(p, backend, block_ptr=bp, n_blocks=8, num_threads=1)
    for x, y in zip(a[:4], b[:4]):
        np.testing.assert_array_equal(x, y)
    if backend == "cpu":
        assert a[4] == b[4]  # the loss too: per-block sums added in a fixed order
    else:  # Numba's parfor may fuse the final sum differently; the factors above are exact
        np.testing.assert_allclose(a[4], b[4], rtol=1e-12)


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("backend", FAST)
def test_hogwild_converges(backend):
    # Several threads race on shared rows: not bit-reproducible, so check the loss statistically.
    rng = np.random.default_rng(6)
    n_users, n_items, k = 400, 300, 8
    Ut, Vt = rng.standard_normal((n_users, 4)), rng.standard_normal((n_items, 4))
    rows, cols = rng.integers(0, n_users, 60000), rng.integers(0, n_items, 60000)
    values = (Ut[rows] * Vt[cols]).sum(1).astype(np.float32)
    U = (rng.standard_normal((n_users, k)) * 0.1).astype(np.float32)
    V = (rng.standard_normal((n_items, k)) * 0.1).astype(np.float32)
    losses = [
        recfast.sgd_mf_epoch(
            rows,
            cols,
            values,
            U,
            V,
            learning_rate=0.02,
            regularization=0.001,
            num_threads=2,
            backend=backend,
        )
        / 60000
        for _ in range(30)
    ]
    assert losses[-1] < 0.1 * losses[0]
    assert losses[-1] < 0.05


@pytest.mark.parametrize("backend", MF_BACKENDS)
def test_empty_input_is_noop(backend):
    p = random_mf_problem(5, 4, 0, 3, seed=7)
    U, V, ub, ib = p.copy_state()
    loss = recfast.sgd_mf_epoch(
        p.rows,
        p.cols,
        p.values,
        U,
        V,
        user_bias=ub,
        item_bias=ib,
        learning_rate=0.1,
        regularization=0.1,
        backend=backend,
    )
    assert loss == 0.0
    np.testing.assert_array_equal(U, p.user_factors)


@pytest.mark.parametrize("backend", MF_BACKENDS)
def test_divergence_raises_floating_point_error(backend):
    p = random_mf_problem(20, 20, 400, 8, dtype=np.float32, seed=8)
    U, V, _, _ = p.copy_state()
    p.values *= 1e6
    with pytest.raises(FloatingPointError, match="diverged"):
        for _ in range(20):
            recfast.sgd_mf_epoch(
                p.rows,
                p.cols,
                p.values,
                U,
                V,
                learning_rate=10.0,
                regularization=0.0,
                backend=backend,
            )


@pytest.mark.parametrize("backend", FAST)
def test_gil_released_concurrent_calls(backend):
    """Two Python threads on separate models: results equal to the same calls run one by one."""
    probs = [random_mf_problem(2000, 1000, 200000, 32, dtype=np.float32, seed=s) for s in (9, 10)]
    expected = [run_epochs(p, backend, epochs=2, num_threads=1) for p in probs]
    results = [None, None]
    started = threading.Barrier(2)

    def work(j):
        started.wait()
        results[j] = run_epochs(probs[j], backend, epochs=2, num_threads=1)

    threads = [threading.Thread(target=work, args=(j,)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected):
        for a, b in zip(got[:4], exp[:4]):
            np.testing.assert_array_equal(a, b)


def test_gil_is_released_during_kernel():
    """While one thread runs a long kernel, another Python thread keeps running."""
    if "cpu" not in MF_BACKENDS:
        pytest.skip("cpu backend not built")
    p = random_mf_problem(5000, 3000, 2_000_000, 64, dtype=np.float32, seed=11)
    U, V, _, _ = p.copy_state()
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.001)

    t = threading.Thread(target=ticker)
    t.start()
    recfast.sgd_mf_epoch(
        p.rows,
        p.cols,
        p.values,
        U,
        V,
        learning_rate=0.01,
        regularization=0.01,
        num_threads=1,
        backend="cpu",
    )
    done.set()
    t.join()
    assert len(ticks) > 5


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("k", [1, 7, 16, 32, 33, 64, 128, 200])
def test_every_k_matches_reference(backend, k):
    """The cpu kernel has compile-time copies for k in {16, 32, 64, 128} and a runtime loop."""
    p = random_mf_problem(30, 20, 300, k, dtype=np.float64, seed=k)
    ref = run_epochs(p, "reference", epochs=2, num_threads=1)
    out = run_epochs(p, backend, epochs=2, num_threads=1)
    for a, b in zip(out[:4], ref[:4]):
        assert_close(a, b, np.float64, f"k={k}")
    ada_ref = run_epochs(p, "reference", epochs=2, ada=True, num_threads=1)
    ada_out = run_epochs(p, backend, epochs=2, ada=True, num_threads=1)
    for a, b in zip(ada_out[:4], ada_ref[:4]):
        assert_close(a, b, np.float64, f"adagrad k={k}")


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_block_layout_parallel_pass_matches(threads):
    """The cpu layout's second pass runs block by block on several threads: same result."""
    if not {"cpu", "numba"} <= set(MF_BACKENDS):
        pytest.skip("needs the cpu and numba backends")
    p = random_mf_problem(3000, 700, 100_000, 1, dtype=np.float32, seed=12)
    ref = recfast.mf_block_layout(p.rows, p.cols, p.values, 3000, 700, 7, seed=5, backend="numba")
    out = recfast.mf_block_layout(
        p.rows, p.cols, p.values, 3000, 700, 7, seed=5, num_threads=threads, backend="cpu"
    )
    for a, b in zip(out, ref):
        np.testing.assert_array_equal(a, b)
