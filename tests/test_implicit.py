"""Implicit-feedback kernels (issue 14): native top-k, iALS half-sweep and BPR epoch, every live
backend against the reference, hand cases for the reference itself, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from recfast.implicit import als_half_sweep, bpr_epoch, prepare_bpr_epoch, topk
from recfast.testing import assert_close, live_backends

TOPK = live_backends("topk")
ALS = live_backends("als_half_sweep")
BPR = live_backends("bpr_epoch")
DTYPES = [np.float64, np.float32]


def _csr(rng, n_rows, n_cols, density, dtype=np.float64):
    m = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng, dtype=dtype)
    m.data[:] = rng.integers(1, 5, m.nnz)
    m.sort_indices()
    return m


# --- top-k ------------------------------------------------------------------------------------
def test_topk_hand_case():
    U = np.array([[1.0, 0.0], [0.0, 1.0]])
    V = np.array([[3.0, 0.0], [1.0, 1.0], [2.0, 5.0], [3.0, 1.0]])
    ex = sp.csr_matrix(np.array([[0, 0, 0, 1], [0, 0, 0, 0]]))
    for be in TOPK:
        ids, s = topk(U, V, 3, exclude=ex, backend=be)
        # user 0 scores 3, 1, 2, (3: excluded) -> 0, 2, 1; user 1 scores 0, 1, 5, 1 -> 2, 1, 3
        np.testing.assert_array_equal(ids, [[0, 2, 1], [2, 1, 3]], err_msg=be)
        np.testing.assert_array_equal(s, [[3, 2, 1], [5, 1, 1]], err_msg=be)


def test_topk_ties_go_to_the_lower_id_and_padding():
    U = np.ones((1, 2))
    V = np.ones((5, 2))
    for be in TOPK:
        ids, s = topk(U, V, 7, banned=[1], items=[4, 3, 1, 0], backend=be)
        np.testing.assert_array_equal(ids, [[0, 3, 4, -1, -1, -1, -1]], err_msg=be)
        assert np.isneginf(s[0, 3:]).all() and (s[0, :3] == 2).all()


def test_topk_never_returns_nan_or_minus_inf_scores():
    U = np.array([[1.0]])
    V = np.array([[np.nan], [-np.inf], [1.0], [2.0]])
    for be in TOPK:
        ids, _ = topk(U, V, 4, backend=be)
        np.testing.assert_array_equal(ids, [[3, 2, -1, -1]], err_msg=be)


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 70),
    n_items=st.integers(1, 60),
    k=st.integers(0, 9),
    n=st.integers(1, 12),
    seed=st.integers(0, 2**31),
    whitelist=st.booleans(),
    dtype=st.sampled_from(DTYPES),
)
def test_topk_matches_reference(m, n_items, k, n, seed, whitelist, dtype):
    rng = np.random.default_rng(seed)
    # Scores on a coarse grid, so ties happen and their order is checked too.
    U = rng.integers(-2, 3, (m, k)).astype(dtype)
    V = rng.integers(-2, 3, (n_items, k)).astype(dtype)
    b = rng.integers(-2, 3, n_items).astype(dtype)
    ex = _csr(rng, m, n_items, 0.3)
    ex.indices = ex.indices.astype(np.int64)
    items = rng.choice(n_items, rng.integers(1, n_items + 1), replace=False) if whitelist else None
    banned = rng.choice(n_items, min(2, n_items), replace=False)
    want = topk(U, V, n, item_bias=b, items=items, banned=banned, exclude=ex, backend="reference")
    for be in TOPK:
        got = topk(U, V, n, item_bias=b, items=items, banned=banned, exclude=ex, backend=be)
        np.testing.assert_array_equal(got[0], want[0], err_msg=be)
        np.testing.assert_array_equal(got[1], want[1], err_msg=be)


def test_topk_large_tiles_match_reference():
    """More items than one 4096-item tile and more users than one 32-row block, 2 threads."""
    rng = np.random.default_rng(1)
    U = rng.standard_normal((70, 8)).astype(np.float32)
    V = rng.standard_normal((9000, 8)).astype(np.float32)
    ex = _csr(rng, 70, 9000, 0.01)
    want = topk(U, V, 20, exclude=ex, backend="reference")
    for be in TOPK:
        got = topk(U, V, 20, exclude=ex, num_threads=2, backend=be)
        np.testing.assert_array_equal(got[0], want[0], err_msg=be)


def test_topk_does_not_modify_inputs():
    rng = np.random.default_rng(2)
    U, V = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    b = rng.standard_normal(6)
    copies = [x.copy() for x in (U, V, b)]
    for be in TOPK:
        topk(U, V, 2, item_bias=b, backend=be)
        for x, c in zip((U, V, b), copies):
            np.testing.assert_array_equal(x, c)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(n=0), ValueError, "n must be >= 1"),
        (dict(items=[0, 9]), ValueError, "items has entry 9"),
        (dict(banned=[-1]), ValueError, "banned has entry -1"),
        (dict(item_bias=np.zeros(5)), ValueError, "item_bias must have shape"),
        (dict(exclude=np.zeros((3, 6))), TypeError, "exclude must be a scipy.sparse"),
        (dict(exclude=sp.csr_matrix((2, 6))), ValueError, "exclude must have shape"),
        (dict(item_bias=np.zeros(6, np.float32)), TypeError, "item_bias has dtype float32"),
    ],
)
def test_topk_bad_input(kwargs, err, match):
    U, V = np.zeros((3, 2)), np.zeros((6, 2))
    n = kwargs.pop("n", 2)
    with pytest.raises(err, match=match):
        topk(U, V, n, **kwargs)


# --- iALS -------------------------------------------------------------------------------------
def _als_problem(seed, dtype, n_rows=30, n_cols=20, k=5):
    rng = np.random.default_rng(seed)
    R = _csr(rng, n_rows, n_cols, 0.25)
    conf = (1 + 2 * R.data).astype(dtype)
    Y = (rng.standard_normal((n_cols, k)) * 0.3).astype(dtype)
    X = (rng.standard_normal((n_rows, k)) * 0.3).astype(dtype)
    return R, conf, X, Y


def _exact(R, conf, Y, reg):
    """Hu et al.'s normal equations, solved with numpy in float64: the hand-checked oracle."""
    Y = Y.astype(np.float64)
    out = np.zeros((R.shape[0], Y.shape[1]))
    for u in range(R.shape[0]):
        js = R.indices[R.indptr[u] : R.indptr[u + 1]]
        c = conf[R.indptr[u] : R.indptr[u + 1]].astype(np.float64)
        A = Y.T @ Y + reg * np.eye(Y.shape[1]) + (Y[js] * (c - 1)[:, None]).T @ Y[js]
        out[u] = np.linalg.solve(A, (Y[js] * c[:, None]).sum(axis=0))
    return out


def test_als_cholesky_reference_solves_the_normal_equations():
    R, conf, X, Y = _als_problem(0, np.float64)
    als_half_sweep(R.indptr, R.indices, conf, X, Y, regularization=0.1, cg_steps=0,
                   backend="reference")  # fmt: skip
    np.testing.assert_allclose(X, _exact(R, conf, Y, 0.1), rtol=1e-10, atol=1e-12)


def test_als_cg_converges_to_the_exact_solution():
    R, conf, X, Y = _als_problem(1, np.float64)
    for be in ALS:
        Xb = X.copy()
        for _ in range(30):  # warm-started CG steps accumulate to the exact solve
            als_half_sweep(R.indptr, R.indices, conf, Xb, Y, regularization=0.1, backend=be)
        np.testing.assert_allclose(Xb, _exact(R, conf, Y, 0.1), rtol=1e-6, atol=1e-8, err_msg=be)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cg_steps", [3, 0, 1])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_als_matches_reference(dtype, cg_steps, index_dtype):
    R, conf, X, Y = _als_problem(2, dtype)
    idx = R.indices.astype(index_dtype)
    want = X.copy()
    als_half_sweep(R.indptr, idx, conf, want, Y, regularization=0.05, cg_steps=cg_steps,
                   backend="reference")  # fmt: skip
    for be in ALS:
        for nt in (1, 2):
            got = np.full_like(X, np.nan)
            got[...] = X
            als_half_sweep(R.indptr, idx, conf, got, Y, regularization=0.05, cg_steps=cg_steps,
                           num_threads=nt, backend=be)  # fmt: skip
            assert_close(got, want, dtype, f"{be} nt={nt}")


def test_als_rows_and_gram():
    R, conf, X, Y = _als_problem(3, np.float64)
    rows = np.array([4, 0, 7])
    for be in ALS:
        got = X.copy()
        als_half_sweep(R.indptr, R.indices, conf, got, Y, regularization=0.1, cg_steps=0,
                       rows=rows, gram=Y.T @ Y, backend=be)  # fmt: skip
        np.testing.assert_allclose(got[rows], _exact(R, conf, Y, 0.1)[rows], rtol=1e-9)
        untouched = np.setdiff1d(np.arange(X.shape[0]), rows)
        np.testing.assert_array_equal(got[untouched], X[untouched])


def test_als_singular_system_raises():
    # Y of rank 1 and no regularization: every row's system is singular (Cholesky); CG stays
    # finite there (the right side lies in A's range) but overflows on huge factors.
    R, conf, X, _ = _als_problem(4, np.float64, k=3)
    for be in ALS:
        with pytest.raises(FloatingPointError, match="singular"):
            als_half_sweep(R.indptr, R.indices, conf, X.copy(), np.ones((20, 3)),
                           regularization=0.0, cg_steps=0, backend=be)  # fmt: skip
        with pytest.raises(FloatingPointError, match="non-finite"):
            als_half_sweep(R.indptr, R.indices, conf.astype(np.float32), X.astype(np.float32),
                           np.full((20, 3), 1e20, np.float32), regularization=0.0,
                           backend=be)  # fmt: skip


@pytest.mark.parametrize(
    "change, err, match",
    [
        (lambda a: a.update(conf=-a["conf"]), ValueError, "confidence must be finite and > 0"),
        (lambda a: a["conf"].__setitem__(0, np.nan), ValueError, "confidence must be finite"),
        (lambda a: a.update(indices=a["indices"] + 100), ValueError, "indices has entry"),
        (lambda a: a.update(indptr=a["indptr"][:-1]), ValueError, "indptr must have shape"),
        (lambda a: a.update(Y=a["Y"][:, :2].copy()), ValueError, "X and Y must have the same k"),
        (lambda a: a.update(Y=a["Y"].astype(np.float32)), TypeError, "Y has dtype float32"),
        (lambda a: a.update(X=a["X"][:, ::2]), ValueError, "C-contiguous"),
        (lambda a: a.update(reg=-1.0), ValueError, "regularization must be >= 0"),
    ],
)
def test_als_bad_input(change, err, match):
    R, conf, X, Y = _als_problem(5, np.float64)
    a = dict(indptr=R.indptr, indices=R.indices, conf=conf, X=X, Y=Y, reg=0.1)
    change(a)
    before = a["X"].copy()
    with pytest.raises(err, match=match):
        als_half_sweep(a["indptr"], a["indices"], a["conf"], a["X"], a["Y"],
                       regularization=a["reg"])  # fmt: skip
    np.testing.assert_array_equal(a["X"], before)


# --- BPR --------------------------------------------------------------------------------------
def _bpr_problem(seed, dtype, n_users=25, n_items=15, k=4):
    rng = np.random.default_rng(seed)
    R = _csr(rng, n_users, n_items, 0.3)
    U = ((rng.random((n_users, k)) - 0.5) / k).astype(dtype)
    V = ((rng.random((n_items, k)) - 0.5) / k).astype(dtype)
    b = (rng.standard_normal(n_items) * 0.1).astype(dtype)
    return R, U, V, b


def test_bpr_one_step_by_hand():
    """One user, one positive (item 0), two items: the sampled negative is item 1 or skipped."""
    R = sp.csr_matrix(np.array([[1.0, 0.0]]))
    U, V, b = np.array([[0.5, -0.2]]), np.array([[0.1, 0.3], [0.4, -0.1]]), np.array([0.2, 0.0])
    r = bpr_epoch(R.indptr, R.indices, U, V, item_bias=b, learning_rate=0.1,
                  regularization=0.01, n_samples=1, seed=0, backend="reference")  # fmt: skip
    if r.skipped:  # the negative drawn was item 0
        return
    u0, v0, v1 = np.array([0.5, -0.2]), np.array([0.1, 0.3]), np.array([0.4, -0.1])
    x = u0 @ (v0 - v1) + 0.2
    z = 1 / (1 + np.exp(x))
    np.testing.assert_allclose(U[0], u0 + 0.1 * (z * (v0 - v1) - 0.01 * u0))
    np.testing.assert_allclose(V[0], v0 + 0.1 * (z * u0 - 0.01 * v0))
    np.testing.assert_allclose(V[1], v1 + 0.1 * (-z * u0 - 0.01 * v1))
    np.testing.assert_allclose(b, [0.2 + 0.1 * (z - 0.01 * 0.2), -0.1 * z])
    assert r.loss == pytest.approx(np.log1p(np.exp(-x))) and r.correct == float(x > 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("negatives", ["uniform", "popularity"])
@pytest.mark.parametrize("bias", [True, False])
def test_bpr_matches_reference_on_one_thread(dtype, negatives, bias):
    R, U, V, b = _bpr_problem(6, dtype)
    b = b if bias else None
    state = [x.copy() if x is not None else None for x in (U, V, b)]
    want = bpr_epoch(R.indptr, R.indices, *state[:2], item_bias=state[2], learning_rate=0.05,
                     regularization=0.01, n_samples=300, seed=7, negatives=negatives,
                     backend="reference")  # fmt: skip
    assert want.skipped > 0 and want.updated + want.skipped == 300
    for be in BPR:
        got_state = [x.copy() if x is not None else None for x in (U, V, b)]
        got = bpr_epoch(R.indptr, R.indices, *got_state[:2], item_bias=got_state[2],
                        learning_rate=0.05, regularization=0.01, n_samples=300, seed=7,
                        negatives=negatives, num_threads=1, backend=be)  # fmt: skip
        assert (got.updated, got.skipped) == (want.updated, want.skipped), be
        assert got.loss == pytest.approx(want.loss, rel=1e-5 if dtype == np.float32 else 1e-12)
        for g, w in zip(got_state, state):
            if w is not None:
                assert_close(g, w, dtype, be)


def test_bpr_skips_positives_as_negatives():
    # Every item is a positive of every user: every sample is skipped, nothing changes.
    R = sp.csr_matrix(np.ones((3, 4)))
    U, V = np.full((3, 2), 0.1), np.full((4, 2), 0.2)
    for be in BPR:
        r = bpr_epoch(R.indptr, R.indices, U, V, learning_rate=0.1, regularization=0.0,
                      n_samples=100, backend=be)  # fmt: skip
        assert r.skipped == 100 and r.updated == 0
        assert (U == 0.1).all() and (V == 0.2).all()


@pytest.mark.parametrize("be", BPR)
def test_bpr_learns_on_several_threads(be):
    """Hogwild on 2 threads is not reproducible, but it must learn: the fraction of correctly
    ordered pairs rises well above chance."""
    rng = np.random.default_rng(8)
    n_users, n_items = 200, 100
    # Each user likes items of its own half: a structure BPR learns quickly.
    rows = np.repeat(np.arange(n_users), 10)
    cols = (rng.integers(0, 50, rows.size) + 50 * (rows % 2)).astype(np.int64)
    R = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_users, n_items))
    R.sum_duplicates()
    U = (rng.random((n_users, 8)) - 0.5) / 8
    V = (rng.random((n_items, 8)) - 0.5) / 8
    epoch = prepare_bpr_epoch(R.indptr, R.indices, U, V, item_bias=np.zeros(n_items),
                              learning_rate=0.1, regularization=0.001, n_samples=20000,
                              num_threads=2, backend=be)  # fmt: skip
    first = epoch(seed=0).correct
    for s in range(1, 10):
        last = epoch(seed=s).correct
    assert first < 0.75 < last


def test_bpr_divergence_raises():
    R, U, V, b = _bpr_problem(9, np.float64)
    U *= 1e150
    V *= 1e150
    for be in BPR:
        with pytest.raises(FloatingPointError, match="BPR diverged"):
            bpr_epoch(R.indptr, R.indices, U.copy(), V.copy(), learning_rate=1e10,
                      regularization=0.0, n_samples=2000, backend=be)  # fmt: skip


def test_bpr_bad_input():
    R, U, V, b = _bpr_problem(10, np.float64)
    unsorted = R.copy()
    row = np.flatnonzero(np.diff(unsorted.indptr) >= 2)[0]
    lo = unsorted.indptr[row]
    unsorted.indices[lo], unsorted.indices[lo + 1] = unsorted.indices[lo + 1], unsorted.indices[lo]
    with pytest.raises(ValueError, match="strictly ascending"):
        bpr_epoch(unsorted.indptr, unsorted.indices, U, V, learning_rate=0.1, regularization=0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        bpr_epoch(R.indptr, R.indices, U, V, learning_rate=0.0, regularization=0)
    with pytest.raises(ValueError, match="negatives must be"):
        bpr_epoch(R.indptr, R.indices, U, V, learning_rate=0.1, regularization=0, negatives="x")
    with pytest.raises(ValueError, match="empty"):
        e = sp.csr_matrix(U.shape)
        bpr_epoch(e.indptr, e.indices, U, V[:, :], learning_rate=0.1, regularization=0)
