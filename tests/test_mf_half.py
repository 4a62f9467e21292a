"""Half-precision factor storage for SGD-MF (float16 factors, float32 arithmetic): the shared
conversions of csrc/include/recfast/half.hpp against NumPy on every half and on a wide sample of
floats, every backend that takes float16 factors against the reference, the bad-input cases, and
MatrixFactorization(factor_dtype="float16")."""

from __future__ import annotations

import numpy as np
import pytest

import recfast
from recfast.testing import live_backends, random_mf_problem

pytestmark = pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")

MF = live_backends("sgd_mf_epoch")
HALF = [b for b in MF if b != "numba"]  # the Numba fallback has no float16
needs_cpu = pytest.mark.skipif("cpu" not in MF, reason="recfast._cpu not built")


@needs_cpu
def test_half_to_float_is_exact_on_every_half():
    from recfast import _cpu

    h = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    got, want = _cpu.half_to_float(h), h.astype(np.float32)
    same = (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), h[~same][:5]


@needs_cpu
def test_float_to_half_rounds_as_numpy():
    from recfast import _cpu

    rng = np.random.default_rng(0)
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    x = np.concatenate([
        *(rng.standard_normal(200_000) * s for s in (1e-8, 1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 7e4)),
        halves,  # exactly representable
        halves + 2.0**-25, halves * (1 + 2.0**-11),  # halfway and near-halfway: ties to even
        [65504, 65519.99, 65520, 65536, np.inf, -np.inf, np.nan, -0.0, 2.0**-24, 2.0**-25],
    ]).astype(np.float32)  # fmt: skip
    x = np.concatenate([x, np.arange(0, 2**32, 7919, dtype=np.uint64).astype(np.uint32).view(
        np.float32)])  # fmt: skip
    with np.errstate(all="ignore"):
        want = x.astype(np.float16)
    got = _cpu.float_to_half(x)
    same = (got.view(np.uint16) == want.view(np.uint16)) | (np.isnan(got) & np.isnan(want))
    assert same.all(), x[~same][:5]


@needs_cpu
@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_every_isa_copy_converts_exactly(level):
    """The conversions of each instruction-set copy (F16C in avx2/avx512, half.hpp's integer
    steps in baseline), in a subprocess (RECFAST_ISA is read once per process)."""
    import os
    import subprocess
    import sys

    from recfast import _cpu

    order = ["baseline", "avx2", "avx512"]
    if order.index(level) > order.index(_cpu.simd_level()):
        pytest.skip(f"this CPU runs {_cpu.simd_level()}, not {level}")
    code = (
        "import sys, pytest\n"
        "from recfast import _cpu\n"
        f"assert _cpu.simd_level() == {level!r}, _cpu.simd_level()\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', {__file__!r}, '-k', "
        "'half_to_float_is_exact or float_to_half_rounds or match_the_reference and cpu "
        "and 64 and int32']))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], env={**os.environ, "RECFAST_ISA": level},
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert " passed" in res.stdout


def _problem(k, index_dtype, seed=0):
    p = random_mf_problem(150, 120, 2500, k, dtype=np.float32, index_dtype=index_dtype, seed=seed)
    return p


def _run(p, backend, ada, biased, epochs=3, **kw):
    U, V = p.user_factors.astype(np.float16), p.item_factors.astype(np.float16)
    nu, ni = len(U), len(V)
    extra = {}
    if biased:
        extra.update(user_bias=np.zeros(nu, np.float32), item_bias=np.zeros(ni, np.float32))
    if ada:
        extra.update(user_accum=np.ones(nu, np.float32), item_accum=np.ones(ni, np.float32))
    losses = [
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values, U, V, global_mean=3.0, learning_rate=0.05,
                             regularization=0.02, backend=backend, **extra, **kw)
        for _ in range(epochs)
    ]  # fmt: skip
    return U, V, extra, losses


@pytest.mark.parametrize("backend", [b for b in HALF if b != "reference"])
@pytest.mark.parametrize("k", [64, 7, 32])
@pytest.mark.parametrize("ada", [False, True], ids=["sgd", "adagrad"])
@pytest.mark.parametrize("biased", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_half_factors_match_the_reference(backend, k, ada, biased, index_dtype):
    p = _problem(k, index_dtype)
    U, V, extra, losses = _run(p, backend, ada, biased, num_threads=1)
    Ur, Vr, extra_r, losses_r = _run(p, "reference", ada, biased)
    assert U.dtype == V.dtype == np.float16
    # The same float32 arithmetic up to summation order, rounded after every update: equal but
    # for one-ulp differences (float16's ulp is 2^-11 relative), which later updates of the row
    # carry on (about 7% of the entries after 3 epochs).
    for got, want in ((U, Ur), (V, Vr)):
        np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32),
                                   rtol=4e-3, atol=2e-4)  # fmt: skip
        assert (got != want).mean() < 0.2
    for key in extra:
        np.testing.assert_allclose(extra[key], extra_r[key], rtol=1e-3, atol=1e-4, err_msg=key)
    np.testing.assert_allclose(losses, losses_r, rtol=1e-4)


@needs_cpu
def test_half_factors_block_schedule_is_the_same_on_any_thread_count():
    p = _problem(64, np.int32, seed=2)
    r, c, v, bp = recfast.mf_block_layout(p.rows, p.cols, p.values, 150, 120, 4, seed=0)
    q = random_mf_problem(150, 120, 2500, 64, seed=2)
    q.rows, q.cols, q.values = r, c, v
    one = _run(q, "cpu", True, True, block_ptr=bp, n_blocks=4, num_threads=1)
    two = _run(q, "cpu", True, True, block_ptr=bp, n_blocks=4, num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[3] == two[3]
    seq = _run(q, "cpu", True, True, num_threads=1)  # the storage-order pass
    np.testing.assert_array_equal(one[0], seq[0])


@pytest.mark.parametrize("backend", HALF)
def test_half_factors_bad_input(backend):
    p = _problem(8, np.int32)
    U, V = p.user_factors.astype(np.float16), p.item_factors.astype(np.float16)
    U0, V0 = U.copy(), V.copy()
    kw = dict(learning_rate=0.05, regularization=0.0, backend=backend)
    with pytest.raises(TypeError, match="float32"):
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values.astype(np.float64), U, V, **kw)
    with pytest.raises(TypeError, match="both be float16"):
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values, U, V.astype(np.float32), **kw)
    with pytest.raises(TypeError, match="float32"):  # biases stay float32
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values, U, V, user_bias=np.zeros(150, np.float16),
                             item_bias=np.zeros(120, np.float16), **kw)  # fmt: skip
    with pytest.raises(ValueError, match="C-contiguous"):
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values, np.asfortranarray(U), V, **kw)
    bad = p.rows.copy()
    bad[5] = 150
    with pytest.raises(ValueError, match="rows"):
        recfast.sgd_mf_epoch(bad, p.cols, p.values, U, V, **kw)
    np.testing.assert_array_equal(U, U0)
    np.testing.assert_array_equal(V, V0)


@pytest.mark.skipif("numba" not in MF, reason="numba not installed")
def test_half_factors_on_numba_say_which_backends_take_them():
    p = _problem(8, np.int32)
    U, V = p.user_factors.astype(np.float16), p.item_factors.astype(np.float16)
    with pytest.raises(TypeError, match="Numba fallback has no float16"):
        recfast.sgd_mf_epoch(p.rows, p.cols, p.values, U, V, learning_rate=0.05,
                             regularization=0.0, backend="numba")  # fmt: skip


def _low_rank(seed=0, nu=400, ni=300, k=6, nnz=30000):
    rng = np.random.default_rng(seed)
    P, Q = rng.standard_normal((nu, k)), rng.standard_normal((ni, k))
    r, c = rng.integers(0, nu, nnz), rng.integers(0, ni, nnz)
    v = np.clip((P[r] * Q[c]).sum(1) / 3 + 3 + 0.1 * rng.standard_normal(nnz), 1, 5)
    return r, c, v.astype(np.float32)


@pytest.mark.skipif(not HALF or HALF == ["reference"], reason="no fast backend takes float16")
def test_matrix_factorization_with_half_factors(tmp_path):
    r, c, v = _low_rank()
    tr = np.arange(len(v)) % 5 != 0
    kw = dict(factors=16, epochs=20, random_state=0)
    full = recfast.MatrixFactorization(**kw).fit((r[tr], c[tr], v[tr]))
    half = recfast.MatrixFactorization(factor_dtype="float16", **kw).fit((r[tr], c[tr], v[tr]))
    assert half.user_factors_.dtype == half.item_factors_.dtype == np.float16
    assert half.user_bias_.dtype == np.float32
    assert half.user_factors_.nbytes * 2 == full.user_factors_.nbytes
    test = (r[~tr], c[~tr], v[~tr])
    assert abs(half.score(test) - full.score(test)) < 0.01
    pred = half.predict(r[:10], c[:10])
    assert pred.dtype == np.float32
    U, V = half.user_factors_.astype(np.float32), half.item_factors_.astype(np.float32)
    want = half.global_mean_ + half.user_bias_[r[:10]] + half.item_bias_[c[:10]] + np.einsum(
        "ij,ij->i", U[r[:10]], V[c[:10]])  # fmt: skip
    np.testing.assert_allclose(pred, np.clip(want, *half.rating_range_), rtol=1e-6)
    items, scores = half.recommend(np.arange(3), n=4)
    assert items.shape == (3, 4) and scores.dtype == np.float32
    half.save(tmp_path / "h.npz")
    back = recfast.MatrixFactorization.load(tmp_path / "h.npz")
    assert back.factor_dtype == "float16" and back.user_factors_.dtype == np.float16
    np.testing.assert_array_equal(back.predict(r[:10], c[:10]), pred)
    assert back.get_params()["factor_dtype"] == "float16"


def test_matrix_factorization_factor_dtype_checks():
    r, c, v = _low_rank(nnz=500)
    for bad in (dict(factor_dtype="float16", dtype=np.float64), dict(factor_dtype=np.int8),
                dict(factor_dtype="bogus")):  # fmt: skip
        with pytest.raises(TypeError, match="factor_dtype"):
            recfast.MatrixFactorization(epochs=1, **bad).fit((r, c, v))
    with pytest.raises(ValueError, match="client"):
        recfast.MatrixFactorization(factor_dtype="float16").fit((r, c, v), client=object())


@pytest.mark.slow
@pytest.mark.skipif(not HALF or HALF == ["reference"], reason="no fast backend takes float16")
def test_movielens_100k_accuracy_with_half_factors(ml100k):
    from recfast.datasets import load_movielens

    full = load_movielens(ml100k / "u.data")
    maps = (full.user_ids, full.item_ids)
    rmse = {None: [], "float16": []}
    for i in range(1, 6):
        train = load_movielens(ml100k / f"u{i}.base", id_maps=maps)
        test = load_movielens(ml100k / f"u{i}.test", id_maps=maps)
        for fd in rmse:
            m = recfast.MatrixFactorization(random_state=0, factor_dtype=fd).fit(train)
            rmse[fd].append(m.score(test))
    print("ml-100k u1..u5 RMSE float32 / float16 factors:", np.mean(rmse[None]),
          np.mean(rmse["float16"]))  # fmt: skip
    assert abs(np.mean(rmse["float16"]) - np.mean(rmse[None])) < 0.002
    assert np.mean(rmse["float16"]) <= 0.910
