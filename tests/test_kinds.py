"""Array kinds (issue #8): PyTorch CPU tensors in, tensors out, zero-copy, on every host backend;
mixed kinds, tensors that require grad and device arrays without a GPU backend are refused."""

from __future__ import annotations

import re

import numpy as np
import pytest
from op_cases import CASES, COVERS

import recfast
from recfast import _registry as reg
from recfast.testing import TORCH_MISSING, live_backends

torch = pytest.importorskip("torch", reason=TORCH_MISSING)

HOST = [b for b in ("cpu", "numba") if live_backends("dense_forward", (b,))]


def _to_torch(a):
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in a.items()}


def _np(v):
    return v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def test_every_op_is_covered_by_a_case():
    assert {op for ops in COVERS.values() for op in ops} == set(reg.OPS)


@pytest.fixture
def spy(monkeypatch):
    """Records the argument structure each op hands its backend."""
    import recfast._backends as be

    seen = []
    real = be.select

    def select(op, backend=None, kind=None):
        name, fn = real(op, backend, kind) if kind is not None else real(op, backend)

        def wrapped(args):
            seen.append(args)
            return fn(args)

        return name, wrapped

    import sys

    for mod in ("recfast.mf", "recfast.dense", "recfast.rnn", "recfast.conv2d", "recfast.implicit"):
        monkeypatch.setattr(sys.modules[mod], "select", select)
    return seen


@pytest.mark.parametrize("backend", HOST)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_tensors_in_tensors_out(case, backend, dtype, spy):
    make, call = CASES[case]
    a_np = make(np.random.default_rng(0), dtype)
    a_t = _to_torch({k: v.copy() for k, v in a_np.items()})
    ptrs = {k: v.data_ptr() for k, v in a_t.items() if isinstance(v, torch.Tensor)}
    want = call(a_np, backend)
    spy.clear()
    got = call(a_t, backend)
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        if isinstance(w, np.ndarray):
            assert isinstance(g, torch.Tensor), f"{key} came back as {type(g).__name__}"
            np.testing.assert_array_equal(g.numpy(), w, err_msg=key)  # the same kernel, bit for bit
        else:
            assert g == w, key
    # Zero-copy: every tensor input reached the kernels as a view of its own memory ...
    seen = {x.ctypes.data for args in spy for x in args if isinstance(x, np.ndarray) and x.size}
    used = {k for k in ptrs if any(_shares(a_t[k], p) for p in seen)}
    assert used, "no input reached a kernel zero-copy"
    # ... and in-place updates and out= land in the caller's tensors, which come back as such.
    for key in ("U", "V", "ub", "ib", "out", "c_out"):
        if key in got and key in ptrs:
            assert got[key].data_ptr() == ptrs[key]
    if case == "dense":
        assert got["y_out"].data_ptr() == ptrs["out"]


def _shares(t, ptr):
    lo = t.data_ptr()
    return lo <= ptr < lo + max(t.numel() * t.element_size(), 1)


def test_in_place_sgd_updates_the_callers_tensors():
    a = _to_torch(CASES["sgd_mf_epoch"][0](np.random.default_rng(1), np.float32))
    U0 = a["U"].clone()
    recfast.sgd_mf_epoch(a["rows"], a["cols"], a["values"], a["U"], a["V"],
                         learning_rate=0.1, regularization=0.0)  # fmt: skip
    assert not torch.equal(U0, a["U"])


def test_mixed_kinds_name_both():
    x = np.ones((2, 3), np.float32)
    W = torch.ones((4, 3))
    with pytest.raises(TypeError, match=r"x is a numpy.ndarray but W is a torch.Tensor"):
        recfast.dense(x, W)


def test_requires_grad_is_refused_with_the_detach_hint():
    x = torch.ones((2, 3), requires_grad=True)
    with pytest.raises(TypeError, match=r"\.detach\(\)"):
        recfast.dense(x, torch.ones((4, 3)))
    with pytest.raises(TypeError, match=r"\.detach\(\)"):
        recfast.dense(torch.ones((2, 3)), torch.nn.Parameter(torch.ones((4, 3))))


def test_torch_dtype_rules_hold():
    with pytest.raises(TypeError, match="float32 or float64"):
        recfast.dense(torch.ones((2, 3), dtype=torch.float16), torch.ones((4, 3)))
    with pytest.raises(TypeError, match="convert W"):
        recfast.dense(torch.ones((2, 3)), torch.ones((4, 3), dtype=torch.float64))


class CudaStandIn:
    """An object that looks like a CUDA array and nothing else (no GPU here)."""

    def __init__(self, shape, typestr="<f4"):
        self.shape = shape
        self.__cuda_array_interface__ = {
            "shape": shape, "typestr": typestr, "data": (0, False), "version": 3,
        }  # fmt: skip


def test_device_arrays_without_a_gpu_backend_say_what_is_missing():
    live = {b.name for b in recfast.backends() if b.available}
    if live & {"cuda", "cupy"}:
        pytest.skip("a GPU backend is live here")
    x, W = CudaStandIn((2, 3)), CudaStandIn((4, 3))
    # the reason: recfast._cuda not built, built but no device, or disabled (issue 10)
    with pytest.raises(
        recfast.BackendUnavailableError, match=r"cuda: (no CUDA device|disabled|.*recfast._cuda)"
    ):
        recfast.dense(x, W)
    # "cannot take" device arrays, or (RECFAST_DISABLE_EXT=1) the cpu backend is disabled
    with pytest.raises(recfast.BackendUnavailableError, match="cannot take|disabled"):
        recfast.dense(x, W, backend="cpu")
    with pytest.raises(recfast.BackendUnavailableError, match="array-API namespace"):
        recfast.dense(x, W, backend="reference")
    with pytest.raises(TypeError, match="cannot mix"):
        recfast.dense(x, np.ones((4, 3), np.float32))


def test_named_gpu_backend_reports_its_probe_reason():
    info = {b.name: b for b in recfast.backends()}
    if info["cuda"].available:
        pytest.skip("cuda is live here")
    # escaped: the no-device reason holds parentheses (issue 10)
    with pytest.raises(recfast.BackendUnavailableError, match=re.escape(info["cuda"].reason)):
        recfast.dense(np.ones((2, 3), np.float32), np.ones((4, 3), np.float32), backend="cuda")


# --- estimators -------------------------------------------------------------------------------
def test_matrix_factorization_keeps_the_kind_of_its_data(tmp_path):
    rng = np.random.default_rng(0)
    r, c = rng.integers(0, 20, 300), rng.integers(0, 15, 300)
    v = rng.uniform(1, 5, 300).astype(np.float32)
    m_np = recfast.MatrixFactorization(factors=4, epochs=3, random_state=0).fit((r, c, v))
    m_t = recfast.MatrixFactorization(factors=4, epochs=3, random_state=0)
    m_t.fit((torch.from_numpy(r), torch.from_numpy(c), torch.from_numpy(v)))
    assert isinstance(m_t.user_factors_, torch.Tensor) and m_t.array_kind_ == "torch"
    np.testing.assert_array_equal(m_t.user_factors_.numpy(), m_np.user_factors_)
    p = m_t.predict(torch.tensor([0, 1]), torch.tensor([2, 3]))
    assert isinstance(p, torch.Tensor)
    np.testing.assert_array_equal(p.numpy(), m_np.predict([0, 1], [2, 3]))
    items, scores = m_t.recommend([0, 1], n=3)
    assert isinstance(items, torch.Tensor) and isinstance(scores, torch.Tensor)
    path = tmp_path / "m.npz"
    m_t.save(path)
    with np.load(path, allow_pickle=False) as z:
        assert isinstance(z["user_factors"], np.ndarray)
    back = recfast.MatrixFactorization.load(path)
    assert isinstance(back.user_factors_, np.ndarray)
    as_t = recfast.MatrixFactorization.load(path, array_kind="torch")
    assert isinstance(as_t.item_factors_, torch.Tensor)
    np.testing.assert_array_equal(as_t.item_factors_.numpy(), m_np.item_factors_)


def test_gru4rec_and_convnet_keep_the_kind_of_their_data():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 12, rng.integers(2, 7)) for _ in range(30)]
    kw = dict(hidden=8, embedding=6, epochs=1, random_state=0, batch_size=8)
    g_np = recfast.GRU4Rec(**kw).fit(seqs, n_items=12)
    g_t = recfast.GRU4Rec(**kw).fit([torch.from_numpy(s) for s in seqs], n_items=12)
    assert isinstance(g_t.item_embeddings_, torch.Tensor)
    assert isinstance(g_t.gru_params_["W"], torch.Tensor)
    np.testing.assert_array_equal(g_t.output_weights_.numpy(), g_np.output_weights_)
    items, _ = g_t.recommend(seqs[:3], n=4)
    assert isinstance(items, torch.Tensor)
    np.testing.assert_array_equal(items.numpy(), g_np.recommend(seqs[:3], n=4)[0])

    X = rng.standard_normal((16, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, 16)
    c_kw = dict(n_classes=3, channels=(2, 3), hidden=5, epochs=1, batch_size=8)
    c_np = recfast.models.ConvNet(**c_kw).fit(X, y)
    c_t = recfast.models.ConvNet(**c_kw).fit(torch.from_numpy(X), torch.from_numpy(y))
    assert isinstance(c_t.params_["w1"], torch.Tensor)
    enc = c_t.encode(torch.from_numpy(X[:4]))
    assert isinstance(enc, torch.Tensor)
    np.testing.assert_array_equal(enc.numpy(), c_np.encode(X[:4]))
