"""MatrixFactorization.fit on device arrays (recfast/models/_mf_device.py), on the host: the
device path is generic over the array namespace, so it runs here on NumPy arrays with the cpu
backend, and is checked against a hand-written loop and against the host fit. The same fit on
CuPy arrays and PyTorch CUDA tensors is in test_gpu.py (marked gpu)."""

from __future__ import annotations

import numpy as np
import pytest

import recfast
from recfast._kinds import NUMPY
from recfast.models import _mf_device


def _low_rank(seed=0, nu=300, ni=200, k=6, nnz=20000):
    rng = np.random.default_rng(seed)
    P, Q = rng.standard_normal((nu, k)), rng.standard_normal((ni, k))
    r, c = rng.integers(0, nu, nnz), rng.integers(0, ni, nnz)
    v = np.clip((P[r] * Q[c]).sum(1) / 3 + 3 + 0.1 * rng.standard_normal(nnz), 1, 5)
    return r, c, v


def test_shuffle_order_is_a_permutation_and_the_same_in_every_namespace():
    o = _mf_device.shuffle_order(np, 5000, 7)
    assert o.dtype == np.int64 and np.array_equal(np.sort(o), np.arange(5000))
    assert not np.array_equal(o, np.arange(5000))
    assert not np.array_equal(o, _mf_device.shuffle_order(np, 5000, 8))
    assert np.array_equal(o, _mf_device.shuffle_order(np, 5000, 7))
    torch = pytest.importorskip("torch")
    from array_api_compat import array_namespace

    o_torch = _mf_device.shuffle_order(array_namespace(torch.empty(0)), 5000, 7)
    np.testing.assert_array_equal(o_torch.numpy(), o)  # int64 wrap-around and shifts agree


@pytest.mark.parametrize("solver", ["adagrad", "sgd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_path_equals_a_hand_written_loop(solver, dtype):
    r, c, v = _low_rank()
    m = recfast.MatrixFactorization(factors=5, epochs=4, solver=solver, random_state=3,
                                    num_threads=1, dtype=dtype)  # fmt: skip
    st, hist = _mf_device.fit(m, (r, c, v), NUMPY, None, None)
    # by hand: the host fit's initial draws, the shuffled order, sequential epochs (on the
    # backend the model picked: the fastest live one)
    p = m._checked_params()
    rng = np.random.default_rng(3)
    nu, ni = r.max() + 1, c.max() + 1
    U = (rng.standard_normal((nu, 5)) * p["init_std"]).astype(dtype)
    V = (rng.standard_normal((ni, 5)) * p["init_std"]).astype(dtype)
    o = _mf_device.shuffle_order(np, len(v), int(rng.integers(2**62)))
    ub, ib = np.zeros(nu, dtype), np.zeros(ni, dtype)
    acc = (
        dict(user_accum=np.ones(nu, dtype), item_accum=np.ones(ni, dtype))
        if solver == "adagrad"
        else {}
    )
    vv = v.astype(dtype)
    mu = float(vv.mean(dtype=np.float64))
    lr, losses = p["lr"], []
    for _ in range(4):
        losses.append(recfast.sgd_mf_epoch(
            r[o], c[o], vv[o], U, V, user_bias=ub, item_bias=ib, global_mean=mu,
            learning_rate=lr, regularization=p["reg"], bias_regularization=p["breg"],
            num_threads=1, **acc))  # fmt: skip
        lr *= p["decay"]
    np.testing.assert_array_equal(st.U, U)
    np.testing.assert_array_equal(st.V, V)
    np.testing.assert_array_equal(st.ub, ub)
    np.testing.assert_allclose(hist["loss"], losses, rtol=1e-12)
    assert st.mu == mu and st.rating_range == (float(vv.min()), float(vv.max()))


def test_device_path_fits_as_well_as_the_host_fit():
    r, c, v = _low_rank(1)
    tr = np.arange(len(v)) % 5 != 0
    m = recfast.MatrixFactorization(factors=8, epochs=25, random_state=0, num_threads=1)
    st, hist = _mf_device.fit(m, (r[tr], c[tr], v[tr]), NUMPY, (r[~tr], c[~tr], v[~tr]), None)
    host = recfast.MatrixFactorization(factors=8, epochs=25, random_state=0).fit(
        (r[tr], c[tr], v[tr]), validation=(r[~tr], c[~tr], v[~tr])
    )
    assert len(hist["val_rmse"]) == 25
    assert abs(hist["val_rmse"][-1] - host.history_["val_rmse"][-1]) < 0.01
    # the namespace RMSE (used on the device) equals the host's
    from recfast.models.mf import _rmse

    rows, cols, vals = r[~tr], c[~tr], v[~tr].astype(np.float32)
    torch = pytest.importorskip("torch")
    from array_api_compat import array_namespace

    xt = array_namespace(torch.empty(0))
    tst = type(st)(*(torch.from_numpy(a) for a in (st.U, st.V, st.ub, st.ib)), st.mu,
                   st.rating_range)  # fmt: skip
    got = _rmse(tst, torch.from_numpy(rows), torch.from_numpy(cols), torch.from_numpy(vals), xt)
    assert got == pytest.approx(_rmse(st, rows, cols, vals), rel=1e-6)


def test_device_path_early_stopping_keeps_the_best_epoch():
    r, c, v = _low_rank(2, nnz=4000)
    tr = np.arange(len(v)) % 4 != 0
    m = recfast.MatrixFactorization(factors=32, epochs=40, regularization=0.0, random_state=0,
                                    num_threads=1)  # fmt: skip
    val = (r[~tr], c[~tr], v[~tr])
    st, hist = _mf_device.fit(m, (r[tr], c[tr], v[tr]), NUMPY, val, 2)
    best = hist["best_epoch"]
    assert best < 40 and len(hist["val_rmse"]) == best + 2
    from recfast.models.mf import _rmse

    got = _rmse(st, r[~tr], c[~tr], v[~tr].astype(np.float32))
    assert got == pytest.approx(min(hist["val_rmse"]), rel=1e-6)
    assert got == pytest.approx(hist["val_rmse"][best - 1], rel=1e-6)


def test_device_path_bad_input():
    r, c, v = _low_rank(nnz=100)
    m = recfast.MatrixFactorization(factors=4, epochs=1)
    with pytest.raises(TypeError, match="rows, cols, values"):
        _mf_device.fit(m, [r, c, v], NUMPY, None, None)
    with pytest.raises(TypeError, match="float32 or float64"):
        _mf_device.fit(m, (r, c, v.astype(np.float16)), NUMPY, None, None)
    with pytest.raises(ValueError, match="rows has entry -1"):
        _mf_device.fit(m, (np.r_[r[:-1], -1], c, v), NUMPY, None, None)
    with pytest.raises(ValueError, match="same length"):
        _mf_device.fit(m, (r, c[:-1], v), NUMPY, None, None)
    with pytest.raises(ValueError, match="empty"):
        _mf_device.fit(m, (r[:0], c[:0], v[:0]), NUMPY, None, None)
    with pytest.raises(ValueError, match="finite"):
        _mf_device.fit(m, (r, c, np.r_[v[:-1], np.nan]), NUMPY, None, None)
    with pytest.raises(ValueError, match="early_stopping needs validation"):
        _mf_device.fit(m, (r, c, v), NUMPY, None, 3)
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="same array kind"):
        _mf_device.fit(m, (r, c, v), NUMPY, tuple(torch.from_numpy(a) for a in (r, c, v)), None)
    with pytest.raises(TypeError, match="same array kind"):
        _mf_device.fit(m, (r, c, v), NUMPY, "ratings", None)
