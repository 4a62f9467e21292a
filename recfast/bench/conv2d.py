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
from recfast.bench.report import Column, Report, missing_peer, target_mark
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
# The default run: every shape but the largest (its backward alone is ~0.2 s per repeat here).
DEFAULT_SHAPES = [s for s in SHAPES if s != (32, 64, 64, 16, 64, 5)]
# Targets (recfast / torch time): issue #3 asked forward <= 0.5x at N = 1; issue #15 asks
# forward and backward <= 1.0x on every shape.
BWD_TARGET = 1.0


def fwd_target(n: int) -> float | None:
    return 0.5 if n == 1 else 1.0


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
    nt, reps = args.threads, args.repeats
    size = getattr(args, "size", "full")
    shapes = {"quick": QUICK_SHAPES, "default": DEFAULT_SHAPES, "full": SHAPES}[size]
    peak = sgemm_peak(nt, 512 if size == "quick" else 2048)
    backends = [b for b in live_backends("conv2d_forward") if b != "reference"] or ["reference"]

    def r2(v):
        return f"{v:.2f}"

    def pk(v):
        return f"{100 * v / peak:.0f}%"

    cols = [
        Column("shape", "shape (N,H,W,C,Co,K)", 20, left=True),
        Column("case", "case", 14, lambda v: v[:14], left=True),
        Column("fwd_s", "fwd ms", 8, lambda v: f"{1e3 * v:.3f}"),
        Column("fwd_x_torch", "x", 5, r2),
        Column("fwd_min_s", "[min", 7, lambda v: f"{1e3 * v:.3f}"),
        Column("fwd_min_x_torch", "x]", 5, r2),
        Column("fwd_gflops", "GF/s", 5, lambda v: f"{v:.1f}"),
        Column("fwd_gflops", "%pk", 4, pk),
        Column("bwd_s", "bwd ms", 8, lambda v: f"{1e3 * v:.3f}"),
        Column("bwd_x_torch", "x", 5, r2),
        Column("bwd_min_s", "[min", 7, lambda v: f"{1e3 * v:.3f}"),
        Column("bwd_min_x_torch", "x]", 5, r2),
        Column("bwd_gflops", "GF/s", 5, lambda v: f"{v:.1f}"),
        Column("bwd_gflops", "%pk", 4, pk),
    ]
    rep = Report(args, "conv2d", cols, {"threads": nt, "sgemm_peak": peak})
    rep.title(
        f"Conv2d benchmark: 'same' padding, bias, float32, NHWC (torch: channels_last), {nt} "
        f"threads; median of {reps} (x torch), [min] (x torch of the mins); backward = grad_x + "
        f"grad_w + grad_bias; sgemm peak {peak:.1f} GFLOP/s; GF/s and %peak from the medians"
    )
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
        missing_peer("PyTorch", "pip install torch")
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
            tf_, mf, sf = rep.stable(lambda f=f: measure(f, reps), f"{shape} {name} forward")
            tb2, mb, sb = rep.stable(lambda bw=bw: measure(bw, reps), f"{shape} {name} backward")
            is_peer = name.startswith("torch")
            if is_peer:
                peer = (tf_, mf, tb2, mb)
            fx = tf_ / peer[0] if peer and not is_peer else None
            bx = tb2 / peer[2] if peer and not is_peer else None
            ft = fwd_target(n) if name == "recfast cpu" else None
            bt = BWD_TARGET if name == "recfast cpu" else None
            marks = [
                f"fwd {target_mark(fx, ft)}" if ft else "",
                f"bwd {target_mark(bx, bt)}" if bt else "",
            ]
            rep.add(
                shape=shape,
                case=name,
                impl=name.split()[-1] if not is_peer else "torch",
                fwd_s=tf_,
                fwd_min_s=mf,
                fwd_spread=sf,
                bwd_s=tb2,
                bwd_min_s=mb,
                bwd_spread=sb,
                fwd_gflops=flops / tf_ / 1e9,
                bwd_gflops=2 * flops / tb2 / 1e9,
                fwd_x_torch=fx,
                fwd_min_x_torch=mf / peer[1] if peer and not is_peer else None,
                bwd_x_torch=bx,
                bwd_min_x_torch=mb / peer[3] if peer and not is_peer else None,
                mark="; ".join(m for m in marks if m),
                plot_bars=[
                    (f"conv2d {shape} forward [{name}] vs torch", fx, ft),
                    (f"conv2d {shape} backward [{name}] vs torch", bx, bt),
                ]
                if fx
                else [],
            )
    rep.finish()
    return 0
