"""ImplicitALS and BPR estimators (issue 14): fit, recommend (both user_items readings),
similarity, explain, fold-in, save/load, bad input; against implicit 0.7 when installed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recfast import BPR, ImplicitALS
from recfast.testing import live_backends

ALS_BACKENDS = live_backends("als_half_sweep")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n_users, n_items = 120, 60
    # Two taste groups: users of group g like items of group g.
    rows = np.repeat(np.arange(n_users), 8)
    cols = rng.integers(0, 30, rows.size) + 30 * (rows % 2)
    R = sp.csr_matrix((rng.integers(1, 4, rows.size).astype(np.float64), (rows, cols)),
                      shape=(n_users, n_items))  # fmt: skip
    return R


@pytest.fixture(scope="module")
def als(data):
    return ImplicitALS(factors=8, regularization=0.1, iterations=8, random_state=0).fit(data)


@pytest.fixture(scope="module")
def bpr(data):
    return BPR(factors=8, learning_rate=0.05, iterations=40, random_state=0).fit(data)


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_recommendations_follow_the_taste_groups(model, request, data):
    m = request.getfixturevalue(model)
    ids, scores = m.recommend(np.arange(20), data, N=5)
    assert ids.shape == (20, 5) and scores.shape == (20, 5)
    groups = ids // 30
    assert (groups == (np.arange(20) % 2)[:, None]).mean() > 0.9
    liked = data[np.arange(20)].toarray() > 0
    assert not liked[np.arange(20)[:, None], ids].any()  # already-liked items filtered
    assert (np.diff(scores, axis=1) <= 0).all()


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_recommend_accepts_whole_matrix_or_requested_rows(model, request, data):
    m = request.getfixturevalue(model)
    users = np.array([5, 3, 17])
    a = m.recommend(users, data, N=4)
    b = m.recommend(users, data[users], N=4)
    np.testing.assert_array_equal(a[0], b[0])
    one = m.recommend(3, data, N=4)
    np.testing.assert_array_equal(one[0], a[0][1])
    with pytest.raises(
        ValueError, match=r"expected one row per requested user \(3 rows\) or the whole"
    ):
        m.recommend(users, data[:7], N=4)
    with pytest.raises(ValueError, match="columns, but the model has 60 items"):
        m.recommend(users, data[users][:, :50], N=4)


def test_recommend_filters_and_short_results(als, data):
    ids, _ = als.recommend(0, data, N=10, filter_items=np.arange(30, 60), items=np.arange(25, 40))
    assert set(ids) <= set(range(25, 30)) and len(ids) <= 5
    ids, s = als.recommend(np.array([0, 1]), data, N=70)  # more than the items left
    assert ids.shape == (2, 70) and (ids[:, -1] == -1).all() and np.isneginf(s[:, -1]).all()
    nofilter, _ = als.recommend(0, None, N=60, filter_already_liked_items=False)
    assert len(nofilter) == 60


def test_recommend_matches_brute_force(als, data):
    U, V = als.user_factors, als.item_factors
    users = np.arange(als.user_factors.shape[0])
    ids, scores = als.recommend(users, data, N=7)
    S = U @ V.T
    S[data.toarray() > 0] = -np.inf
    want = np.argsort(-S, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(ids, want)


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_similar_items_and_users_are_cosine(model, request):
    m = request.getfixturevalue(model)
    ids, s = m.similar_items(3, N=5)
    V = np.asarray(m.item_factors, np.float64)
    cos = (V @ V[3]) / (np.linalg.norm(V, axis=1) * np.linalg.norm(V[3]))
    assert ids[0] == 3 and s[0] == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(s, cos[ids], atol=1e-5)
    assert cos[ids[-1]] >= np.sort(cos)[-5] - 1e-6
    ids2, _ = m.similar_items(np.array([3, 4]), N=5)
    np.testing.assert_array_equal(ids2[0], ids)
    uids, _ = m.similar_users(7, N=3)
    assert uids[0] == 7


def test_explain_decomposes_the_recalculated_score(als, data):
    score, top, weights = als.explain(4, data, 10, N=100)
    x = als.recalculate_user(4, data)
    assert score == pytest.approx(float(np.asarray(x, np.float64) @ als.item_factors[10]), rel=1e-4)
    assert sum(c for _, c in top) == pytest.approx(score, rel=1e-9)
    assert [i for i, _ in top] == sorted(data[4].indices, key=lambda j: -dict(top)[j])
    again = als.explain(4, data[4], 10, user_weights=weights, N=2)
    assert again[0] == pytest.approx(score) and again[1] == top[:2]


def test_als_partial_fit_users_equals_recalculate_and_grows(als, data):
    m = ImplicitALS(**als.get_params()).fit(data)
    rows = data[[2, 9]]
    want = np.asarray(m.recalculate_user(np.array([2, 9]), rows))
    m.partial_fit_users(np.array([2, 130]), rows)
    assert m.user_factors.shape[0] == 131
    np.testing.assert_allclose(m.user_factors[[2, 130]], want, rtol=1e-5)
    assert not m.user_factors[120:130].any()
    ids_rt, _ = m.recommend(130, rows[1], N=5, recalculate_user=True)
    ids_st, _ = m.recommend(130, rows[1], N=5)
    np.testing.assert_array_equal(ids_rt, ids_st)


def test_als_fold_in_is_the_exact_least_squares_solution(als, data):
    x = np.asarray(als.recalculate_user(6, data), np.float64)
    Y = np.asarray(als.item_factors, np.float64)
    js, r = data[6].indices, data[6].data
    c = 1 + als.alpha * r
    A = Y.T @ Y + als.regularization * np.eye(Y.shape[1]) + (Y[js] * (c - 1)[:, None]).T @ Y[js]
    np.testing.assert_allclose(x, np.linalg.solve(A, (Y[js] * c[:, None]).sum(0)), rtol=1e-4)


def test_partial_fit_items(als, bpr, data):
    for m0 in (als, bpr):
        m = type(m0)(**m0.get_params())
        m.fit(data)
        col = data[:, [5]].T.tocsr()  # the users of item 5, as a new item 60
        m.partial_fit_items(np.array([60]), col)
        assert m.item_factors.shape[0] == 61
        sims, _ = m.similar_items(60, N=5)
        assert (np.asarray(sims) // 30 == 0).mean() >= 0.6  # lands among item 5's group


def test_bpr_fold_in_recommends_the_group(bpr, data):
    row = sp.csr_matrix((np.ones(6), (np.zeros(6, int), np.arange(30, 36))), shape=(1, 60))
    ids, _ = bpr.recommend(500, row, N=5, recalculate_user=True)
    assert (ids >= 30).all()
    before = bpr.user_factors.copy()
    m = BPR(**bpr.get_params()).fit(data)
    m.partial_fit_users(np.array([3]), row)
    assert m.user_factors.shape == before.shape


@pytest.mark.parametrize("model", ["als", "bpr"])
def test_save_load_round_trip(model, request, tmp_path, data):
    m = request.getfixturevalue(model)
    p = tmp_path / "m.npz"
    m.save(p)
    m2 = type(m).load(p)
    np.testing.assert_array_equal(m2.user_factors, m.user_factors)
    np.testing.assert_array_equal(m2.item_factors, m.item_factors)
    assert m2.get_params() == m.get_params()
    a, b = m.recommend(np.arange(5), data), m2.recommend(np.arange(5), data)
    np.testing.assert_array_equal(a[0], b[0])
    other = BPR if model == "als" else ImplicitALS
    with pytest.raises(ValueError, match="not a"):
        other.load(p)


def test_load_rejects_other_versions_and_foreign_files(als, tmp_path):
    from recfast.models import _io

    p = tmp_path / "v2.npz"
    _io.save_npz(p, {"model": "ImplicitALS", "format_version": 2, "params": {}}, {})
    with pytest.raises(ValueError, match="format version 2"):
        ImplicitALS.load(p)
    q = tmp_path / "x.npz"
    np.savez(q, a=np.zeros(3))
    with pytest.raises(ValueError, match="no 'meta' field"):
        ImplicitALS.load(q)


def test_fit_input_rules(data):
    m = ImplicitALS(factors=4, iterations=2, random_state=0)
    with pytest.raises(TypeError, match="user_items must be a scipy.sparse matrix"):
        m.fit(data.toarray())
    bad = data.copy()
    bad.data[3] = -1.0
    with pytest.raises(ValueError, match=r"finite strengths >= 0; entry \("):
        m.fit(bad)
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="nan"):
        BPR(factors=4, iterations=1).fit(bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        m.recommend(0, data)
    # duplicates summed and unsorted indices accepted; the caller's matrix is not modified
    coo = data.tocoo()
    dup = sp.coo_matrix((np.r_[coo.data, coo.data], (np.r_[coo.row, coo.row], np.r_[coo.col, coo.col])),
                        shape=data.shape).tocsr()  # fmt: skip
    snapshot = (dup.data.copy(), dup.indices.copy())
    a = ImplicitALS(factors=4, iterations=3, random_state=1).fit(dup)
    b = ImplicitALS(factors=4, iterations=3, random_state=1).fit(data * 2)
    np.testing.assert_allclose(a.user_factors, b.user_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(dup.data, snapshot[0])


def test_recommend_bad_ids(als, data):
    with pytest.raises(ValueError, match="userid has entry 500"):
        als.recommend(500, data)
    with pytest.raises(ValueError, match="N must be >= 1"):
        als.recommend(0, data, N=0)
    with pytest.raises(ValueError, match="filter_items has entry 60"):
        als.recommend(0, data, filter_items=[60])
    with pytest.raises(ValueError, match="items has entry -1"):
        als.recommend(0, data, items=[-1])
    with pytest.raises(ValueError, match="itemid has entry 99"):
        als.similar_items(99)
    with pytest.raises(ValueError, match="user_items is needed"):
        als.recommend(0)


def test_divergence_names_the_iteration(data):
    with pytest.raises(FloatingPointError, match="in iteration 1 of"):
        BPR(factors=4, learning_rate=1e30, iterations=3, random_state=0,
            dtype=np.float32).fit(data * 1e30)  # fmt: skip
    m = ImplicitALS(factors=4, regularization=0.0, use_cg=False, iterations=2, random_state=0)
    with pytest.raises(FloatingPointError, match="iteration 1 of 2"):
        m.fit(sp.csr_matrix(np.ones((5, 1))) * 0 + sp.csr_matrix(np.ones((5, 1))))
    assert "_arrays" not in m.__dict__  # nothing half-fitted left behind


@pytest.mark.parametrize("backend", ALS_BACKENDS)
def test_als_backends_agree(backend, data):
    want = ImplicitALS(factors=6, iterations=3, random_state=2, dtype=np.float64,
                       num_threads=1, backend="reference").fit(data[:40])  # fmt: skip
    got = ImplicitALS(factors=6, iterations=3, random_state=2, dtype=np.float64,
                      num_threads=2, backend=backend).fit(data[:40])  # fmt: skip
    np.testing.assert_allclose(got.user_factors, want.user_factors, rtol=1e-8, atol=1e-10)


def test_same_as_implicit_with_the_same_factors(als, data):
    implicit = pytest.importorskip("implicit")
    ref = implicit.als.AlternatingLeastSquares(factors=8, regularization=0.1, iterations=1)
    ref.user_factors = np.asarray(als.user_factors)
    ref.item_factors = np.asarray(als.item_factors)
    users = np.arange(30)
    ids, _ = ref.recommend(users, data[users], N=6)
    mine, _ = als.recommend(users, data[users], N=6)
    np.testing.assert_array_equal(mine, ids)
