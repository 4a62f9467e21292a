"""GPU benchmarks (issue 10): recfast ``cuda`` vs the ``cupy`` fallback vs PyTorch on one device,
with the measured device-to-device copy bandwidth as the ceiling. Prints one table last.

Needs a CUDA device, CuPy and PyTorch; ``bench/gpu_check.sh`` runs it on a fresh machine. Every
row is checked against the CPU backend or PyTorch before it is timed. Ops without a GPU kernel in
this build (conv2d, the recurrent layers) are listed as such, not timed.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

import recfast
from recfast.bench.timing import write_json
from recfast.mf import prepare_sgd_mf_epoch

# Where the torch-based benchmarks put their tensors: "cuda" on the GPU check; the CPU smoke
# test sets "cpu" to run this module's code paths (with CPU backends) where there is no GPU.
DEVICE = "cuda"


def _wall_ms(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1e3


def _events_ms(fn, repeats: int, warmup: int = 2) -> float:
    """Median milliseconds of fn() between CUDA events on the current stream."""
    import cupy

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return float(np.median(times))


def copy_bandwidth(gib: float = 2.0) -> float:
    """Device-to-device copy in bytes/s, counting bytes read plus written."""
    import cupy

    n = int(gib * 2**30) // 4
    a = cupy.random.random(n, dtype=cupy.float32)
    b = cupy.empty_like(a)
    ms = _events_ms(lambda: b.__setitem__(Ellipsis, a), 10)
    return 2 * a.nbytes / (ms * 1e-3)


def _live(name: str) -> bool:
    return any(b.name == name and b.available for b in recfast.backends())


def mf_throughput(nnz: int, k: int, backends: list[str]) -> dict[str, float]:
    """SGD-MF updates per second on a synthetic matrix (float32, biases, plain SGD)."""
    import cupy

    n_users, n_items = max(1000, nnz // 100), max(1000, nnz // 1000)
    rs = cupy.random.RandomState(0)
    rows = rs.randint(0, n_users, nnz, dtype=cupy.int32)
    cols = rs.randint(0, n_items, nnz, dtype=cupy.int32)
    vals = rs.uniform(1, 5, nnz, dtype=cupy.float32)
    out = {}
    for be in backends:
        U = (rs.standard_normal((n_users, k), dtype=cupy.float32) * 0.1).astype(cupy.float32)
        V = (rs.standard_normal((n_items, k), dtype=cupy.float32) * 0.1).astype(cupy.float32)
        ub, ib = cupy.zeros(n_users, cupy.float32), cupy.zeros(n_items, cupy.float32)
        ep = prepare_sgd_mf_epoch(
            rows, cols, vals, U, V, user_bias=ub, item_bias=ib, global_mean=3.0,
            learning_rate=0.002, regularization=0.02, backend=be,
        )  # fmt: skip
        ep()  # warm-up (NVRTC compile for cupy)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            sse = ep()
            times.append(time.perf_counter() - t)  # the epoch returns after a stream sync
        assert np.isfinite(sse)
        out[be] = nnz / float(np.median(times))
        del U, V, ub, ib, ep
    return out


def _load_ml100k(path: Path):
    raw = np.loadtxt(path / "u.data", dtype=np.int64)
    rows, cols, vals = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(np.float64)
    rng = np.random.default_rng(0)
    test = rng.random(len(vals)) < 0.2
    return rows, cols, vals, test


def mf_rmse(
    data: Path, backends: list[str], k: int = 32, epochs: int = 30, blocked: bool = False
) -> dict[str, float]:
    """Test RMSE on ml-100k (80/20 split) after the same epochs from the same start, per backend
    (the cpu backend on one thread, sequential; the GPU ones Hogwild, or with ``blocked`` all of
    them on one FPSGD layout, where every backend computes the sequential pass)."""
    import cupy

    rows, cols, vals, test = _load_ml100k(data)
    nu, ni = int(rows.max()) + 1, int(cols.max()) + 1
    tr = ~test
    r32, c32, v32 = (
        rows[tr].astype(np.int32),
        cols[tr].astype(np.int32),
        vals[tr].astype(np.float32),
    )
    mu = float(v32.mean())
    lay: dict[str, Any] = {}
    if blocked:
        r32, c32, v32, bp = recfast.mf_block_layout(r32, c32, v32, nu, ni, 8, seed=0)
        lay = {"block_ptr": bp, "n_blocks": 8}
    rng = np.random.default_rng(1)
    U0 = (rng.standard_normal((nu, k)) * 0.1).astype(np.float32)
    V0 = (rng.standard_normal((ni, k)) * 0.1).astype(np.float32)
    out = {}
    for be in ["cpu", *backends]:
        dev = be != "cpu"
        conv = cupy.asarray if dev else (lambda a: a.copy())
        U, V = conv(U0), conv(V0)
        ub, ib = conv(np.zeros(nu, np.float32)), conv(np.zeros(ni, np.float32))
        ep = prepare_sgd_mf_epoch(
            conv(r32), conv(c32), conv(v32), U, V, user_bias=ub, item_bias=ib, global_mean=mu,
            learning_rate=0.01, regularization=0.05, backend=be,
            **({} if dev else {"num_threads": 1}),
            **{key: conv(v) if key == "block_ptr" else v for key, v in lay.items()},
        )  # fmt: skip
        for _ in range(epochs):
            ep()
        Uh, Vh = (cupy.asnumpy(U), cupy.asnumpy(V)) if dev else (U, V)
        ubh, ibh = (cupy.asnumpy(ub), cupy.asnumpy(ib)) if dev else (ub, ib)
        u, i = rows[test], cols[test]
        pred = mu + ubh[u] + ibh[i] + np.einsum("ij,ij->i", Uh[u], Vh[i])
        out[be] = float(np.sqrt(np.mean((np.clip(pred, 1, 5) - vals[test]) ** 2)))
    return out


def mf_model_rmse(
    data: Path, backends: list[str], factor_dtype: str | None = None
) -> dict[str, tuple[float, float]]:
    """``MatrixFactorization`` with its defaults on ml-100k (80/20 split): ``(test RMSE, fit
    seconds)`` for the host fit (FPSGD blocks, all cores) and the device fit per GPU backend
    (CuPy arrays: Hogwild over ratings shuffled on the device); ``factor_dtype`` for all."""
    import cupy

    rows, cols, vals, test = _load_ml100k(data)
    tr = ~test
    out = {}
    for be in ["host", *backends]:
        m = recfast.MatrixFactorization(random_state=0, backend=None if be == "host" else be,
                                        factor_dtype=factor_dtype)  # fmt: skip
        train = (rows[tr], cols[tr], vals[tr].astype(np.float32))
        if be != "host":
            train = tuple(cupy.asarray(a) for a in train)
        t = time.perf_counter()
        m.fit(train)
        sec = time.perf_counter() - t
        out[be] = (m.score((rows[test], cols[test], vals[test])), sec)
    return out


def dense_times(n: int, d: int, h: int, backends: list[str]) -> dict[str, float]:
    """AutoRec forward + backward (d -> h sigmoid -> d) on torch CUDA tensors: ms per pass."""
    import torch

    g = torch.Generator(device=DEVICE).manual_seed(0)
    x = torch.randn(n, d, device=DEVICE, generator=g)
    W1 = torch.randn(h, d, device=DEVICE, generator=g) * 0.05
    b1 = torch.randn(h, device=DEVICE, generator=g) * 0.1
    W2 = torch.randn(d, h, device=DEVICE, generator=g) * 0.05
    b2 = torch.randn(d, device=DEVICE, generator=g) * 0.1
    go = torch.randn(n, d, device=DEVICE, generator=g)

    def rf(be):
        hid = recfast.dense(x, W1, b1, activation="sigmoid", backend=be)
        y = recfast.dense(hid, W2, b2, backend=be)
        gh, gW2, gb2 = recfast.dense_backward(go, hid, W2, backend=be)
        gx, gW1, gb1 = recfast.dense_backward(gh, x, W1, output=hid, activation="sigmoid",
                                              backend=be)  # fmt: skip
        return y, gW1, gb1, gW2

    params = [t.clone().requires_grad_(True) for t in (W1, b1, W2, b2)]

    def tt():
        for p in params:
            p.grad = None
        hid = torch.sigmoid(torch.nn.functional.linear(x, params[0], params[1]))
        y = torch.nn.functional.linear(hid, params[2], params[3])
        y.backward(go)
        return y, params[0].grad, params[1].grad, params[2].grad

    ref = [t.detach() for t in tt()]
    out = {}
    for be in backends:
        got = rf(be)
        for a, b in zip(got, ref):
            err = float((a - b).norm() / b.norm())
            assert err < 1e-3, f"dense {be}: relative error {err:.2e} against torch"

        def timed(be=be):
            rf(be)

        out[be] = _sync_ms(timed)
    out["torch"] = _sync_ms(tt)
    return out


def rnn_times(cell: str, T: int, N: int, D: int, H: int, backends: list[str]) -> dict[str, float]:
    """Sequence forward (outputs of every step) in ms: recfast vs torch.nn.GRU/LSTM (cuDNN)."""
    import torch

    mod = (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(D, H).to(DEVICE)
    x = torch.randn(T, N, D, device=DEVICE)
    h0 = torch.zeros(1, N, H, device=DEVICE)
    with torch.no_grad():
        ref = mod(x, h0 if cell == "gru" else (h0, h0))[0]
    _, _, p = recfast.rnn.from_torch(mod)
    p = {k: torch.from_numpy(v).to(DEVICE) for k, v in p.items()}
    out = {}
    for be in backends:
        got = recfast.rnn_forward(x, h0[0], p, cell=cell, backend=be).outputs
        err = float((got - ref).norm() / ref.norm())
        assert err < 1e-3, f"{cell} {be}: relative error {err:.2e} against cuDNN"
        out[be] = _sync_ms(lambda be=be: recfast.rnn_forward(x, h0[0], p, cell=cell, backend=be))
    with torch.no_grad():
        out["torch"] = _sync_ms(lambda: mod(x, h0 if cell == "gru" else (h0, h0)))
    gy = torch.randn(T, N, H, device=DEVICE)
    for be in backends:

        def fb(be=be):
            f = recfast.rnn_forward(x, h0[0], p, cell=cell, return_cache=True, backend=be)
            return recfast.rnn_backward(gy, None, f.cache, p, backend=be)

        out[be + " fwd+bwd"] = _sync_ms(fb)
    xg = x.clone().requires_grad_(True)

    def tfb():
        y = mod(xg, h0 if cell == "gru" else (h0, h0))[0]
        y.backward(gy)

    out["torch fwd+bwd"] = _sync_ms(tfb)
    return out


def step_times(N: int, D: int, H: int, backends: list[str]) -> dict[str, float]:
    """One GRU step in ms: recfast.gru_step vs torch.nn.GRUCell."""
    import torch

    cellm = torch.nn.GRUCell(D, H).to(DEVICE)
    x, h = torch.randn(N, D, device=DEVICE), torch.randn(N, H, device=DEVICE)
    W, U = cellm.weight_ih.detach(), cellm.weight_hh.detach()
    bi, bh = cellm.bias_ih.detach(), cellm.bias_hh.detach()
    with torch.no_grad():
        ref = cellm(x, h)
    out = {}
    for be in backends:
        got = recfast.gru_step(x, h, W, U, bi, bh, backend=be)
        assert float((got - ref).norm() / ref.norm()) < 1e-3, f"gru_step {be}"
        out[be] = _sync_ms(lambda be=be: recfast.gru_step(x, h, W, U, bi, bh, backend=be))
    with torch.no_grad():
        out["torch"] = _sync_ms(lambda: cellm(x, h))
    return out


CONV_SHAPES = [(28, 28, 1, 32, 3), (32, 32, 3, 64, 3), (64, 64, 16, 64, 5), (14, 14, 32, 64, 3)]


def conv_times(n: int, h: int, w: int, c: int, co: int, k: int, backends: list[str]) -> dict:
    """conv2d forward ("same", bias, relu) in ms: recfast NHWC vs cuDNN through PyTorch
    (channels_last, TF32 off: the same fp32 arithmetic)."""
    import torch

    torch.backends.cudnn.allow_tf32 = False
    x = torch.randn(n, h, w, c, device=DEVICE)
    wt = torch.randn(k, k, c, co, device=DEVICE) * 0.1
    b = torch.randn(co, device=DEVICE)
    xt = x.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels_last for cuDNN
    wc = wt.permute(3, 2, 0, 1).contiguous()

    def tt():
        return torch.relu(torch.nn.functional.conv2d(xt, wc, b, padding=k // 2))

    ref = tt().permute(0, 2, 3, 1)
    out = {}
    for be in backends:
        got = recfast.conv2d(x, wt, b, padding="same", activation="relu", backend=be)
        err = float((got - ref).norm() / ref.norm())
        assert err < 1e-3, (
            f"conv2d {be}: relative error {err:.2e} against cuDNN (NaN in recfast's output: "
            f"{int(got.isnan().sum())}, in the peer's: {int(ref.isnan().sum())})"
        )
        out[be] = _sync_ms(
            lambda be=be: recfast.conv2d(x, wt, b, padding="same", activation="relu", backend=be)
        )
    with torch.no_grad():
        out["torch"] = _sync_ms(tt)
    return out


def _sync_ms(fn, repeats: int = 20) -> float:
    import torch

    for _ in range(3):
        fn()
    if DEVICE != "cuda":  # the CPU smoke run of this module (tests/test_gpu_bench_smoke.py)
        return float(np.median([_wall_ms(fn) for _ in range(3)]))
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


@contextlib.contextmanager
def _guard(rows: list, what: str):
    """One failing section becomes an ERROR row: the table is printed whatever happens."""
    try:
        yield
    except Exception as exc:  # a GPU check runs once: report, do not stop
        msg = " ".join(str(exc).split())[:90]
        rows.append((what, "-", "-", "", "", "", f"ERROR {type(exc).__name__}: {msg}"))


def run(args: Any) -> int:
    import cupy
    import torch

    assert cupy.is_available() and torch.cuda.is_available(), "no CUDA device"
    gpu = [b for b in ("cuda", "cupy") if _live(b)]
    rows: list[tuple[str, ...]] = []
    dev = torch.cuda.get_device_name()
    bw = float("nan")
    with _guard(rows, "copy bandwidth"):
        bw = copy_bandwidth()
        rows.append(("copy bandwidth (read+write)", f"{bw / 1e12:.2f} TB/s", "", "", "", "", ""))

    with _guard(rows, "SGD MF throughput"):
        nnz = 10_000_000 if args.quick else 100_000_000
        thr = mf_throughput(nnz, 64, gpu)
        floor = bw / 1024  # ~1 KiB moved per update at k=64 (two rows read and written, fp32)
        rows.append((
            f"SGD MF k=64 fp32, {nnz / 1e6:.0f}M ratings (updates/s)",
            *(f"{thr[b]:.3g}" if b in thr else "-" for b in ("cuda", "cupy")),
            f"floor {floor:.2g}", "", ">= 2e9",
            "met" if thr.get("cuda", 0) >= 2e9 else "missed",
        ))  # fmt: skip
    with _guard(rows, "ml-100k RMSE"):
        data = Path(args.data) if args.data else None
        if data is not None and (data / "u.data").exists():
            for blocked in (False, True):
                rm = mf_rmse(data, gpu, blocked=blocked)
                worst = max(abs(rm[b] - rm["cpu"]) for b in gpu)
                rows.append((
                    f"ml-100k test RMSE, {'FPSGD blocks' if blocked else 'Hogwild'} (30 ep, k=32)",
                    *(f"{rm[b]:.4f}" if b in rm else "-" for b in ("cuda", "cupy")),
                    f"cpu {rm['cpu']:.4f}", f"|d|={worst:.4f}", "<= 0.005",
                    "met" if worst <= 0.005 else "missed",
                ))  # fmt: skip
            for fd in (None, "float16"):
                mm = mf_model_rmse(data, gpu, fd)
                worst = max(abs(mm[b][0] - mm["host"][0]) for b in gpu)
                rows.append((
                    f"ml-100k MatrixFactorization(factor_dtype={fd}), test RMSE (fit s)",
                    *(f"{mm[b][0]:.4f} ({mm[b][1]:.2f})" if b in mm else "-"
                      for b in ("cuda", "cupy")),
                    f"host {mm['host'][0]:.4f} ({mm['host'][1]:.2f})", f"|d|={worst:.4f}",
                    "<= 0.005", "met" if worst <= 0.005 else "missed",
                ))  # fmt: skip
        else:
            rows.append(("ml-100k test RMSE", "-", "-", "", "", "<= 0.005", "skipped: no --data"))
    with _guard(rows, "dense AutoRec"):
        n = 512 if args.quick else 4096
        dt = dense_times(n, 1682, 500, gpu)
        ratio = dt["cuda"] / dt["torch"] if "cuda" in dt else float("nan")
        rows.append((
            f"dense AutoRec fwd+bwd N={n} (ms)",
            *(f"{dt[b]:.3f}" if b in dt else "-" for b in ("cuda", "cupy")),
            f"torch {dt['torch']:.3f}", f"{ratio:.2f}x", "<= 1.2x torch",
            "met" if ratio <= 1.2 else "missed",
        ))  # fmt: skip
    with _guard(rows, "GRU/LSTM sequences"):
        for cell in ("gru", "lstm"):
            rt = rnn_times(cell, 50, 256, 128, 256, gpu)
            ratio = rt["cuda"] / rt["torch"] if "cuda" in rt else float("nan")
            rows.append((
                f"{cell.upper()} seq fwd T=50 N=256 D=128 H=256 (ms)",
                *(f"{rt[b]:.3f}" if b in rt else "-" for b in ("cuda", "cupy")),
                f"cuDNN {rt['torch']:.3f}", f"{ratio:.2f}x", "<= 1.3x cuDNN",
                "met" if ratio <= 1.3 else "missed",
            ))  # fmt: skip
            fbr = rt["cuda fwd+bwd"] / rt["torch fwd+bwd"] if "cuda" in rt else float("nan")
            rows.append((
                f"{cell.upper()} seq fwd+bwd, same shape (ms)",
                *(f"{rt[b + ' fwd+bwd']:.3f}" if b in rt else "-" for b in ("cuda", "cupy")),
                f"cuDNN {rt['torch fwd+bwd']:.3f}", f"{fbr:.2f}x", "<= 1.3x cuDNN",
                "met" if fbr <= 1.3 else "missed",
            ))  # fmt: skip
    with _guard(rows, "gru_step"):
        st = step_times(16, 128, 256, gpu)
        ratio = st["cuda"] / st["torch"] if "cuda" in st else float("nan")
        rows.append((
            "gru_step N=16 D=128 H=256 (ms)",
            *(f"{st[b]:.4f}" if b in st else "-" for b in ("cuda", "cupy")),
            f"GRUCell {st['torch']:.4f}", f"{ratio:.2f}x", "< 1x GRUCell",
            "met" if ratio < 1 else "missed",
        ))  # fmt: skip
    with _guard(rows, "conv2d"):
        for batch, target, limit in ((256, "<= 1.5x cuDNN", 1.5), (1, "< 1x cuDNN", 1.0)):
            for h, w, c, co, k in CONV_SHAPES[:2] if args.quick else CONV_SHAPES:
                ct = conv_times(batch, h, w, c, co, k, gpu)
                ratio = ct["cuda"] / ct["torch"] if "cuda" in ct else float("nan")
                rows.append((
                    f"conv2d fwd N={batch} {h}x{w}x{c}->{co} k{k} (ms)",
                    *(f"{ct[b]:.3f}" if b in ct else "-" for b in ("cuda", "cupy")),
                    f"cuDNN {ct['torch']:.3f}", f"{ratio:.2f}x", target,
                    "met" if ratio <= limit else "missed",
                ))  # fmt: skip

    head = ("benchmark", "recfast cuda", "recfast cupy", "peer / ceiling", "ratio", "target",
            "status")  # fmt: skip
    write_json(args.json, [dict(zip(head, r)) for r in rows],
               {"suite": "gpu", "device": dev, "torch": torch.__version__})  # fmt: skip
    widths = [max(len(str(r[j])) for r in [head, *rows]) for j in range(len(head))]
    print(f"\nGPU check on {dev} (torch {torch.__version__}, cupy {cupy.__version__})")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0
