"""Tests for recfast.datasets: Ratings, load_movielens, synthetic_ratings."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recfast.datasets import Ratings, load_movielens, synthetic_ratings

# Both parsers where pandas is importable, else only the NumPy one.
ENGINES = [
    "numpy",
    pytest.param(
        "pandas",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("pandas") is None, reason="pandas not installed"
        ),
    ),
]

# (user, item, rating, timestamp) rows shared by the format fixtures.
RECORDS = [
    (10, 200, 4.0, 881250949),
    (3, 100, 3.0, 891717742),
    (10, 100, 1.0, 878887116),
    (7, 300, 5.0, 880606923),
    (3, 300, 2.0, 886397596),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _text(fmt: str, records=RECORDS) -> str:
    """File content of ``records`` in format "100k", "dat" or "csv"."""
    if fmt == "100k":
        return "".join(f"{u}\t{i}\t{r:g}\t{t}\n" for u, i, r, t in records)
    if fmt == "dat":
        return "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in records)
    head = "userId,movieId,rating,timestamp\n"
    return head + "".join(f"{u},{i},{r:g},{t}\n" for u, i, r, t in records)


FILE_NAMES = {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}


def _check_records(r: Ratings, records=RECORDS) -> None:
    """``r`` holds ``records`` in file order with sorted-raw-id indices."""
    users = np.array([x[0] for x in records])
    items = np.array([x[1] for x in records])
    np.testing.assert_array_equal(r.user_ids, np.unique(users))
    np.testing.assert_array_equal(r.item_ids, np.unique(items))
    np.testing.assert_array_equal(r.user_ids[r.rows], users)
    np.testing.assert_array_equal(r.item_ids[r.cols], items)
    np.testing.assert_array_equal(r.values, [x[2] for x in records])
    np.testing.assert_array_equal(r.timestamps, [x[3] for x in records])
    assert r.rows.dtype == np.int32 and r.cols.dtype == np.int32
    assert r.values.dtype == np.float32
    assert r.timestamps.dtype == np.int64
    assert r.shape == (len(set(users)), len(set(items)))
    assert r.nnz == len(r) == len(records)


# --------------------------------------------------------------------------
# load_movielens: formats and paths
# --------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fmt", ["100k", "dat", "csv"])
def test_load_each_format_by_name(tmp_path, fmt, engine):
    path = _write(tmp_path / FILE_NAMES[fmt], _text(fmt))
    r = load_movielens(path, engine=engine)
    _check_records(r)
    # Raw ids sorted -> user 3 is index 0, user 10 is index 2.
    assert r.rows.tolist() == [2, 0, 2, 1, 0]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fmt", ["100k", "dat", "csv"])
def test_load_detects_format_by_content(tmp_path, fmt, engine):
    path = _write(tmp_path / "ratings.txt", _text(fmt))
    _check_records(load_movielens(str(path), engine=engine))


@pytest.mark.parametrize("name", ["u1.base", "u1.test", "ua.base", "ub.test"])
def test_load_100k_split_names(tmp_path, name):
    _check_records(load_movielens(_write(tmp_path / name, _text("100k"))))


@pytest.mark.parametrize("engine", ENGINES)
def test_csv_half_star_ratings_crlf_and_no_header(tmp_path, engine):
    recs = [(1, 5, 0.5, 100), (2, 5, 3.5, 200), (1, 7, 5.0, 300)]
    text = _text("csv", recs).replace("\n", "\r\n")
    _check_records(load_movielens(_write(tmp_path / "a.csv", text), engine=engine), recs)
    body = "".join(text.splitlines(keepends=True)[1:])  # header dropped
    _check_records(load_movielens(_write(tmp_path / "b.csv", body), engine=engine), recs)


@pytest.mark.parametrize("fmt", ["100k", "dat", "csv"])
def test_directory_detection(tmp_path, fmt):
    _write(tmp_path / FILE_NAMES[fmt], _text(fmt))
    _check_records(load_movielens(tmp_path))


def test_directory_prefers_u_data(tmp_path):
    _write(tmp_path / "u.data", _text("100k"))
    _write(tmp_path / "ratings.csv", _text("csv", RECORDS[:2]))
    assert load_movielens(tmp_path).nnz == len(RECORDS)


def test_missing_file_and_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.dat"):
        load_movielens(tmp_path / "nope.dat")
    with pytest.raises(FileNotFoundError) as err:
        load_movielens(tmp_path)
    for name in ("u.data", "ratings.dat", "ratings.csv"):
        assert name in str(err.value)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("u.data", ""),
        ("ratings.dat", "\n\n"),
        ("ratings.csv", "userId,movieId,rating,timestamp\n"),
    ],
)
def test_empty_file_gives_empty_ratings(tmp_path, name, text, engine):
    r = load_movielens(_write(tmp_path / name, text), engine=engine)
    assert r.nnz == 0 and r.shape == (0, 0)
    assert r.to_csr().shape == (0, 0)


# --------------------------------------------------------------------------
# load_movielens: malformed files
# --------------------------------------------------------------------------

GOOD = "1\t10\t3\t100\n2\t20\t4\t200\n"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("text", "match"),
    [
        (GOOD + "3\t30\t5\n", r"line 3: expected 4 fields"),  # too few
        (GOOD + "3\t30\t5\t1\t9\n", r"line 3: expected 4 fields"),  # too many
        (GOOD + "3\t30\tabc\t300\n", r"line 3: non-numeric rating"),
        (GOOD + "3x\t30\t5\t300\n", r"line 3: non-numeric user"),
        (GOOD + "3\t30\tnan\t300\n", r"line 3: rating is not a finite"),
        (GOOD + "\n3\t30\t5\t300.5\n", r"line 4: timestamp is not an integer"),
        (GOOD + "3.5\t30\t5\t300\n", r"line 3: user id is not an integer"),
        # 3 + 5 fields: right total count, wrong per line.
        ("1\t10\t3\n2\t20\t4\t200\t7\n", r"line 1: expected 4 fields"),
    ],
)
def test_malformed_100k(tmp_path, text, match, engine):
    path = _write(tmp_path / "u.data", text)
    with pytest.raises(ValueError, match=match) as err:
        load_movielens(path, engine=engine)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("engine", ENGINES)
def test_malformed_csv_and_dat(tmp_path, engine):
    csv = _write(tmp_path / "ratings.csv", _text("csv") + "1,,3,4\n")
    with pytest.raises(ValueError, match=r"ratings\.csv, line 7: expected 4 fields"):
        load_movielens(csv, engine=engine)
    dat = _write(tmp_path / "ratings.dat", "1::2::3::4\n1:2::3::4\n")
    with pytest.raises(ValueError, match=r"ratings\.dat, line 2"):
        load_movielens(dat, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_many_chunks_and_line_numbers(tmp_path, monkeypatch, engine):
    import recfast.datasets as ds

    monkeypatch.setattr(ds, "_CHUNK_BYTES", 50)  # a few lines per chunk
    recs = [(u, 1000 + u % 7, 1.0 + u % 5, 10 * u) for u in range(1, 60)]
    text = _text("csv", recs)
    _check_records(load_movielens(_write(tmp_path / "ok.csv", text), engine=engine), recs)
    lines = text.splitlines(keepends=True)
    lines[40] = "41,1005,x,410\n"
    with pytest.raises(ValueError, match=r"line 41: non-numeric rating"):
        load_movielens(_write(tmp_path / "bad.csv", "".join(lines)), engine=engine)
    lines[40] = "41,1005,3\n"
    with pytest.raises(ValueError, match=r"line 41: expected 4 fields"):
        load_movielens(_write(tmp_path / "bad2.csv", "".join(lines)), engine=engine)
    lines[40] = "41,1005,nan,410\n"
    with pytest.raises(ValueError, match=r"line 41: rating is not a finite"):
        load_movielens(_write(tmp_path / "bad3.csv", "".join(lines)), engine=engine)


def test_undetectable_format(tmp_path):
    with pytest.raises(ValueError, match="cannot detect"):
        load_movielens(_write(tmp_path / "x.txt", "1|2|3|4\n"))


def test_bad_keywords(tmp_path):
    path = _write(tmp_path / "u.data", GOOD)
    with pytest.raises(ValueError, match="unknown"):
        load_movielens(path, unknown="ignore")
    with pytest.raises(ValueError, match="engine"):
        load_movielens(path, engine="polars")


# --------------------------------------------------------------------------
# load_movielens: id maps
# --------------------------------------------------------------------------


def test_id_maps_and_unknown(tmp_path):
    base = load_movielens(_write(tmp_path / "u1.base", _text("100k")))
    test_recs = [
        (7, 100, 2.0, 1),
        (99, 100, 3.0, 2),
        (3, 999, 4.0, 3),
        (10, 300, 5.0, 4),
    ]
    test_path = _write(tmp_path / "u1.test", _text("100k", test_recs))
    maps = (base.user_ids, base.item_ids)

    with pytest.raises(ValueError, match="u1.test.*2 ratings.*unknown='drop'") as err:
        load_movielens(test_path, id_maps=maps)
    assert "[99]" in str(err.value) and "[999]" in str(err.value)

    t = load_movielens(test_path, id_maps=maps, unknown="drop")
    assert t.shape == base.shape and t.nnz == 2
    assert t.user_ids is not None and np.array_equal(t.user_ids, base.user_ids)
    np.testing.assert_array_equal(t.user_ids[t.rows], [7, 10])
    np.testing.assert_array_equal(t.item_ids[t.cols], [100, 300])
    np.testing.assert_array_equal(t.values, [2.0, 5.0])
    np.testing.assert_array_equal(t.timestamps, [1, 4])


def test_id_maps_unsorted_and_larger(tmp_path):
    path = _write(tmp_path / "u.data", _text("100k"))
    users, items = np.array([10, 55, 3, 7]), np.array([300, 100, 200, 400])
    r = load_movielens(path, id_maps=(users, items))
    assert r.shape == (4, 4)
    np.testing.assert_array_equal(r.user_ids[r.rows], [x[0] for x in RECORDS])
    np.testing.assert_array_equal(r.item_ids[r.cols], [x[1] for x in RECORDS])
    with pytest.raises(ValueError, match="duplicates"):
        load_movielens(path, id_maps=(np.array([3, 3, 7, 10]), items))


# --------------------------------------------------------------------------
# Ratings
# --------------------------------------------------------------------------


@pytest.fixture
def small() -> Ratings:
    return synthetic_ratings(30, 20, 200, seed=1)


def test_ratings_conversions(small):
    rows, cols, vals = small.as_tuple()
    coo = small.to_coo()
    assert isinstance(coo, sp.coo_matrix) and coo.shape == (30, 20)
    assert coo.dtype == np.float32 and coo.nnz == 200
    dense = np.zeros((30, 20), np.float32)
    dense[rows, cols] = vals
    np.testing.assert_array_equal(coo.toarray(), dense)
    csr = small.to_csr()
    assert sp.issparse(csr) and csr.format == "csr"
    np.testing.assert_array_equal(csr.toarray(), dense)
    assert small.to_coo(np.float64).dtype == np.float64
    coo.data[:] = 0  # a copy: the ratings are unchanged
    assert np.all(small.values > 0)
    assert "nnz=200" in repr(small)


def test_subset_and_split(small):
    mask = small.values > 3
    sub = small.subset(mask)
    assert sub.nnz == mask.sum() and sub.shape == small.shape
    assert sub.user_ids is small.user_ids and sub.timestamps is None
    idx = np.array([5, 0, 7])
    np.testing.assert_array_equal(small.subset(idx).cols, small.cols[idx])
    with pytest.raises(ValueError, match="mask"):
        small.subset(mask[:-1])

    train, test = small.train_test_split(0.25, seed=3)
    assert (train.nnz, test.nnz) == (150, 50)
    assert train.shape == test.shape == small.shape

    def flat(r: Ratings) -> set[int]:
        return set((r.rows.astype(np.int64) * 20 + r.cols).tolist())

    assert flat(train) | flat(test) == flat(small) and not flat(train) & flat(test)
    train2, _ = small.train_test_split(0.25, seed=3)
    np.testing.assert_array_equal(train.rows, train2.rows)
    with pytest.raises(ValueError, match="test_fraction"):
        small.train_test_split(1.5)


def test_ratings_validation():
    ids = np.arange(3)
    ok = {
        "rows": np.array([0, 2], np.int32),
        "cols": np.array([1, 1], np.int32),
        "values": np.array([1.0, 2.0], np.float32),
        "timestamps": None,
        "user_ids": ids,
        "item_ids": ids,
        "n_users": 3,
        "n_items": 3,
    }
    assert Ratings(**ok).nnz == 2
    with pytest.raises(ValueError, match="rows out of range"):
        Ratings(**{**ok, "rows": np.array([0, 3], np.int32)})
    with pytest.raises(ValueError, match="same length"):
        Ratings(**{**ok, "cols": np.array([1], np.int32)})
    with pytest.raises(ValueError, match="user_ids"):
        Ratings(**{**ok, "user_ids": np.arange(2)})


# --------------------------------------------------------------------------
# synthetic_ratings
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_users", "n_items", "nnz"), [(100, 80, 1000), (40, 30, 1200), (7, 5, 35)]
)
def test_synthetic_shapes_and_no_duplicates(n_users, n_items, nnz):
    r = synthetic_ratings(n_users, n_items, nnz, seed=0)
    assert r.shape == (n_users, n_items) and r.nnz == nnz
    assert r.rows.dtype == np.int32 and r.cols.dtype == np.int32
    assert r.values.dtype == np.float32 and r.timestamps is None
    np.testing.assert_array_equal(r.user_ids, np.arange(n_users))
    np.testing.assert_array_equal(r.item_ids, np.arange(n_items))
    flat = r.rows.astype(np.int64) * n_items + r.cols
    assert np.unique(flat).size == nnz
    assert r.rows.min() >= 0 and r.rows.max() < n_users
    assert r.cols.min() >= 0 and r.cols.max() < n_items
    assert np.all((r.values >= 1.0) & (r.values <= 5.0))


def test_synthetic_determinism_order_and_values():
    a = synthetic_ratings(500, 300, 20_000, seed=42)
    b = synthetic_ratings(500, 300, 20_000, seed=42)
    c = synthetic_ratings(500, 300, 20_000, seed=43)
    for name in ("rows", "cols", "values"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.values, c.values)
    assert np.any(np.diff(a.rows) < 0)  # shuffled, not sorted
    # Ratings span the scale around its middle, with a planted structure:
    # a rank-10 SVD of the dense matrix explains most of the variance.
    assert 2.7 < a.values.mean() < 3.3 and 0.6 < a.values.std() < 1.3
    d = synthetic_ratings(60, 50, 3000, rank=3, noise=0.0, seed=0, dtype=np.float64)
    m = np.zeros((60, 50))
    m[d.rows, d.cols] = d.values
    s = np.linalg.svd(m - 3.0, compute_uv=False)
    assert (s[:5] ** 2).sum() / (s**2).sum() > 0.95
    assert d.values.dtype == np.float64


def test_synthetic_rating_scale():
    r = synthetic_ratings(50, 40, 500, seed=0, rating_scale=(0.5, 10.0), noise=1.0)
    assert r.values.min() >= 0.5 and r.values.max() <= 10.0
    assert r.values.max() - r.values.min() > 5


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_users": 0}, "n_users"),
        ({"n_items": -3}, "n_items"),
        ({"nnz": 2.5}, "nnz"),
        ({"nnz": True}, "nnz"),
        ({"nnz": 101}, "nnz"),
        ({"rank": 0}, "rank"),
        ({"noise": -0.1}, "noise"),
        ({"rating_scale": (5.0, 1.0)}, "rating_scale"),
        ({"dtype": np.int32}, "dtype"),
    ],
)
def test_synthetic_bad_arguments(kwargs, name):
    args = {"n_users": 10, "n_items": 10, "nnz": 50} | kwargs
    with pytest.raises(ValueError, match=name):
        synthetic_ratings(**args)


# --------------------------------------------------------------------------
# Real data: MovieLens 100K (skipped where absent; never copied here)
# --------------------------------------------------------------------------


def _ml100k_dir() -> Path | None:
    env = os.environ.get("RECFAST_DATA")
    candidates = [Path(env), Path(env) / "ml-100k"] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")
    for d in candidates:
        if (d / "u.data").is_file():
            return d
    return None


@pytest.fixture(scope="module")
def ml100k() -> Path:
    d = _ml100k_dir()
    if d is None:
        pytest.skip("MovieLens 100K not found (set RECFAST_DATA)")
    return d


def test_ml100k_full(ml100k):
    r = load_movielens(ml100k)
    assert (r.nnz, r.n_users, r.n_items) == (100_000, 943, 1682)
    np.testing.assert_array_equal(r.user_ids, np.arange(1, 944))
    np.testing.assert_array_equal(r.item_ids, np.arange(1, 1683))
    assert set(np.unique(r.values).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert r.to_csr().nnz == 100_000  # no duplicate pairs


def test_ml100k_u1_split(ml100k):
    full = load_movielens(ml100k / "u.data")
    maps = (full.user_ids, full.item_ids)
    base = load_movielens(ml100k / "u1.base", id_maps=maps)
    test = load_movielens(ml100k / "u1.test", id_maps=maps)
    assert (base.nnz, test.nnz) == (80_000, 20_000)
    assert base.shape == test.shape == (943, 1682)
    # u1.base lacks some items of u1.test: with the base's own maps
    # (943 users, 1650 items) 32 test ratings are unknown.
    own = load_movielens(ml100k / "u1.base")
    assert own.nnz == 80_000
    own_maps = (own.user_ids, own.item_ids)
    with pytest.raises(ValueError, match="unknown='drop'"):
        load_movielens(ml100k / "u1.test", id_maps=own_maps)
    dropped = load_movielens(ml100k / "u1.test", id_maps=own_maps, unknown="drop")
    assert dropped.nnz == 20_000 - 32 and dropped.shape == own.shape
