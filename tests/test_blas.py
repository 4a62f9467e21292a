"""The native GEMM the sequence and convolution kernels call: SciPy's BLAS and the fallback loop."""

import numpy as np
import pytest

from recfast.testing import live_backends

pytestmark = pytest.mark.skipif(
    "cpu" not in live_backends("dense_forward"), reason="no recfast._cpu"
)


@pytest.fixture(params=["numpy-openblas64", "scipy", "fallback"])
def cpu(request):
    from recfast import _cpu
    from recfast._backends.cpu import _blas

    if request.param == "numpy-openblas64":
        if _blas.numpy_openblas64() is None:
            pytest.skip("this NumPy bundles no ILP64 OpenBLAS")
        assert _blas.install(_cpu) and _blas.source == "numpy-openblas64"
    elif request.param == "scipy":
        assert _blas.install_scipy(_cpu)
    else:
        _cpu.blas_install(None, None)
        assert not _cpu.blas_installed()
    yield _cpu
    assert _blas.install(_cpu)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize(
    "m,n,k", [(1, 1, 1), (5, 3, 7), (37, 65, 129), (4, 6, 0), (1, 40, 33), (1, 7, 0)]
)
def test_gemm_matches_numpy(cpu, dtype, trans_a, trans_b, m, n, k):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    c0 = rng.standard_normal((m, n)).astype(dtype)
    expected = 1.5 * (a.T if trans_a else a) @ (b.T if trans_b else b) + 0.25 * c0
    c = c0.copy()
    cpu.blas_gemm(a, b, c, trans_a, trans_b, 1.5, 0.25)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c, expected, rtol=tol, atol=tol * max(1, k))
    # beta = 0 ignores C entirely, NaN included (poisoned output).
    c = np.full((m, n), np.nan, dtype)
    cpu.blas_gemm(a, b, c, trans_a, trans_b, 1.0, 0.0)
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)
    np.testing.assert_allclose(c, product, rtol=tol, atol=tol * max(1, k))


def test_thread_scope_restores_the_pool():
    import ctypes

    from recfast import _cpu
    from recfast._backends.cpu import _blas

    found = _blas.numpy_openblas64()
    getter = found[-1] if found is not None else _blas.thread_functions()[1]
    if not getter:
        pytest.skip("this BLAS exports no thread-count functions")
    get = ctypes.CFUNCTYPE(ctypes.c_int)(getter)
    before = get()
    assert _cpu.blas_scoped_threads(1, getter) == 1
    assert get() == before
