"""The reference backend runs on any array-API namespace (issue #8): every op on
``array_api_strict`` arrays, which refuse everything outside the standard, against the same
calls on NumPy. This is the proof that nothing NumPy-only is left on the path a CuPy array (or a
PyTorch CUDA tensor) takes through validation and the reference."""

from __future__ import annotations

import numpy as np
import pytest
from op_cases import CASES, HOST_ONLY

xps = pytest.importorskip("array_api_strict", reason="pip install array-api-strict")


def _to_numpy(a):
    return np.from_dlpack(a) if hasattr(a, "__dlpack__") else np.asarray(a)


@pytest.mark.parametrize("backend", [None, "reference"])
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reference_on_array_api_strict_matches_numpy(case, backend, dtype):
    if case in HOST_ONLY:
        pytest.skip(f"{case} takes host arrays only")
    make, call = CASES[case]
    a_np = make(np.random.default_rng(0), dtype)
    a_x = {k: xps.asarray(v) for k, v in a_np.items()}
    want = call({k: v.copy() for k, v in a_np.items()}, "reference")
    got = call(a_x, backend)
    assert set(got) == set(want)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for key, w in want.items():
        g = got[key]
        if isinstance(w, np.ndarray):
            assert type(g).__module__.startswith("array_api_strict"), (key, type(g))
            np.testing.assert_allclose(_to_numpy(g), w, rtol=tol, atol=tol, err_msg=key)
        else:
            assert g == pytest.approx(w, rel=tol), key


def test_only_the_reference_takes_other_namespaces():
    import recfast

    x = xps.ones((2, 3), dtype=xps.float32)
    W = xps.ones((4, 3), dtype=xps.float32)
    with pytest.raises(recfast.BackendUnavailableError, match="cannot take array_api_strict"):
        recfast.dense(x, W, backend="numba")
    with pytest.raises(TypeError, match="cannot mix"):
        recfast.dense(x, np.ones((4, 3), np.float32))
