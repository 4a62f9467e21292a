"""Convolution benchmark: recfast.conv2d forward and backward (data + weight + bias) on the CNN
shapes of issue #3, "same" padding, float32, against PyTorch CPU (oneDNN, channels_last, same
thread count) in the same run; GFLOP/s and their fraction of a large sgemm's rate (the measured
fp32 peak of this machine)."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

import recfast
from recfast.bench.timing import machine, write_json
from recfast.testing import live_backends

# (N, H, W, C, C_out, K)
SHAPES = [
    (1, 28, 28, 1, 32, 3),
    (32, 28, 28, 1, 32, 3),
    (128, 32, 32, 3, 64, 3),
    (32, 64, 64, 16, 64, 5),
    (64, 14, 14, 32, 64, 3),
]
QUICK_SHAPES = [(1, 28, 28, 1, 32, 3), (8, 14, 14, 8, 16, 3)]


def measure(fn, repeats: int) -> tuple[float, float, float]:
    """(median, min, spread) seconds of ``fn()`` after one warm-up. On a shared machine the median
    includes time slices lost to other processes; the min is the undisturbed time."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return med, min(times), (max(times) - min(times)) / med


def sgemm_peak(threads: int, size: int = 2048) -> float:
    """GFLOP/s of a size^3 float32 GEMM through recfast's BLAS (the kernels' own GEMM)."""
    from recfast._backends import cpu_module

    mod = cpu_module()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    c = np.empty((size, size), np.float32)
    gemm = mod.blas_gemm if mod is not None else (lambda a, b, c: np.matmul(a, b, out=c))
    try:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(threads, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl missing
        limit = None
    try:
        gemm(a, b, c)
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            gemm(a, b, c)
            best = min(best, time.perf_counter() - t)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    return 2 * size**3 / best / 1e9


def _torch_cases(x, w, b, g, nt):
    import torch

    torch.set_num_threads(nt)
    tx = torch.from_numpy(x).permute(0, 3, 1, 2)  # NHWC memory = channels_last
    tw = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))).contiguous(
        memory_format=torch.channels_last
    )
    tb = torch.from_numpy(b)
    tg = torch.from_numpy(g).permute(0, 3, 1, 2)
    assert tx.is_contiguous(memory_format=torch.channels_last)

    def fwd():
        with torch.no_grad():
            return torch.nn.functional.conv2d(tx, tw, tb, padding="same")

    txg, twg, tbg = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
    y = torch.nn.functional.conv2d(txg, twg, tbg, padding="same")

    def bwd():
        return torch.autograd.grad(y, (txg, twg, tbg), tg, retain_graph=True)

    return fwd, bwd, torch.__version__


def run(args: Any) -> int:
    nt = args.threads
    reps = max(args.repeats, 5)
    shapes = QUICK_SHAPES if args.quick else SHAPES
    peak = sgemm_peak(nt, 512 if args.quick else 2048)
    rows: list[dict[str, Any]] = []
    backends = [b for b in live_backends("conv2d_forward") if b != "reference"] or ["reference"]
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
        print("torch not installed: no peer rows (pip install torch)")
    for n, h, w_, c, co, k in shapes:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, h, w_, c), dtype=np.float32)
        w = rng.standard_normal((k, k, c, co), dtype=np.float32) * 0.1
        b = rng.standard_normal(co, dtype=np.float32)
        g = rng.standard_normal((n, h, w_, co), dtype=np.float32)
        flops = 2.0 * n * h * w_ * co * k * k * c
        shape = f"({n},{h},{w_},{c},{co},{k})"
        # correctness before timing, against the first backend (and torch when present)
        ref = recfast.conv2d(x, w, b, padding="same", backend=backends[0])
        timed = []
        if have_torch:
            tf, tb_, ver = _torch_cases(x, w, b, g, nt)
            np.testing.assert_allclose(tf().permute(0, 2, 3, 1).numpy(), ref, rtol=1e-3, atol=1e-3)
            timed.append((f"torch {ver}", tf, tb_))
        for be in backends:
            y = recfast.conv2d(x, w, b, padding="same", backend=be)
            np.testing.assert_allclose(y, ref, rtol=1e-3, atol=1e-3)

            def fwd(be=be, x=x, w=w, b=b):
                return recfast.conv2d(x, w, b, padding="same", num_threads=nt, backend=be)

            def bwd(be=be, g=g, x=x, w=w):
                return recfast.conv2d_backward(g, x, w, padding="same", num_threads=nt, backend=be)

            timed.append((f"recfast {be}", fwd, bwd))
        peer = None
        for name, f, bw in timed:
            tf_, mf, sf = measure(f, reps)
            tb2, mb, sb = measure(bw, reps)
            if name.startswith("torch"):
                peer = (tf_, mf, tb2, mb)
            rows.append(
                dict(
                    shape=shape,
                    case=name,
                    fwd_s=tf_,
                    fwd_min_s=mf,
                    fwd_spread=sf,
                    bwd_s=tb2,
                    bwd_min_s=mb,
                    bwd_spread=sb,
                    fwd_gflops=flops / tf_ / 1e9,
                    bwd_gflops=2 * flops / tb2 / 1e9,
                    fwd_x_torch=tf_ / peer[0] if peer else None,
                    fwd_min_x_torch=mf / peer[1] if peer else None,
                    bwd_x_torch=tb2 / peer[2] if peer else None,
                    bwd_min_x_torch=mb / peer[3] if peer else None,
                )
            )
    print(
        f"\nConv2d benchmark: 'same' padding, bias, float32, NHWC (torch: channels_last), {nt} "
        f"threads; median of {reps} (x torch), [min] (x torch of the mins); backward = grad_x + "
        f"grad_w + grad_bias; sgemm peak {peak:.1f} GFLOP/s; GF/s and %peak from the medians"
    )
    print(
        f"{'shape (N,H,W,C,Co,K)':<20} {'case':<14} {'fwd ms':>8} {'x':>5} {'[min':>7} {'x]':>5} "
        f"{'GF/s':>5} {'%pk':>4} {'bwd ms':>8} {'x':>5} {'[min':>7} {'x]':>5} {'GF/s':>5} {'%pk':>4}"
    )

    def ratio(v):
        return f"{v:.2f}" if v else "-"

    for r in rows:
        print(
            f"{r['shape']:<20} {r['case'][:14]:<14} {1e3 * r['fwd_s']:>8.3f} "
            f"{ratio(r['fwd_x_torch']):>5} {1e3 * r['fwd_min_s']:>7.3f} "
            f"{ratio(r['fwd_min_x_torch']):>5} {r['fwd_gflops']:>5.1f} "
            f"{100 * r['fwd_gflops'] / peak:>3.0f}% {1e3 * r['bwd_s']:>8.3f} "
            f"{ratio(r['bwd_x_torch']):>5} {1e3 * r['bwd_min_s']:>7.3f} "
            f"{ratio(r['bwd_min_x_torch']):>5} {r['bwd_gflops']:>5.1f} "
            f"{100 * r['bwd_gflops'] / peak:>3.0f}%"
        )
    write_json(args.json, rows, {"suite": "conv", "threads": nt, "sgemm_peak": peak, **machine()})
    return 0
