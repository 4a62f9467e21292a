"""Hybrid item features (issue #13): TextCNN's gradients against finite differences, and a cold
item recommended through its features (text through TextCNN, or any features through the ridge
ItemFeatureMap) on generated data."""

from __future__ import annotations

import numpy as np
import pytest

import recfast
from recfast.models.hybrid import ItemFeatureMap, TextCNN, add_items

GROUPS, PER_GROUP_VOCAB, T = 4, 12, 10


def catalogue(n_users=200, n_items=160, cold=16, seed=0):
    """Items belong to GROUPS genres, users like one genre: rating 5 for their genre, 1 else.
    An item's text draws its tokens from its genre's words (plus shared filler words). The last
    ``cold`` items get no ratings at all."""
    rng = np.random.default_rng(seed)
    genre = np.arange(n_items) % GROUPS
    taste = np.arange(n_users) % GROUPS
    vocab = GROUPS * PER_GROUP_VOCAB + 8  # the last 8 words are shared filler
    tokens = np.where(
        rng.random((n_items, T)) < 0.6,
        genre[:, None] * PER_GROUP_VOCAB + rng.integers(0, PER_GROUP_VOCAB, (n_items, T)),
        GROUPS * PER_GROUP_VOCAB + rng.integers(0, 8, (n_items, T)),
    )
    tokens[:, -2:] = -1  # padding
    warm = n_items - cold
    rows, cols = np.nonzero(rng.random((n_users, warm)) < 0.3)
    vals = np.where(taste[rows] == genre[cols], 5.0, 1.0) + rng.normal(0, 0.2, rows.size)
    return (rows, cols, vals.astype(np.float32)), tokens, genre, taste, vocab, warm


def own_genre_first(model, genre, taste, cold_ids):
    """Share of users whose best-scored cold item is of their own genre."""
    U = model.user_factors_
    V = model.item_factors_[cold_ids]
    s = U @ V.T + model.item_bias_[cold_ids]
    return float(np.mean(genre[cold_ids][s.argmax(axis=1)] == taste))


@pytest.fixture(scope="module")
def world():
    ratings, tokens, genre, taste, vocab, warm = catalogue()
    mf = recfast.MatrixFactorization(factors=8, epochs=40, random_state=0).fit(ratings)
    return mf, tokens, genre, taste, vocab, warm


def test_text_cnn_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    m = TextCNN(vocab_size=7, embedding_dim=3, widths=(2, 3), channels=2, l2=0.1,
                dtype=np.float64)  # fmt: skip
    m._init_params(2, np.dtype(np.float64), rng)
    t = rng.integers(-1, 7, (3, 5))
    Y = rng.standard_normal((3, 2))
    _, grads = m._loss_and_grads(t, Y)
    eps = 1e-6
    for name, p in m.params_.items():
        num = np.zeros_like(p)
        for j in np.ndindex(p.shape):
            old = p[j]
            p[j] = old + eps
            up = m._loss_and_grads(t, Y)[0]
            p[j] = old - eps
            down = m._loss_and_grads(t, Y)[0]
            p[j] = old
            num[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, rtol=1e-4, atol=1e-7, err_msg=name)


def test_cold_items_recommended_through_text(world):
    mf, tokens, genre, taste, vocab, warm = world
    targets = np.column_stack([mf.item_factors_, mf.item_bias_])
    enc = TextCNN(vocab_size=vocab, epochs=60, random_state=0).fit(tokens[:warm], targets)
    assert enc.history_["loss"][-1] < 0.2 * enc.history_["loss"][0]
    pred = enc.predict(tokens[warm:])
    assert enc.encode(tokens[warm:]).shape == (len(tokens) - warm, 3 * 16)
    m2 = _copy(mf)  # the fixture's model stays as it is
    ids = add_items(m2, pred[:, :-1], pred[:, -1])
    np.testing.assert_array_equal(ids, np.arange(warm, len(tokens)))
    assert own_genre_first(m2, genre, taste, ids) > 0.9
    top, _ = m2.recommend(np.arange(8), n=3)
    assert top.shape == (8, 3)
    # Without features (cold factors at zero, bias at the mean) the cold ranking is chance.
    m3 = _copy(mf)
    ids0 = add_items(m3, np.zeros((len(ids), 8)), np.zeros(len(ids)))
    assert own_genre_first(m3, genre, taste, ids0) < 0.5


def test_cold_items_through_a_ridge_feature_map(world):
    mf, tokens, genre, taste, vocab, warm = world
    bag = np.zeros((len(tokens), vocab))
    for i, row in enumerate(tokens):
        np.add.at(bag[i], row[row >= 0], 1.0)
    fmap = ItemFeatureMap(l2=1.0).fit(bag[:warm], mf)
    V, b = fmap.predict(bag[warm:])
    assert V.shape == (len(tokens) - warm, 8) and b.shape == (len(tokens) - warm,)
    m2 = _copy(mf)
    ids = add_items(m2, V, b)
    assert own_genre_first(m2, genre, taste, ids) > 0.9
    # fitted on a subset of the items, naming them
    sub = np.arange(0, warm, 2)
    ItemFeatureMap().fit(bag[sub], mf, items=sub)


def test_bad_input(world):
    mf, tokens, _, _, vocab, warm = world
    with pytest.raises(ValueError, match="items="):
        ItemFeatureMap().fit(np.ones((warm + 1, 3)), mf)
    with pytest.raises(ValueError, match="NaN"):
        ItemFeatureMap().fit(np.full((warm, 3), np.nan), mf)
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemFeatureMap().predict(np.ones((2, 3)))
    with pytest.raises(TypeError, match="item factors"):
        ItemFeatureMap().fit(np.ones((3, 3)), recfast.MatrixFactorization())
    with pytest.raises(ValueError, match="tokens must lie"):
        TextCNN(vocab_size=3, epochs=1).fit(tokens[:4], np.ones((4, 2)))
    with pytest.raises(ValueError, match="targets"):
        TextCNN(vocab_size=vocab, epochs=1).fit(tokens[:4], np.ones((5, 2)))
    with pytest.raises(ValueError, match="factors must be"):
        add_items(_copy(mf), np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="bias="):
        add_items(_copy(mf), np.ones((2, 8)))


def _copy(mf):
    import copy

    m = copy.copy(mf)
    m._arrays = dict(mf._arrays)
    return m


def test_the_cold_start_example_runs(capsys):
    import runpy
    from pathlib import Path

    runpy.run_path(str(Path(__file__).parents[1] / "examples" / "cold_start_items.py"))
    out = capsys.readouterr().out
    share = int(out.split("genre: ")[1].split("%")[0])
    assert share >= 90, out
