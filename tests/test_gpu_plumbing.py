"""The GPU backends' Python drivers, run without a GPU (issue 10).

No kernel runs here: host arrays posing as device arrays (a NumPy subclass with a
``__cuda_array_interface__``), a stand-in ``cupy`` module and recording launchers let every
driver path of the ``cuda`` and ``cupy`` backends execute, and each launch is checked against
the real entry point: the argument count of the ``recfast._cuda`` binding (from its pybind11
signature) or of the ``__global__`` kernel in ``recfast/_kernels/*.cuh`` (parsed from the source),
and that every pointer, size and scalar has the type the launch needs. This catches the crash
bugs (a missing argument, a shape read wrong, a None where a pointer goes) that would otherwise
first show on a GPU machine; the kernels' arithmetic is tested there (tests/test_gpu.py).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import re
import sys
import types

import numpy as np
import pytest

from recfast._backends.cupy import _sources
from recfast._kernel_args import (
    Conv2dArgs,
    Conv2dBackwardArgs,
    Conv2dGeometry,
    DenseArgs,
    DenseBackwardArgs,
    Pool2dArgs,
    Pool2dBackwardArgs,
    Pool2dGeometry,
    RnnBackwardArgs,
    RnnForwardArgs,
    SgdMfArgs,
)  # fmt: skip


class Dev(np.ndarray):
    """Host memory that says it is a device array (never dereferenced as one here)."""

    @property
    def __cuda_array_interface__(self):
        c = self.flags.c_contiguous
        return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "strides": None if c else self.strides,
                "data": (self.ctypes.data if self.size else 0, not self.flags.writeable)}  # fmt: skip

    @property
    def device(self):
        return types.SimpleNamespace(id=0)

    def get(self):
        return np.asarray(self)


def d(a):
    return np.ascontiguousarray(a).view(Dev)


def _fake_cupy():
    m = types.ModuleType("cupy")
    m.empty = lambda shape, dtype: np.empty(shape, dtype).view(Dev)
    m.zeros = lambda shape, dtype: np.zeros(shape, dtype).view(Dev)
    m.matmul = lambda a, b, out: np.matmul(a, b, out=out)
    m.cuda = types.SimpleNamespace(
        get_current_stream=lambda: types.SimpleNamespace(ptr=0),
        Device=lambda i=0: contextlib.nullcontext(),
        ExternalStream=lambda p: contextlib.nullcontext(),
    )
    return m


def _kernel_arity() -> dict[str, int]:
    """Parameter count of every __global__ kernel in recfast/_kernels, macros expanded."""
    macros = {}
    for f in _sources.KERNELS.glob("*.cuh"):
        text = f.read_text()
        for name, body in re.findall(r"#define (RECFAST_\w+_DIMS)\s*\\\n((?:.*\\\n)*.*)", text):
            macros[name] = body.count(",") + 1
    arity = {}
    for f in _sources.KERNELS.glob("*.cuh"):
        for name, params in re.findall(r"__global__ void (\w+)\(([^)]*)\)", f.read_text()):
            n = params.count(",") + 1
            n += sum(macros[m] - 1 for m in macros if m in params)
            arity[name] = n
    return arity


ARITY = _kernel_arity()
KINDS_OF_ARG = (np.integer, np.floating)


class Recorder:
    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []


@pytest.fixture
def cupy_backend(monkeypatch):
    """The cupy backend with recording kernels checked against the .cuh signatures."""
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    from recfast._backends.cupy import _compile

    rec = Recorder()

    def kernels(name, names, device):
        out = {}
        for key, expr in names.items():
            kname = expr.split("<")[0].split("::")[-1]

            def launch(grid, block, args, kname=kname, expr=expr):
                assert len(args) == ARITY[kname], f"{expr}: {len(args)} args, {ARITY[kname]} params"
                assert all(isinstance(a, KINDS_OF_ARG) for a in args), (expr, args)
                assert grid[0] >= 1 and (block[0] % 32 == 0 or block == (1,))
                rec.calls.append((kname, args))

            out[key] = launch
        return out

    monkeypatch.setattr(_compile, "kernels", kernels)
    monkeypatch.setattr(_compile, "grid_for", lambda items, per, device: 4)
    return rec


def _binding_arity(fn) -> int:
    return len(re.findall(r"\barg\d+:", fn.__doc__.splitlines()[0]))


@pytest.fixture
def cuda_backend(monkeypatch):
    """The cuda backend's modules with a recording recfast._cuda (argument counts from the real
    bindings' signatures)."""
    if importlib.util.find_spec("recfast._cuda") is None:
        return None, None  # the cupy half of each test still runs
    real = importlib.import_module("recfast._cuda")
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    rec = Recorder()
    fake = types.SimpleNamespace(mf_work_size=real.mf_work_size)
    for name in ("sgd_mf_epoch", "bias_activation", "activation_backward", "rnn_step_forward",
                 "rnn_step_backward", "conv2d_forward", "conv2d_grad_x", "conv2d_grad_w",
                 "max_pool2d_forward", "max_pool2d_backward", "count_out_of_range"):  # fmt: skip
        n = _binding_arity(getattr(real, name))

        def call(*args, name=name, n=n):
            assert len(args) == n, f"{name}: {len(args)} args, the binding takes {n}"
            assert all(isinstance(a, (int, float, str, list)) for a in args), (name, args)
            rec.calls.append((name, args))
            return 0.0

        setattr(fake, name, call)
    mods = {}
    for fam in ("mf", "dense", "rnn", "conv2d"):
        mod = importlib.import_module(f"recfast._backends.cuda.{fam}")
        monkeypatch.setattr(mod, "_cuda", fake)
        mods[fam] = mod
    return rec, mods


def _cupy_mods():
    return {fam: importlib.import_module(f"recfast._backends.cupy.{fam}")
            for fam in ("mf", "dense", "rnn", "conv2d")}  # fmt: skip


def _mf_args(k, blocked, ada, half=False):
    rng = np.random.default_rng(0)
    nu, ni, nnz = 7, 5, 30
    rows, cols = (
        d(rng.integers(0, nu, nnz).astype(np.int32)),
        d(rng.integers(0, ni, nnz).astype(np.int32)),
    )
    vals = d(rng.uniform(1, 5, nnz).astype(np.float32))
    fdt = np.float16 if half else np.float32  # float16: factor storage, float32 arithmetic
    U, V = d(np.zeros((nu, k), fdt)), d(np.zeros((ni, k), fdt))
    ub, ib = d(np.zeros(nu, np.float32)), d(np.zeros(ni, np.float32))
    ua, ia = (d(np.ones(nu, np.float32)), d(np.ones(ni, np.float32))) if ada else (None, None)
    bp = d(np.array([0, 10, 10, 20, 30], np.int64)) if blocked else None
    order = None if blocked else d(np.arange(nnz, dtype=np.int64))
    return SgdMfArgs(rows, cols, vals, U, V, ub, ib, ua, ia, order, bp, 2 if blocked else 0,
                     0.05, 0.01, 0.01, 3.0, 1)  # fmt: skip


@pytest.mark.parametrize("blocked", [False, True])
@pytest.mark.parametrize("k", [64, 7])
@pytest.mark.parametrize("half", [False, True], ids=["f32", "f16"])
def test_mf_drivers(cupy_backend, cuda_backend, blocked, k, half):
    rec, cuda = cuda_backend
    a = _mf_args(k, blocked, ada=True, half=half)
    if cuda:
        assert cuda["mf"].sgd_mf_epoch(a) == 0.0
        assert rec.calls[-1][0] == "sgd_mf_epoch"
        assert rec.calls[-1][1][0] == ("float16" if half else "float32")
    assert _cupy_mods()["mf"].sgd_mf_epoch(a) == 0.0
    names = [c[0] for c in cupy_backend.calls]
    assert names[:2] == ["count_out_of_range"] * 2
    assert ("sgd_mf_stratum" in names) == blocked and ("sgd_mf_hogwild" in names) != blocked
    sgd = [args for name, args in cupy_backend.calls if name.startswith("sgd_mf_")]
    scalars = [x for x in sgd[0] if isinstance(x, np.floating)]
    assert scalars and all(type(x) is np.float32 for x in scalars)  # float32 arithmetic


def test_mf_drivers_reject_bad_device_arrays(cupy_backend):
    a = _mf_args(8, False, ada=False)
    mf = _cupy_mods()["mf"]
    U = a.user_factors.copy().view(Dev)
    U.flags.writeable = False
    with pytest.raises(ValueError, match="user_factors is a read-only device array"):
        mf.sgd_mf_epoch(a._replace(user_factors=U))
    Vf = d(np.zeros((8, 5), np.float32)).T  # Fortran order
    with pytest.raises(ValueError, match="item_factors must be C-contiguous"):
        mf.sgd_mf_epoch(a._replace(item_factors=Vf))
    with pytest.raises(TypeError, match="CUDA device array"):
        mf.sgd_mf_epoch(a._replace(values=np.asarray(a.values)))


@pytest.mark.parametrize("act", [None, "tanh"])
def test_dense_drivers(cupy_backend, cuda_backend, act):
    rec, cuda = cuda_backend
    rng = np.random.default_rng(1)
    x, W, b = d(rng.standard_normal((4, 3))), d(rng.standard_normal((5, 3))), d(np.ones(5))
    for mods in [m for m in (cuda, _cupy_mods()) if m]:
        out = d(np.empty((4, 5)))
        y = mods["dense"].dense_forward(DenseArgs(x, W, b, act, out, 1))
        np.testing.assert_allclose(y, np.asarray(x) @ np.asarray(W).T)  # the product (cuBLAS)
        g = d(rng.standard_normal((4, 5)))
        gx, gW, gb = mods["dense"].dense_backward(
            DenseBackwardArgs(g, x, W, y if act else None, act, ("x", "W", "b"), 1)
        )
        assert gx.shape == (4, 3) and gW.shape == (5, 3) and gb.shape == (5,)
    assert {c[0] for c in cupy_backend.calls} == {
        "bias_activation",
        "activation_backward",
    } or not act


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("cache", [False, True])
def test_rnn_drivers(cupy_backend, cuda_backend, cell, cache):
    rec, cuda = cuda_backend
    T, N, D, H = 3, 2, 4, 5
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell]
    lstm = cell == "lstm"
    z = lambda *s: d(np.zeros(s))  # noqa: E731
    for mods in [m for m in (cuda, _cupy_mods()) if m]:
        st = z(T + 1, N, H) if cache else None
        ce = z(T + 1, N, H) if cache and lstm else None
        ga = z(T, N, 4 * H) if cache and cell != "rnn" else None
        fa = RnnForwardArgs(cell, "tanh" if cell == "rnn" else None, z(T, N, D), z(N, H),
                            z(N, H) if lstm else None, z(G * H, D), z(G * H, H), z(G * H),
                            z(G * H) if cell == "gru" else None, d(np.array([3, 1], np.int64)),
                            z(T, N, H), z(N, H), z(N, H) if lstm else None, st, ce, ga, 1)  # fmt: skip
        mods["rnn"].rnn_forward(fa)
        if cache:
            ba = RnnBackwardArgs(cell, fa.activation, fa.xs, fa.W, fa.U, fa.lengths, st, ce, ga,
                                 z(T, N, H), z(N, H), z(N, H) if lstm else None, z(T, N, D),
                                 z(N, H), z(N, H) if lstm else None, z(G * H, D), z(G * H, H),
                                 z(G * H), z(G * H), 1)  # fmt: skip
            mods["rnn"].rnn_backward(ba)
    names = [c[0] for c in cupy_backend.calls]
    assert names.count("rnn_step_forward") == T
    assert names.count("rnn_step_backward") == (T if cache else 0)
    if rec:
        assert sum(c[0] == "rnn_step_forward" for c in rec.calls) == T


def test_conv_drivers(cupy_backend, cuda_backend):
    rec, cuda = cuda_backend
    x, w, b = d(np.ones((2, 5, 4, 3))), d(np.ones((3, 3, 3, 6))), d(np.ones(6))
    geom = Conv2dGeometry(1, 1, 1, 1, 1, 1, 1, 1, 5, 4)
    pg = Pool2dGeometry(2, 2, 2, 2, 0, 0, 2, 2)
    for mods in [m for m in (cuda, _cupy_mods()) if m]:
        out = d(np.empty((2, 5, 4, 6)))
        mods["conv2d"].conv2d_forward(Conv2dArgs(x, w, b, geom, "relu", out, 1))
        gx, gw, gb = mods["conv2d"].conv2d_backward(
            Conv2dBackwardArgs(d(np.ones((2, 5, 4, 6))), x, w, out, "relu", geom,
                               ("x", "w", "bias"), 1))  # fmt: skip
        assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == (6,)
        po, pi = d(np.empty((2, 2, 2, 3))), d(np.zeros((2, 2, 2, 3), np.int64))
        mods["conv2d"].max_pool2d_forward(Pool2dArgs(x, pg, po, pi, 1))
        gxp = mods["conv2d"].max_pool2d_backward(
            Pool2dBackwardArgs(d(np.ones((2, 2, 2, 3))), pi, d(np.empty((2, 5, 4, 3))), 1)
        )
        assert np.all(np.asarray(gxp) == 0)  # zeroed; the scatter is the (recorded) kernel's
    names = {c[0] for c in cupy_backend.calls}
    assert {"conv2d_forward", "conv2d_grad_x", "conv2d_grad_w", "max_pool2d_forward",
            "max_pool2d_backward", "count_out_of_range", "activation_backward"} <= names  # fmt: skip
