"""MatrixFactorization fold-in and unknown ids (issue 14): partial_fit_users solves each user's
regularized least squares exactly; predict gives the baseline for ids never seen in training;
recommend runs on the native top-k."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recfast import MatrixFactorization


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 40, 600), rng.integers(0, 30, 600)
    R = sp.coo_matrix((rng.uniform(1, 5, 600), (rows, cols)), shape=(40, 30)).tocsr()
    m = MatrixFactorization(factors=4, epochs=5, random_state=0, dtype=np.float64).fit(R)
    return m, R


def test_predict_unknown_ids_gives_the_baseline(fitted):
    m, _ = fitted
    mu, ub, ib = m.global_mean_, m.user_bias_, m.item_bias_
    got = m.predict([2, 40, 2, 99], [31, 3, 3, 50], clip=False)
    assert got[0] == pytest.approx(mu + ub[2])  # unknown item
    assert got[1] == pytest.approx(mu + ib[3])  # unknown user
    assert got[2] == pytest.approx(float(m.predict([2], [3], clip=False)[0]))
    assert got[3] == pytest.approx(mu)  # both unknown
    with pytest.raises(ValueError, match="users has entry 40"):
        m.predict([40], [3], unknown="raise")
    with pytest.raises(ValueError, match="entry -1"):
        m.predict([-1], [3])
    with pytest.raises(ValueError, match="unknown must be"):
        m.predict([1], [3], unknown="zero")


def test_partial_fit_users_is_the_exact_least_squares_fold_in(fitted):
    m0, R = fitted
    m = MatrixFactorization(**m0.get_params())
    m.fit(R)
    row = R[[5]]
    m.partial_fit_users([45], row)
    assert m.user_factors_.shape[0] == 46 and not m.user_factors_[40:45].any()
    js, r = row.indices, row.data
    F = np.hstack([m.item_factors_[js], np.ones((len(js), 1))])
    reg = np.diag([m.regularization] * 4 + [m.regularization])
    want = np.linalg.solve(F.T @ F + reg, F.T @ (r - m.global_mean_ - m.item_bias_[js]))
    np.testing.assert_allclose(m.user_factors_[45], want[:4], rtol=1e-10)
    assert m.user_bias_[45] == pytest.approx(want[4])
    # a folded-in user predicts its own ratings at least as well as the baseline
    pred = m.predict(np.full(len(js), 45), js, clip=False)
    base = m.global_mean_ + m.item_bias_[js]
    assert np.mean((pred - r) ** 2) <= np.mean((base - r) ** 2)
    with pytest.raises(ValueError, match="one row per user"):
        m.partial_fit_users([1, 2], row)
    with pytest.raises(TypeError, match="scipy.sparse"):
        m.partial_fit_users([1], row.toarray())


def test_recommend_uses_the_native_top_k(fitted):
    m, R = fitted
    items, scores = m.recommend(np.arange(40), n=5, exclude=R)
    S = m.user_factors_ @ m.item_factors_.T + m.item_bias_
    S[R.toarray() != 0] = -np.inf
    np.testing.assert_array_equal(items, np.argsort(-S, axis=1, kind="stable")[:, :5])
    want = np.take_along_axis(S, items, 1) + m.global_mean_ + m.user_bias_[:, None]
    np.testing.assert_allclose(scores, want, rtol=1e-12)
