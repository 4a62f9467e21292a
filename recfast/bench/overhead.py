"""Per-call overhead (issue #8): the step ops and small dense layers at sizes where the arithmetic
is a few hundred nanoseconds, so the time is what recfast spends around the kernel (finding the
array kind, validation, backend choice, building the argument structure, the binding). NumPy
inputs, and PyTorch CPU tensors (wrapped in and out, zero-copy) when torch is installed.

Runs as ``python -m recfast.bench overhead``, or as a plain script against another checkout
(``PYTHONPATH=<checkout> python recfast/bench/overhead.py``) to compare before and after."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import recfast

D, H = 32, 64  # (N=1): a step is ~12 kFLOP


def per_call_us(fn, calls: int, repeats: int) -> tuple[float, float]:
    """(median, min) microseconds per call over ``repeats`` batches of ``calls`` calls."""
    for _ in range(min(calls, 500)):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t) / calls * 1e6)
    return statistics.median(times), min(times)


def cases(backend: str, wrap) -> dict[str, Any]:
    rng = np.random.default_rng(0)

    def r(*shape):
        return wrap(rng.standard_normal(shape).astype(np.float32))

    x, h, c = r(1, D), r(1, H), r(1, H)
    W1, U1, b1 = r(H, D), r(H, H), r(H)
    W3, U3, b3, b3h = r(3 * H, D), r(3 * H, H), r(3 * H), r(3 * H)
    W4, U4, b4 = r(4 * H, D), r(4 * H, H), r(4 * H)
    x16, Wd, bd = r(16, 128), r(256, 128), r(256)
    kw = dict(num_threads=1, backend=backend)
    return {
        f"rnn_step N=1 D={D} H={H}": lambda: recfast.rnn_step(x, h, W1, U1, b1, **kw),
        f"gru_step N=1 D={D} H={H}": lambda: recfast.gru_step(x, h, W3, U3, b3, b3h, **kw),
        f"lstm_step N=1 D={D} H={H}": lambda: recfast.lstm_step(x, h, c, W4, U4, b4, **kw),
        f"dense N=1 {D}->{H} relu": lambda: recfast.dense(x, W1, b1, activation="relu", **kw),
        "dense N=16 128->256 relu": lambda: recfast.dense(x16, Wd, bd, activation="relu", **kw),
    }


def run(args: Any) -> int:
    from recfast.bench.report import Column, Report, missing_peer

    size = getattr(args, "size", "quick" if getattr(args, "quick", False) else "full")
    calls = {"quick": 2000, "default": 5000, "full": 20000}[size]
    reps = args.repeats
    kinds: dict[str, Any] = {"numpy": lambda a: a}
    try:
        import torch

        kinds["torch"] = torch.from_numpy
    except ImportError:
        missing_peer("PyTorch", "pip install torch")
    backends = [b.name for b in recfast.backends() if b.available and b.name in ("cpu", "numba")]

    def f2(v):
        return f"{v:.2f}"

    cols = [
        Column("case", "case", 28, left=True),
        Column("backend", "backend", 7, left=True),
        Column("kind", "kind", 6, left=True),
        Column("median_us", "median us", 10, f2),
        Column("min_us", "min us", 8, f2),
        Column("over_numpy_us", "+us vs NumPy", 12, f2),
    ]
    rep = Report(args, "overhead", cols, {})
    rep.title(f"Per-call overhead: {calls} calls per batch, median of {reps} batches, one thread")
    for be in backends:
        base = {}
        for kind, wrap in kinds.items():
            try:
                fns = cases(be, wrap)
                for fn in fns.values():
                    fn()  # fails here, not inside the timing, for a kind a build cannot take
            except Exception as exc:
                print(f"{be} {kind}: skipped ({type(exc).__name__}: {exc})")
                continue
            for name, fn in fns.items():
                med, lo = per_call_us(fn, calls, reps)
                extra = lo - base[name] if kind != "numpy" and name in base else None
                if kind == "numpy":
                    base[name] = lo
                rep.add(case=name, backend=be, kind=kind, median_us=med, min_us=lo,
                        over_numpy_us=extra)  # fmt: skip
    rep.finish()
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--json", default=None)
    p.add_argument("--size", default="full", choices=["quick", "default", "full"])
    raise SystemExit(run(p.parse_args()))
