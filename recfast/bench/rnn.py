"""Recurrent benchmark (issue #4): per-step latency of the RNN / GRU / LSTM cells and whole
sequences forward and forward+backward, against PyTorch's CPU cells and ``nn.RNN/GRU/LSTM`` with
the same thread count, measured in the same run. Ratios < 1 mean recfast is faster."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from recfast import rnn
from recfast.bench.report import Column, Report, missing_peer, pct, us, x2
from recfast.bench.timing import measure
from recfast.testing import live_backends

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
STEP_SHAPES = ((1, 32, 64), (16, 128, 256), (256, 128, 256))  # (N, D, H)
SEQ_SHAPES = ((50, 16, 128, 256), (50, 256, 128, 256))  # (T, N, D, H)
# The targets of issue #15 (CPU speed on every x86 server): recfast time / torch time.
STEP_TARGET = {1: 0.5, 16: 0.7, 256: 1.0}
SEQ_TARGET = {"forward": 0.8, "forward+backward": 1.0}


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
        missing_peer("PyTorch", "pip install torch")
    nt, reps = args.threads, args.repeats
    size = getattr(args, "size", "full")
    # seconds of calls per timed batch: the step rows time batches of calls
    budget = {"quick": 0.02, "default": 0.03, "full": 0.1}[size]
    step_shapes = STEP_SHAPES[:2] if size == "quick" else STEP_SHAPES
    seq_shapes = ((10, 4, 32, 64),) if size == "quick" else SEQ_SHAPES
    backends = live_backends("rnn_forward", ("cpu", "numba"))
    cols = [
        Column("case", "case", 52, left=True),
        Column("impl", "impl", 7, left=True),
        Column("seconds", "us", 10, us),
        Column("spread", "spread", 7, pct),
        Column("ratio", "x torch", 8, x2),
    ]
    rep = Report(args, "rnn", cols, {"threads": nt})
    rep.title(
        f"Recurrent benchmark: float32, {nt} threads, median of {reps}; x torch = time / "
        "PyTorch's (< 1: faster); targets for the cpu backend"
    )

    def add(**row):
        if row.get("impl") != "cpu":
            row["target"] = None
        rep.add(peer="torch", **row)

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

                peer, s = rep.stable(lambda: per_call(tstep, budget, reps), case)
                expected = tstep()
                expected = (expected[0] if cell == "lstm" else expected).numpy()
                add(case=case, impl="torch", seconds=peer, spread=s)
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
                t, s = rep.stable(lambda f=f: per_call(f, budget, reps), case)
                add(case=case, impl=be, seconds=t, spread=s, ratio=t / peer if peer else None,
                    target=STEP_TARGET.get(n))  # fmt: skip

    for (T, N, D, H), cell in ((shape, c) for shape in seq_shapes for c in CELLS):
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
            for what, fn in (("forward", tfwd), ("forward+backward", tboth)):
                case = f"{cell} sequence T={T} N={N} D={D} H={H} {what}"
                peer[what] = rep.stable(lambda fn=fn: measure(fn, reps), case)
                add(case=case, impl="torch", seconds=peer[what][0], spread=peer[what][1])
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
                case = f"{cell} sequence T={T} N={N} D={D} H={H} {what}"
                t, s = rep.stable(lambda f=f: measure(f, reps), case)
                p = peer.get(what, (None,))[0]
                add(case=case, impl=be, seconds=t, spread=s, ratio=t / p if p else None,
                    target=SEQ_TARGET[what])  # fmt: skip

    rep.finish()
    return 0
