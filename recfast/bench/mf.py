"""SGD matrix factorization benchmark: updates/s per backend, as ratios to a plain Numba loop
measured in the same run (synthetic ratings with a planted low-rank structure)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

import recfast
from recfast.bench.timing import machine, measure, write_json
from recfast.datasets import synthetic_ratings
from recfast.testing import assert_close, live_backends, random_mf_problem

FULL = dict(n_users=50_000, n_items=10_000, nnz=5_000_000)
QUICK = dict(n_users=5_000, n_items=1_000, nnz=200_000)
K = 64
LR, REG = 0.005, 0.05


def check_correctness() -> None:
    """Every fast backend equals the reference on a small problem before anything is timed."""
    p = random_mf_problem(50, 40, 500, 7, dtype=np.float64, seed=0)
    out = {}
    for b in live_backends("sgd_mf_epoch"):
        U, V, ub, ib = p.copy_state()
        recfast.sgd_mf_epoch(
            p.rows,
            p.cols,
            p.values,
            U,
            V,
            user_bias=ub,
            item_bias=ib,
            learning_rate=0.05,
            regularization=0.02,
            num_threads=1,
            backend=b,
        )
        out[b] = U
    for b, U in out.items():
        assert_close(U, out["reference"], np.float64, f"{b} vs reference")


def _state(n_users: int, n_items: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        (rng.standard_normal((n_users, K)) * 0.1).astype(np.float32),
        (rng.standard_normal((n_items, K)) * 0.1).astype(np.float32),
        np.zeros(n_users, np.float32),
        np.zeros(n_items, np.float32),
    )


def run(args: Any) -> int:
    size = QUICK if args.quick else FULL
    nt, reps = args.threads, args.repeats
    check_correctness()
    data = synthetic_ratings(size["n_users"], size["n_items"], size["nnz"], seed=0)
    r, c, v = data.as_tuple()
    nnz, nu, ni = len(v), data.n_users, data.n_items
    mu = float(v.mean())
    rows: list[dict[str, Any]] = []

    def add(name: str, threads: int, seconds: float, spread: float, updates: int, **extra):
        rows.append(
            dict(
                case=name,
                threads=threads,
                seconds=seconds,
                spread=spread,
                updates_per_s=updates / seconds,
                **extra,
            )
        )

    # The yardstick: a plain single-threaded Numba loop over the same data.
    from recfast.bench.baseline import numba_sgd_fit, numba_sgd_loop

    U, V, ub, ib = _state(nu, ni)
    t, s = measure(
        lambda: numba_sgd_loop(
            r, c, v, U, V, ub, ib, np.float32(mu), np.float32(LR), np.float32(REG)
        ),
        reps,
    )
    add("numba plain loop (baseline), epoch", 1, t, s, nnz)
    base = nnz / t

    # sgd_mf_epoch in the caller's order (the data's own random order), each backend.
    for b in live_backends("sgd_mf_epoch"):
        if b == "reference":
            continue
        for threads in sorted({1, nt}):
            U, V, ub, ib = _state(nu, ni)
            kw = dict(
                user_bias=ub,
                item_bias=ib,
                global_mean=mu,
                learning_rate=LR,
                regularization=REG,
                num_threads=threads,
                backend=b,
            )
            t, s = measure(lambda U=U, V=V, kw=kw: recfast.sgd_mf_epoch(r, c, v, U, V, **kw), reps)
            add(f"sgd_mf_epoch[{b}], caller's order", threads, t, s, nnz)

    # End to end: 10 epochs of fit (layout included) vs the plain loop running 10 epochs.
    epochs = 10
    t, s = measure(lambda: numba_sgd_fit(r, c, v, nu, ni, K, epochs, lr=LR, reg=REG), reps)
    add("numba plain loop, fit 10 epochs", 1, t, s, nnz * epochs)
    for b in live_backends("sgd_mf_epoch"):
        if b == "reference":
            continue
        fits = []

        def fit(b=b, fits=fits):
            fits.append(
                recfast.MatrixFactorization(
                    factors=K, epochs=epochs, num_threads=nt, backend=b, random_state=0
                ).fit(data)
            )

        t, s = measure(fit, reps)
        lay = float(np.median([m.history_["layout_seconds"] for m in fits[-reps:]]))
        add(
            f"MatrixFactorization.fit[{b}] 10 epochs",
            nt,
            t,
            s,
            nnz * epochs,
            layout_share=lay / t,
            train_rmse=fits[-1].history_["train_rmse"][-1],
        )

    if args.data:
        _movielens_rows(Path(args.data), nt, reps, add)
    if args.peers:
        _peer_rows(data, nt, add)

    _print_table(rows, base, size, nt)
    write_json(args.json, rows, {"suite": "mf", **size, "k": K, **machine()})
    return 0


def _movielens_rows(path: Path, nt: int, reps: int, add) -> None:
    from recfast.datasets import load_movielens

    full = load_movielens(path / "u.data")
    maps = (full.user_ids, full.item_ids)
    train = load_movielens(path / "u1.base", id_maps=maps)
    test = load_movielens(path / "u1.test", id_maps=maps)
    models = []

    def fit():
        models.append(
            recfast.MatrixFactorization(factors=64, epochs=20, num_threads=nt, random_state=0).fit(
                train
            )
        )

    t, s = measure(fit, reps)
    add(
        "ml-100k u1.base fit, k=64, 20 epochs",
        nt,
        t,
        s,
        len(train) * 20,
        test_rmse=models[-1].score(test),
    )


def _peer_rows(data, nt: int, add) -> None:
    from recfast.bench import peers_mf

    train = data.as_tuple()
    for fn in (peers_mf.surprise_svd, peers_mf.libmf_mf):
        kwargs = dict(n_users=data.n_users, n_items=data.n_items, factors=K, epochs=10)
        if fn is peers_mf.libmf_mf:
            kwargs["num_threads"] = nt
        res = fn(train, **kwargs)
        if res.available and res.fit_seconds:
            add(
                f"peer: {res.name}, fit 10 epochs",
                nt if fn is peers_mf.libmf_mf else 1,
                res.fit_seconds,
                0.0,
                len(train[2]) * 10,
            )
        else:
            print(f"peer {res.name}: not measured ({res.reason})")


def _print_table(rows, base: float, size: dict, nt: int) -> None:
    print(
        f"\nSGD-MF benchmark: {size['nnz']:,} ratings, {size['n_users']:,} users x "
        f"{size['n_items']:,} items, k={K}, float32; {nt} threads; median of repeats"
    )
    print(
        f"{'case':<46} {'thr':>3} {'seconds':>9} {'spread':>7} {'M upd/s':>9} {'x numba':>8}  notes"
    )
    for r in rows:
        notes = []
        if "layout_share" in r:
            notes.append(f"layout {100 * r['layout_share']:.0f}% of time")
        if "test_rmse" in r:
            notes.append(f"test RMSE {r['test_rmse']:.4f}")
        print(
            f"{r['case']:<46} {r['threads']:>3} {r['seconds']:>9.3f} {r['spread']:>6.0%} "
            f"{r['updates_per_s'] / 1e6:>9.2f} {r['updates_per_s'] / base:>8.2f}  {'; '.join(notes)}"
        )
    print(
        f"(x numba: updates/s relative to the plain single-threaded Numba loop, {base / 1e6:.2f} "
        f"M updates/s here; {time.strftime('%Y-%m-%d')})"
    )
