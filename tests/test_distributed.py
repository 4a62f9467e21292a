"""DSGD on a real Dask LocalCluster (issue 12): 2 worker processes x 1 thread, started here.

Every wait is bounded (``timeout=`` on the fits, ``wait_for_workers``), so a broken cluster fails
a test instead of hanging it.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

import recfast  # noqa: E402
from recfast.datasets import load_movielens, synthetic_ratings  # noqa: E402
from recfast.distributed import _tasks as T  # noqa: E402

TIMEOUT = 60  # seconds any one epoch, or the workers' start, may take here
PARAMS = dict(factors=16, epochs=8, random_state=0)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as c:  # fmt: skip
        yield c


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster, timeout=TIMEOUT) as c:
        c.wait_for_workers(2, timeout=TIMEOUT)  # a worker killed by a test is back
        yield c


@pytest.fixture(scope="module")
def data():
    """Generated ratings with a planted structure, split 90/10 into train and test triplets."""
    r = synthetic_ratings(1500, 400, 40_000, seed=1)
    test = np.random.default_rng(2).random(len(r.values)) < 0.1
    tr = (r.rows[~test], r.cols[~test], r.values[~test])
    te = (r.rows[test], r.cols[test], r.values[test])
    return tr, te


def _factors(m):
    return m.user_factors_, m.item_factors_, m.user_bias_, m.item_bias_


def _assert_same(a, b):
    for x, y in zip(_factors(a), _factors(b)):
        np.testing.assert_array_equal(x, y)


def test_blocks_are_the_layout_ranges():
    """bounds() and block_of() agree: the ranges mf_block_layout documents (u * p // n)."""
    for n, p in ((10, 3), (7, 7), (1000, 16), (5, 1)):
        ids = np.arange(n)
        blk = T.block_of(ids, n, p)
        for b in range(p):
            lo, hi = T.bounds(n, p, b)
            np.testing.assert_array_equal(ids[blk == b], np.arange(lo, hi))


def test_generated_rmse_matches_single_machine(client, data, tmp_path):
    tr, te = data
    single = recfast.MatrixFactorization(**PARAMS).fit(tr)
    dist = recfast.MatrixFactorization(**PARAMS, show_progress=True).fit(
        tr, client=client, timeout=TIMEOUT
    )
    assert isinstance(dist, recfast.MatrixFactorization) and dist.n_blocks_ == 2
    assert abs(dist.score(te) - single.score(te)) <= 0.005, (dist.score(te), single.score(te))
    assert len(dist.history_["loss"]) == PARAMS["epochs"]
    assert dist.history_["train_rmse"][-1] < dist.history_["train_rmse"][0]
    # An ordinary fitted model: predict, recommend, save and load work as before.
    items, _ = dist.recommend([0, 1], n=5)
    assert items.shape == (2, 5)
    dist.save(tmp_path / "m.npz")
    back = recfast.MatrixFactorization.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(back.predict(te[0], te[1]), dist.predict(te[0], te[1]))


def _replay(tr, n_blocks, params):
    """The DSGD schedule run in this process from the same task functions, in stratum order."""
    rows, cols, values = tr
    n_users, n_items = int(rows.max()) + 1, int(cols.max()) + 1
    m = recfast.MatrixFactorization(**params)
    p = m._checked_params()
    seed = int(np.random.default_rng(params["random_state"]).integers(2**63))
    nb = n_blocks
    vals = values.astype(np.float32)
    blk = T.block_of(rows, n_users, nb)
    blocks = [T.layout(b, nb, n_users, n_items, seed, p["k"], (rows[blk == b], cols[blk == b],
                                                       vals[blk == b])) for b in range(nb)]  # fmt: skip
    sizes = [np.diff(T.bounds(n, nb, b))[0] for n in (n_users, n_items) for b in range(nb)]
    users = [T.init_block(seed, 0, b, sizes[b], p["k"], p["init_std"], "float32", True, True)
             for b in range(nb)]  # fmt: skip
    items = [T.init_block(seed, 1, j, sizes[nb + j], p["k"], p["init_std"], "float32", True, True)
             for j in range(nb)]  # fmt: skip
    hp = T.Hyper(p["reg"], p["breg"], float(vals.mean(dtype=np.float64)), None)
    lr = p["lr"]
    for _ in range(p["epochs"]):
        for s in range(nb):
            for b in range(nb):
                j = (b + s) % nb
                out = T.update(users[b], items[j], blocks[b], j, lr, hp, s == 0)
                users[b], items[j] = out, out.item
        lr *= p["decay"]
    U = np.concatenate([T.user_of(u).factors for u in users])
    V = np.concatenate([f.factors for f in items])
    return U, V


def test_same_seed_same_factors_and_the_schedule_is_dsgd(client, data):
    """Two fits with one seed are equal bit for bit, and equal the DSGD schedule replayed
    sequentially here (4 blocks on 2 workers: the result does not depend on which worker ran
    which block, nor when)."""
    tr, _ = data
    params = dict(PARAMS, epochs=3, n_blocks=4)
    a = recfast.MatrixFactorization(**params).fit(tr, client=client, timeout=TIMEOUT)
    b = recfast.MatrixFactorization(**params).fit(tr, client=client, timeout=TIMEOUT)
    _assert_same(a, b)
    U, V = _replay(tr, 4, params)
    np.testing.assert_array_equal(a.user_factors_, U)
    np.testing.assert_array_equal(a.item_factors_, V)
    c = recfast.MatrixFactorization(**dict(params, random_state=1)).fit(
        tr, client=client, timeout=TIMEOUT
    )
    assert not np.array_equal(a.user_factors_, c.user_factors_)


def test_dask_dataframe_from_parquet_equals_local_input(client, data, tmp_path):
    tr, _ = data
    df = pd.DataFrame({"u": tr[0].astype(np.int64), "i": tr[1], "r": tr[2]})
    dd.from_pandas(df, npartitions=3).to_parquet(tmp_path / "ratings")
    ddf = dd.read_parquet(tmp_path / "ratings")
    assert ddf.npartitions == 3
    params = dict(PARAMS, epochs=3)
    a = recfast.MatrixFactorization(**params).fit(
        ddf, client=client, columns=("u", "i", "r"), timeout=TIMEOUT
    )
    b = recfast.MatrixFactorization(**params).fit(tr, client=client, timeout=TIMEOUT)
    _assert_same(a, b)
    assert a.global_mean_ == pytest.approx(b.global_mean_, rel=1e-6)


def test_movielens_100k_rmse_matches_single_machine(client, ml100k):
    """The defaults (30 epochs): the distributed test RMSE on u1 is the single-machine one
    within 0.005 (issue 12)."""
    full = load_movielens(ml100k / "u.data")
    maps = (full.user_ids, full.item_ids)
    train = load_movielens(ml100k / "u1.base", id_maps=maps)
    test = load_movielens(ml100k / "u1.test", id_maps=maps)
    single = recfast.MatrixFactorization(random_state=0).fit(train).score(test)
    dist = recfast.MatrixFactorization(random_state=0).fit(train, client=client, timeout=TIMEOUT)
    print(f"ml-100k u1 RMSE: single {single:.4f}, DSGD on 2 workers {dist.score(test):.4f}")
    assert abs(dist.score(test) - single) <= 0.005


def test_resume_from_checkpoint_equals_an_uninterrupted_fit(client, data, tmp_path):
    tr, _ = data
    straight = recfast.MatrixFactorization(**PARAMS).fit(tr, client=client, timeout=TIMEOUT)
    recfast.MatrixFactorization(**dict(PARAMS, epochs=3)).fit(
        tr, client=client, checkpoint_dir=tmp_path, timeout=TIMEOUT
    )
    resumed = recfast.MatrixFactorization(**PARAMS).fit(
        tr, client=client, checkpoint_dir=tmp_path, timeout=TIMEOUT
    )
    _assert_same(straight, resumed)
    assert len(resumed.history_["loss"]) == PARAMS["epochs"]
    # Only the last epoch's blocks are kept (plus the manifest).
    assert sorted(p.name for p in tmp_path.iterdir())[-1] == "dsgd.json"
    assert {re.sub(r"dsgd-[ui]\d+-", "", p.name) for p in tmp_path.glob("*.npz")} == {"e8.npz"}
    with pytest.raises(ValueError, match="another fit"):
        recfast.MatrixFactorization(**dict(PARAMS, factors=8)).fit(
            tr, client=client, checkpoint_dir=tmp_path, timeout=TIMEOUT
        )


def _epochs_done(dask_scheduler, tag_re=re.compile(r"^dsgd-upd-[0-9a-f]+-e(\d+)-")):
    done = [int(m.group(1)) for k, ts in dask_scheduler.tasks.items()
            if isinstance(k, str) and ts.state == "memory" and (m := tag_re.search(k))]  # fmt: skip
    return max(done, default=-1)


def _kill_one_worker_when(client, ready, fired):
    """Background: once ``ready()``, SIGKILL the first worker's process (its nanny restarts it)."""
    pids = client.run(os.getpid)

    def run():
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not ready():
            time.sleep(0.02)
        os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
        fired.append(time.monotonic())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("with_checkpoint", [False, True], ids=["lineage-parquet", "checkpoint"])
def test_killed_worker_loses_nothing(client, data, tmp_path, with_checkpoint):
    """A worker process killed mid-fit: Dask re-runs the lost pure tasks (from the lineage back
    to the parquet files, or from the last checkpoint) and the fit ends with the same factors
    as an undisturbed one."""
    tr, te = data
    params = dict(PARAMS, epochs=20)
    ref = recfast.MatrixFactorization(**params).fit(tr, client=client, timeout=TIMEOUT)
    if with_checkpoint:
        ratings, ckpt = tr, tmp_path / "ckpt"
        ready = lambda: (ckpt / "dsgd.json").exists()  # noqa: E731
    else:
        # A lost block of ratings is re-read from the files it came from.
        df = pd.DataFrame({"user": tr[0], "item": tr[1], "rating": tr[2]})
        dd.from_pandas(df, npartitions=2).to_parquet(tmp_path / "ratings")
        ratings, ckpt = dd.read_parquet(tmp_path / "ratings"), None
        ready = lambda: client.run_on_scheduler(_epochs_done) >= 1  # noqa: E731
    fired: list[float] = []
    t = _kill_one_worker_when(client, ready, fired)
    m = recfast.MatrixFactorization(**params).fit(
        ratings, client=client, checkpoint_dir=ckpt, timeout=TIMEOUT
    )
    end = time.monotonic()
    t.join(TIMEOUT)
    assert fired and fired[0] < end, "the worker was not killed during the fit"
    assert abs(m.score(te) - ref.score(te)) <= 0.005
    _assert_same(m, ref)  # the tasks are pure and one-threaded: re-runs give the same bits


# -- bad input -----------------------------------------------------------------------------
def test_bad_dataframes(client, data):
    tr, _ = data
    df = pd.DataFrame({"user": tr[0], "item": tr[1], "rating": tr[2]})
    before = df.copy()
    m = recfast.MatrixFactorization(**PARAMS)
    with pytest.raises(ValueError, match=r"no column\(s\) \['score'\]"):
        m.fit(dd.from_pandas(df, npartitions=2), client=client, columns=("user", "item", "score"))
    bad = df.assign(item=df["item"].astype(np.float64))
    with pytest.raises(TypeError, match="'item'.*integers"):
        m.fit(dd.from_pandas(bad, npartitions=2), client=client)
    with pytest.raises(TypeError, match="numbers"):
        m.fit(dd.from_pandas(df.assign(rating="x"), npartitions=2), client=client)
    with pytest.raises(ValueError, match="missing ids"):
        m.fit(dd.from_pandas(df.assign(user=df["user"].astype("Int64").where(df.index != 2)),
                             npartitions=2), client=client)  # fmt: skip
    neg = df.assign(user=df["user"] - 5)
    with pytest.raises(ValueError, match=">= 0"):
        m.fit(dd.from_pandas(neg, npartitions=2), client=client)
    nan = df.assign(rating=df["rating"].where(df.index != 3))
    with pytest.raises(ValueError, match="NaN"):
        m.fit(dd.from_pandas(nan, npartitions=2), client=client)
    with pytest.raises(TypeError, match="columns"):
        m.fit(dd.from_pandas(df, npartitions=2), client=client, columns=["user", "item"])
    with pytest.raises(TypeError, match="needs client="):
        m.fit(dd.from_pandas(df, npartitions=2))
    with pytest.raises(ValueError, match="not supported with client="):
        m.fit(tr, validation=tr, client=client)
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        m.fit(tr, client="tcp://127.0.0.1:8786")
    pd.testing.assert_frame_equal(df, before)
    assert not hasattr(m, "user_factors_") or "user_factors" not in m.__dict__.get("_arrays", {})


def test_cluster_without_workers():
    with distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as c, distributed.Client(c) as cl:  # fmt: skip
        with pytest.raises(ValueError, match="no workers"):
            recfast.MatrixFactorization(**PARAMS).fit((np.array([0]), np.array([0]), np.array([1.0])), client=cl)  # fmt: skip


def test_client_closed_mid_fit(cluster, data):
    tr, _ = data
    copies = [x.copy() for x in tr]
    cl = distributed.Client(cluster, timeout=TIMEOUT)
    cl.wait_for_workers(2, timeout=TIMEOUT)
    threading.Timer(1.0, cl.close).start()
    m = recfast.MatrixFactorization(**dict(PARAMS, epochs=500))
    with pytest.raises(RuntimeError, match="client closed during fit"):
        m.fit(tr, client=cl, timeout=TIMEOUT)
    assert "user_factors" not in m.__dict__.get("_arrays", {})
    for x, y in zip(tr, copies):
        np.testing.assert_array_equal(x, y)


def test_divergence_and_timeout_are_clear_errors(client, data):
    tr, _ = data
    m = recfast.MatrixFactorization(**dict(PARAMS, solver="sgd", learning_rate=1e4))
    with pytest.raises(FloatingPointError, match="diverged.*epoch 1 of"):
        m.fit(tr, client=client, timeout=TIMEOUT)
    assert "user_factors" not in m.__dict__.get("_arrays", {})
    with pytest.raises(TimeoutError, match="timeout=0.001"):
        m.fit(tr, client=client, timeout=0.001)
    with pytest.raises(ValueError, match="timeout"):
        recfast.MatrixFactorization().fit(tr, timeout=5)  # no client: not a distributed fit
