"""Model files (issue #9): saves are atomic (a failed save leaves the old file intact), NumPy
scalar hyperparameters are saved, and load checks every field of a file: crafted, truncated and
foreign files raise ValueError naming the file and the field. A failed fit keeps the old model."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

import recfast
from recfast.models.mf import MatrixFactorization


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, 30, 400), rng.integers(0, 20, 400)
    v = rng.uniform(1, 5, 400).astype(np.float32)
    return MatrixFactorization(factors=np.int64(4), epochs=np.int32(3), random_state=0).fit(
        (r, c, v)
    )


def test_numpy_scalar_hyperparameters_round_trip(fitted, tmp_path):
    p = tmp_path / "m.npz"
    fitted.save(p)
    back = MatrixFactorization.load(p)
    assert back.factors == 4 and back.epochs == 3
    np.testing.assert_array_equal(back.user_factors_, fitted.user_factors_)
    np.testing.assert_array_equal(back.predict([0, 1], [2, 3]), fitted.predict([0, 1], [2, 3]))


def test_failed_save_leaves_the_old_file(fitted, tmp_path):
    p = tmp_path / "m.npz"
    fitted.save(p)
    before = p.read_bytes()
    bad = MatrixFactorization(factors=4)
    bad.__dict__.update(fitted.__dict__)
    bad.learning_rate = object()  # not JSON: the save fails
    with pytest.raises(TypeError):
        bad.save(p)
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind


def _rewrite(src, dst, change):
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("meta").tobytes().decode())
    change(meta, arrays)
    np.savez(dst, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)


CRAFTED = [
    (
        "factors of another k",
        lambda m, a: a.update(item_factors=a["item_factors"][:, :3]),
        "item_factors",
    ),
    (
        "biases shorter than the users",
        lambda m, a: a.update(user_bias=a["user_bias"][:5]),
        "user_bias",
    ),
    ("NaN factors", lambda m, a: a["user_factors"].__setitem__((0, 0), np.nan), "NaN"),
    (
        "integer factors",
        lambda m, a: a.update(user_factors=a["user_factors"].astype(np.int32)),
        "dtype",
    ),
    ("1-D factors", lambda m, a: a.update(user_factors=a["user_factors"].ravel()), "shape"),
    ("missing field", lambda m, a: a.pop("item_factors"), "item_factors"),
    ("k disagrees with params", lambda m, a: m["params"].update(factors=7), "factors"),
    ("another model", lambda m, a: m.update(model="GRU4Rec"), "GRU4Rec"),
    ("another version", lambda m, a: m.update(format_version=99), "version"),
    ("bad params", lambda m, a: m["params"].update(solver="lbfgs"), "params"),
    ("NaN mean", lambda m, a: m.update(global_mean=float("nan")), "global_mean"),
]


@pytest.mark.parametrize("name,change,frag", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_files_are_refused(fitted, tmp_path, name, change, frag):
    p, q = tmp_path / "m.npz", tmp_path / "crafted.npz"
    fitted.save(p)
    _rewrite(p, q, change)
    with pytest.raises(ValueError, match=frag) as info:
        MatrixFactorization.load(q)
    assert "crafted.npz" in str(info.value)


def test_truncated_and_foreign_files(fitted, tmp_path):
    p = tmp_path / "m.npz"
    fitted.save(p)
    t = tmp_path / "truncated.npz"
    t.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(ValueError, match="truncated.npz"):
        MatrixFactorization.load(t)
    f = tmp_path / "foreign.npz"
    np.savez(f, x=np.zeros(3))
    with pytest.raises(ValueError, match="not a recfast"):
        MatrixFactorization.load(f)
    j = tmp_path / "junk.npz"
    j.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="junk.npz"):
        MatrixFactorization.load(j)
    n = tmp_path / "array.npy"
    np.save(n, np.zeros(3))
    with pytest.raises(ValueError, match="array.npy"):
        MatrixFactorization.load(n)
    z = tmp_path / "pickle.npz"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("meta.npy", b"\x80\x04K\x01.")  # a pickle, not an array
    with pytest.raises(ValueError):
        MatrixFactorization.load(z)


def test_failed_refit_keeps_the_good_model(fitted):
    m = MatrixFactorization(factors=4, epochs=3, random_state=0)
    rng = np.random.default_rng(1)
    data = (rng.integers(0, 30, 400), rng.integers(0, 20, 400), rng.uniform(1, 5, 400))
    m.fit(data)
    U, hist = m.user_factors_.copy(), dict(m.history_)
    m.learning_rate, m.solver = 1e30, "sgd"
    with pytest.raises(recfast.DivergenceError, match="epoch 1"):
        m.fit(data)
    np.testing.assert_array_equal(m.user_factors_, U)
    assert np.isfinite(m.predict([0], [0])).all() and m.history_ == hist


def test_failed_refit_keeps_gru4rec_and_convnet():
    seqs = [np.arange(i % 5, i % 5 + 4) for i in range(12)]
    g = recfast.GRU4Rec(hidden=4, embedding=3, epochs=1, batch_size=4, random_state=0)
    g.fit(seqs, n_items=10)
    E = g.item_embeddings_.copy()
    g.learning_rate = 1e30
    with pytest.raises(FloatingPointError):
        g.fit(seqs, n_items=10)
    np.testing.assert_array_equal(g.item_embeddings_, E)
    X = np.random.default_rng(0).standard_normal((6, 8, 8, 1)).astype(np.float32)
    y = np.arange(6) % 2
    c = recfast.models.ConvNet(n_classes=2, channels=(2, 2), hidden=4, epochs=1, batch_size=3)
    c.fit(X, y)
    w = c.params_["w1"].copy()
    c.epochs = -1
    with pytest.raises(ValueError, match="epochs"):
        c.fit(X, y)
    np.testing.assert_array_equal(c.params_["w1"], w)
