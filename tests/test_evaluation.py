"""recfast.evaluation (issue 14): splits, and ranking metrics against hand-computed cases and
against implicit.evaluation on the same factors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recfast.evaluation import leave_k_out_split, ranking_metrics_at_k, train_test_split


def _m(dense):
    return sp.csr_matrix(np.asarray(dense, dtype=np.float64))


def test_metrics_by_hand():
    # One user, 5 items; scores rank items 0 > 1 > 2 > 3 > 4; item 0 is in train.
    U = np.array([[1.0]])
    V = np.array([[5.0], [4.0], [3.0], [2.0], [1.0]])
    train = _m([[1, 0, 0, 0, 0]])
    test = _m([[0, 0, 1, 0, 1]])  # ranking without train: 1, 2, 3, 4 -> hits at ranks 2 and 4
    r = ranking_metrics_at_k((U, V), train, test, K=3, per_user=True)
    # top-3 = [1, 2, 3]: one hit at position 2 (index 1)
    assert r["precision"] == pytest.approx(1 / 3)
    assert r["precision_min"] == pytest.approx(1 / 2)
    assert r["recall"] == pytest.approx(1 / 2)
    assert r["ndcg"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert r["map"] == pytest.approx((1 / 2) / 2)
    assert r["mrr"] == pytest.approx(1 / 2)
    # negatives: items 1 and 3 (scores 4, 2); test 2 (3) beats 3; test 4 (1) beats none
    assert r["auc"] == pytest.approx((1 + 0) / (2 * 2))
    assert r["coverage"] == pytest.approx(3 / 5)
    assert r["users"] == 1 and r["per_user"]["user_ids"].tolist() == [0]


def test_callable_model_and_users_without_test_items():
    V = np.array([[5.0], [4.0], [3.0], [2.0]])
    train = _m([[0, 0, 0, 0], [1, 0, 0, 0]])
    test = _m([[1, 0, 0, 0], [0, 0, 0, 0]])  # user 1 has no test item: not evaluated
    r1 = ranking_metrics_at_k((np.ones((2, 1)), V), train, test, K=2)
    r2 = ranking_metrics_at_k(lambda users: np.ones((len(users), 1)) @ V.T, train, test, K=2)
    assert r1["users"] == 1 and r1["ndcg"] == 1 and r1["precision"] == 0.5
    for key in ("precision", "ndcg", "map", "mrr", "auc", "recall"):
        assert r1[key] == pytest.approx(r2[key]), key


def test_metrics_bad_input():
    U, V = np.ones((2, 1)), np.ones((3, 1))
    with pytest.raises(ValueError, match="same shape"):
        ranking_metrics_at_k((U, V), _m(np.zeros((2, 3))), _m(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="K must be >= 1"):
        ranking_metrics_at_k((U, V), _m(np.zeros((2, 3))), _m(np.zeros((2, 3))), K=0)
    with pytest.raises(TypeError, match="train must be a scipy.sparse"):
        ranking_metrics_at_k((U, V), np.zeros((2, 3)), _m(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="model must have"):
        ranking_metrics_at_k(object(), _m(np.zeros((2, 3))), _m(np.zeros((2, 3))))


def test_train_test_split_is_per_user():
    rng = np.random.default_rng(0)
    R = sp.random(50, 40, density=0.3, format="csr", random_state=rng)
    tr, te = train_test_split(R, 0.2, random_state=0)
    n = np.diff(R.indptr)
    np.testing.assert_array_equal(np.diff(te.indptr), np.minimum(np.round(0.2 * n), n - 1))
    assert (tr.multiply(te)).nnz == 0
    np.testing.assert_allclose((tr + te).toarray(), R.toarray())
    tr2, te2 = train_test_split(R, 0.2, random_state=0)
    assert (te2 != te).nnz == 0


def test_leave_k_out_by_time():
    R = _m([[1, 1, 1, 0], [1, 0, 0, 0]])
    T = _m([[3, 1, 2, 0], [5, 0, 0, 0]])
    tr, te = leave_k_out_split(R, 1, by="time", timestamps=T)
    assert te.toarray().tolist() == [
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ]  # latest of user 0; user 1 keeps all
    tr, te = leave_k_out_split(R, 2, by="random", random_state=1)
    assert np.diff(te.indptr).tolist() == [2, 0]
    with pytest.raises(ValueError, match="needs timestamps"):
        leave_k_out_split(R, 1, by="time")


def test_against_implicit_evaluation():
    implicit = pytest.importorskip("implicit")
    from implicit.evaluation import ranking_metrics_at_k as ref

    rng = np.random.default_rng(3)
    R = sp.random(200, 80, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    R.data[:] = 1
    tr, te = train_test_split(R, 0.3, random_state=0)
    tr, te = tr.astype(np.float32), te.astype(np.float32)
    m = implicit.als.AlternatingLeastSquares(factors=8, iterations=3, random_state=0)
    m.fit(tr, show_progress=False)
    want = ref(m, tr, te, K=10, show_progress=False)
    got = ranking_metrics_at_k(m, tr, te, K=10)
    assert got["precision_min"] == pytest.approx(want["precision"], rel=1e-6)
    assert got["map"] == pytest.approx(want["map"], rel=1e-6)
    assert got["ndcg"] == pytest.approx(want["ndcg"], rel=1e-6)


def test_ml100k_metrics_fast_enough_to_run(ml100k):
    """Not a timing assertion: the real-data path runs end to end and gives sane values."""
    from recfast import ImplicitALS

    d = np.loadtxt(ml100k / "u.data", dtype=np.int64)
    R = sp.csr_matrix((np.ones(len(d)), (d[:, 0] - 1, d[:, 1] - 1)))
    tr, te = train_test_split(R, 0.2, random_state=0)
    m = ImplicitALS(factors=32, regularization=0.05, iterations=5, random_state=0).fit(tr)
    r = ranking_metrics_at_k(m, tr, te, K=10)
    assert 0.25 < r["ndcg"] < 0.6 and 0.8 < r["auc"] < 1 and r["users"] == 943
