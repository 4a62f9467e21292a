"""Dense-layer benchmark: the AutoRec shape on ml-100k (N=256, 1682 -> 500 -> 1682), forward and
forward+backward, against plain NumPy and PyTorch (CPU, same thread count) in the same run."""

from __future__ import annotations

from typing import Any

import numpy as np

import recfast
from recfast.bench.timing import machine, measure, write_json
from recfast.testing import live_backends

SHAPE = dict(n=256, d=1682, h=500)


def _autorec_numpy(x, W1, b1, W2, b2):
    h = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    return h, h @ W2.T + b2


def run(args: Any) -> int:
    n, d, h = SHAPE["n"], SHAPE["d"], SHAPE["h"]
    if args.quick:
        n, d, h = 64, 400, 100
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d), dtype=np.float32)
    W1 = rng.standard_normal((h, d), dtype=np.float32) * 0.05
    b1 = np.zeros(h, np.float32)
    W2 = rng.standard_normal((d, h), dtype=np.float32) * 0.05
    b2 = np.zeros(d, np.float32)
    g = rng.standard_normal((n, d), dtype=np.float32)
    nt, reps = args.threads, max(args.repeats, 5)
    rows: list[dict[str, Any]] = []

    def fwd_bwd(backend):
        hid = recfast.dense(x, W1, b1, activation="sigmoid", num_threads=nt, backend=backend)
        recfast.dense(hid, W2, b2, num_threads=nt, backend=backend)
        gh, gW2, gb2 = recfast.dense_backward(g, hid, W2, num_threads=nt, backend=backend)
        recfast.dense_backward(
            gh,
            x,
            W1,
            output=hid,
            activation="sigmoid",
            needs=("W", "b"),
            num_threads=nt,
            backend=backend,
        )

    # correctness before timing
    ref = _autorec_numpy(x, W1, b1, W2, b2)[1]
    for b in live_backends("dense_forward"):
        hid = recfast.dense(x, W1, b1, activation="sigmoid", backend=b)
        np.testing.assert_allclose(recfast.dense(hid, W2, b2, backend=b), ref, rtol=1e-4, atol=1e-4)

    for b in live_backends("dense_forward"):
        t, s = measure(lambda b=b: fwd_bwd(b), reps)
        rows.append(dict(case=f"dense fwd+bwd [{b}]", seconds=t, spread=s))
    try:
        import torch

        torch.set_num_threads(nt)
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        l1, l2 = torch.nn.Linear(d, h), torch.nn.Linear(h, d)

        def torch_step():
            l1.zero_grad(set_to_none=True)
            l2.zero_grad(set_to_none=True)
            out = l2(torch.sigmoid(l1(tx)))
            out.backward(tg)

        t, s = measure(torch_step, reps)
        rows.append(dict(case=f"torch {torch.__version__} autograd fwd+bwd", seconds=t, spread=s))
    except ImportError:
        print("torch not installed: no peer row (pip install torch)")

    peer = next((r["seconds"] for r in rows if r["case"].startswith("torch")), None)
    print(
        f"\nDense benchmark (AutoRec layers): N={n}, {d} -> {h} (sigmoid) -> {d}, float32, "
        f"{nt} threads; median of {reps}"
    )
    print(f"{'case':<40} {'ms':>8} {'spread':>7} {'x torch':>8}")
    for r in rows:
        ratio = f"{r['seconds'] / peer:.2f}" if peer else "-"
        print(f"{r['case']:<40} {1e3 * r['seconds']:>8.2f} {r['spread']:>6.0%} {ratio:>8}")
    write_json(args.json, rows, {"suite": "dense", "n": n, "d": d, "h": h, **machine()})
    return 0
