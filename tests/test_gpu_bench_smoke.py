"""The GPU check's benchmark code (recfast/bench/gpu.py) run on the CPU: torch CPU tensors, CPU
backends, and a NumPy stand-in for the few CuPy calls it makes. No number is checked here (the
GPU check does that); this catches a wrong call or name in code that otherwise runs only on a
GPU machine, once per session at best."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from recfast.testing import live_backends

torch = pytest.importorskip("torch")


class _RandomState:
    def __init__(self, seed):
        self._rs = np.random.RandomState(seed)

    def randint(self, lo, hi, n, dtype):
        return self._rs.randint(lo, hi, n).astype(dtype)

    def uniform(self, lo, hi, n, dtype):
        return self._rs.uniform(lo, hi, n).astype(dtype)

    def standard_normal(self, shape, dtype):
        return self._rs.standard_normal(shape).astype(dtype)


@pytest.fixture
def gpu_bench(monkeypatch):
    fake = types.ModuleType("cupy")
    fake.asarray = np.array  # a copy, as a host-to-device transfer is
    fake.asnumpy = np.asarray
    fake.zeros, fake.float32, fake.int32 = np.zeros, np.float32, np.int32
    fake.random = types.SimpleNamespace(RandomState=_RandomState)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    from recfast.bench import gpu

    monkeypatch.setattr(gpu, "DEVICE", "cpu")
    return gpu


@pytest.fixture
def fake_ml100k(tmp_path):
    rng = np.random.default_rng(0)
    n = 3000
    u, i = rng.integers(1, 120, n), rng.integers(1, 90, n)
    r, t = rng.integers(1, 6, n), rng.integers(10**8, 10**9, n)
    np.savetxt(tmp_path / "u.data", np.c_[u, i, r, t], fmt="%d", delimiter="\t")
    return tmp_path


BACKENDS = [b for b in ("cpu", "numba") if b in live_backends("sgd_mf_epoch")]


@pytest.mark.skipif("cpu" not in BACKENDS, reason="the GPU bench's baseline is the cpu backend")
def test_gpu_bench_mf_code_runs(gpu_bench, fake_ml100k):
    thr = gpu_bench.mf_throughput(3000, 64, BACKENDS)
    assert set(thr) == set(BACKENDS) and all(v > 0 for v in thr.values())
    for blocked in (False, True):
        rm = gpu_bench.mf_rmse(fake_ml100k, BACKENDS[-1:], k=8, epochs=2, blocked=blocked)
        assert set(rm) == {"cpu", *BACKENDS[-1:]} and all(0 < v < 5 for v in rm.values())
    mm = gpu_bench.mf_model_rmse(fake_ml100k, ["cpu"])
    assert set(mm) == {"host", "cpu"}
    assert mm["host"][0] == pytest.approx(mm["cpu"][0])  # both are host fits here


def test_gpu_bench_torch_code_runs(gpu_bench):
    torch.manual_seed(0)
    be = live_backends("dense_forward")[:1]
    dt = gpu_bench.dense_times(16, 40, 12, be)
    assert set(dt) == {*be, "torch"}
    for cell in ("gru", "lstm"):
        rt = gpu_bench.rnn_times(cell, 3, 4, 8, 6, be)
        assert set(rt) == {*be, "torch", *(b + " fwd+bwd" for b in be), "torch fwd+bwd"}
    assert set(gpu_bench.step_times(4, 8, 6, be)) == {*be, "torch"}
    assert set(gpu_bench.conv_times(2, 8, 8, 3, 4, 3, be)) == {*be, "torch"}


def test_gpu_bench_table_is_assembled(gpu_bench, fake_ml100k, monkeypatch, capsys):
    """``run``'s table from stubbed measurements: every row present, no section turned into an
    ERROR row by a wrong key or arity (the GPU check prints this table once, at the end)."""
    fake = sys.modules["cupy"]
    fake.is_available, fake.__version__ = (lambda: True), "stub"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stub GPU")
    both = ("cuda", "cupy")
    g = gpu_bench
    monkeypatch.setattr(g, "_live", lambda name: True)
    monkeypatch.setattr(g, "copy_bandwidth", lambda: 4.0e12)
    monkeypatch.setattr(g, "mf_throughput", lambda nnz, k, b: {x: 3e9 for x in b})
    monkeypatch.setattr(g, "mf_rmse", lambda d, b, blocked: {"cpu": 0.95, **{x: 0.951 for x in b}})
    monkeypatch.setattr(
        g, "mf_model_rmse", lambda d, b, fd: {"host": (0.91, 1.0), **{x: (0.912, 0.2) for x in b}}
    )
    monkeypatch.setattr(g, "dense_times", lambda n, d, h, b: {"torch": 1.0, **{x: 1.1 for x in b}})

    def rnn(cell, T, N, D, H, b):
        out = {"torch": 1.0, "torch fwd+bwd": 2.0}
        for x in b:
            out.update({x: 1.2, x + " fwd+bwd": 2.4})
        return out

    monkeypatch.setattr(g, "rnn_times", rnn)
    monkeypatch.setattr(g, "step_times", lambda N, D, H, b: {"torch": 0.05, **{x: 0.03 for x in b}})
    monkeypatch.setattr(g, "conv_times", lambda *a: {"torch": 1.0, **{x: 1.4 for x in a[-1]}})
    args = types.SimpleNamespace(quick=True, data=str(fake_ml100k), json=None)
    assert g.run(args) == 0
    out = capsys.readouterr().out
    table = out[out.index("GPU check on stub GPU") :]
    assert "ERROR" not in table, table
    for row in ("copy bandwidth", "SGD MF k=64", "FPSGD blocks", "Hogwild",
                "factor_dtype=None", "factor_dtype=float16", "dense AutoRec", "GRU seq fwd",
                "LSTM seq fwd+bwd", "gru_step", "conv2d fwd N=256", "conv2d fwd N=1"):  # fmt: skip
        assert row in table, row
    assert all(b in table for b in both)
