"""Recurrent benchmark (issue #4): per-step latency of the RNN / GRU / LSTM cells and whole
sequences forward and forward+backward, against PyTorch's CPU cells and ``nn.RNN/GRU/LSTM`` with
the same thread count, measured in the same run. Ratios < 1 mean recfast is faster."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recfast import rnn
from recfast.bench.timing import machine, measure, write_json
from recfast.testing import live_backends

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
STEP_SHAPES = ((1, 32, 64), (16, 128, 256), (256, 128, 256))  # (N, D, H)
SEQ_SHAPE = (50, 16, 128, 256)  # (T, N, D, H)
# The targets: recfast time / torch time.
STEP_TARGET = {1: 0.5, 16: 0.5, 256: 1.1}
SEQ_TARGET = {"forward": 1.0, "forward+backward": 1.5}


def per_call(fn, seconds: float, repeats: int) -> tuple[float, float]:
    """Median (and spread) seconds per call, timing batches of calls that last ``seconds``."""
    fn()
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    inner = max(1, int(seconds / once))

    def batch():
        for _ in range(inner):
            fn()

    med, spread = measure(batch, repeats)
    return med / inner, spread


def _torch_modules(torch, cell, D, H):
    cls = {"rnn": torch.nn.RNNCell, "gru": torch.nn.GRUCell, "lstm": torch.nn.LSTMCell}[cell]
    seq = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    return cls(D, H), seq(D, H)


def run(args: Any) -> int:
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not installed: recfast rows only, no ratios (pip install torch)")
    nt, reps = args.threads, max(args.repeats, 5)
    budget = 0.02 if args.quick else 0.1
    step_shapes = STEP_SHAPES[:2] if args.quick else STEP_SHAPES
    T, N, D, H = (10, 4, 32, 64) if args.quick else SEQ_SHAPE
    backends = live_backends("rnn_forward", ("cpu", "numba"))
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.set_num_threads(nt)
        torch.manual_seed(0)

    for cell in CELLS:
        for n, d, h in step_shapes:
            x = rng.standard_normal((n, d), dtype=np.float32)
            hp = rng.standard_normal((n, h), dtype=np.float32)
            cp = rng.standard_normal((n, h), dtype=np.float32)
            G = GATES[cell]
            W = rng.standard_normal((G * h, d), dtype=np.float32) / d**0.5
            U = rng.standard_normal((G * h, h), dtype=np.float32) / h**0.5
            b1 = rng.standard_normal(G * h, dtype=np.float32) * 0.1
            b2 = rng.standard_normal(G * h, dtype=np.float32) * 0.1
            case = f"{cell} step N={n} D={d} H={h}"
            peer = None
            if torch is not None:
                m, _ = _torch_modules(torch, cell, d, h)
                with torch.no_grad():
                    m.weight_ih.copy_(torch.from_numpy(W))
                    m.weight_hh.copy_(torch.from_numpy(U))
                    m.bias_ih.copy_(torch.from_numpy(b1))
                    m.bias_hh.copy_(torch.from_numpy(b2))
                tx, th, tc = (torch.from_numpy(a) for a in (x, hp, cp))

                def tstep(m=m, tx=tx, th=th, tc=tc, cell=cell):
                    with torch.no_grad():
                        return m(tx, (th, tc)) if cell == "lstm" else m(tx, th)

                peer, s = per_call(tstep, budget, reps)
                expected = tstep()
                expected = (expected[0] if cell == "lstm" else expected).numpy()
                rows.append(dict(case=case, impl="torch", seconds=peer, spread=s))
            for be in backends:
                b = b1 + b2

                def f(be=be, cell=cell, x=x, hp=hp, cp=cp, W=W, U=U, b=b, b1=b1, b2=b2):
                    if cell == "rnn":
                        return rnn.rnn_step(x, hp, W, U, b, num_threads=nt, backend=be)
                    if cell == "gru":
                        return rnn.gru_step(x, hp, W, U, b1, b2, num_threads=nt, backend=be)
                    return rnn.lstm_step(x, hp, cp, W, U, b, num_threads=nt, backend=be)[0]

                if peer is not None:  # correctness before timing
                    np.testing.assert_allclose(f(), expected, rtol=1e-4, atol=1e-4)
                t, s = per_call(f, budget, reps)
                rows.append(
                    dict(
                        case=case,
                        impl=be,
                        seconds=t,
                        spread=s,
                        ratio=t / peer if peer else None,
                        target=STEP_TARGET.get(n),
                    )
                )

    for cell in CELLS:
        xs = rng.standard_normal((T, N, D), dtype=np.float32)
        h0 = np.zeros((N, H), np.float32)
        go = rng.standard_normal((T, N, H), dtype=np.float32)
        peer = {}
        if torch is not None:
            _, m = _torch_modules(torch, cell, D, H)
            _, act, params = rnn.from_torch(m)
            tx = torch.from_numpy(xs)
            tg = torch.from_numpy(go)

            def tfwd(m=m, tx=tx):
                with torch.no_grad():
                    return m(tx)[0]

            def tboth(m=m, tx=tx, tg=tg):
                m.zero_grad(set_to_none=True)
                xg = tx.detach().requires_grad_(True)
                m(xg)[0].backward(tg)

            expected = tfwd().numpy()
            peer["forward"] = measure(tfwd, reps)
            peer["forward+backward"] = measure(tboth, reps)
            for what, (t, s) in peer.items():
                rows.append(
                    dict(
                        case=f"{cell} sequence T={T} N={N} D={D} H={H} {what}",
                        impl="torch",
                        seconds=t,
                        spread=s,
                    )
                )
        else:
            G = GATES[cell]
            params = {
                "W": rng.standard_normal((G * H, D), dtype=np.float32) / D**0.5,
                "U": rng.standard_normal((G * H, H), dtype=np.float32) / H**0.5,
            }
            act, expected = "tanh", None
        for be in backends:

            def fwd(be=be, params=params, act=act, cell=cell, xs=xs, h0=h0):
                return rnn.rnn_forward(
                    xs, h0, params, cell=cell, activation=act, num_threads=nt, backend=be
                ).outputs

            def both(be=be, params=params, act=act, cell=cell, xs=xs, h0=h0, go=go):
                r = rnn.rnn_forward(
                    xs,
                    h0,
                    params,
                    cell=cell,
                    activation=act,
                    num_threads=nt,
                    return_sequences=True,
                    return_cache=True,
                    backend=be,
                )
                rnn.rnn_backward(go, None, r.cache, params, num_threads=nt, backend=be)

            if expected is not None:
                np.testing.assert_allclose(fwd(), expected, rtol=1e-4, atol=1e-4)
            for what, f in (("forward", fwd), ("forward+backward", both)):
                t, s = measure(f, reps)
                p = peer.get(what, (None,))[0]
                rows.append(
                    dict(
                        case=f"{cell} sequence T={T} N={N} D={D} H={H} {what}",
                        impl=be,
                        seconds=t,
                        spread=s,
                        ratio=t / p if p else None,
                        target=SEQ_TARGET[what],
                    )
                )

    print(f"\nRecurrent benchmark: float32, {nt} threads, median of {reps}; ratio = time / torch's")
    print(f"{'case':<52} {'impl':<7} {'us':>10} {'spread':>7} {'x torch':>8} {'target':>7}")
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") else "-"
        target = f"<={r['target']}" if r.get("target") and r.get("ratio") else ""
        print(
            f"{r['case']:<52} {r['impl']:<7} {1e6 * r['seconds']:>10.1f} {r['spread']:>6.0%} "
            f"{ratio:>8} {target:>7}"
        )
    write_json(args.json, rows, {"suite": "rnn", "threads": nt, **machine()})
    return 0
