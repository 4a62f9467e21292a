"""Implicit-feedback benchmark: recfast's ImplicitALS / BPR / top-k / evaluation against
implicit 0.7 (when installed), in the same run, on a skewed synthetic matrix (speed) and on
MovieLens 100K (accuracy: per-user 80/20 split, seed 0, every rating a positive).

Both libraries run ``--threads`` threads with the BLAS pool at one thread (implicit's advice).
Per-iteration times are ``(fit(3 iterations) - fit(1 iteration)) / 2`` for both libraries, so
set-up (transposes, initialisation, validation) is left out symmetrically.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import recfast
from recfast.bench.timing import machine, measure, write_json
from recfast.evaluation import ranking_metrics_at_k, train_test_split

FULL = dict(n_users=100_000, n_items=20_000, nnz=5_000_000, rec_users=20_000)
QUICK = dict(n_users=10_000, n_items=2_000, nnz=200_000, rec_users=2_000)
K = 64


def skewed_matrix(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    """``nnz`` interactions (duplicates summed), item popularity Zipf-like (p ~ 1/(rank+10)),
    users' activity log-normal; float32 strengths 1..4."""
    rng = np.random.default_rng(seed)
    p_item = 1.0 / (np.arange(n_items) + 10.0)
    p_user = rng.lognormal(0, 0.7, n_users)
    rows = rng.choice(n_users, nnz, p=p_user / p_user.sum())
    cols = rng.permutation(n_items)[rng.choice(n_items, nnz, p=p_item / p_item.sum())]
    vals = rng.integers(1, 5, nnz).astype(np.float32)
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    m.sum_duplicates()
    return m


def _per_iteration(make, R, reps: int) -> float:
    """(fit with 3 iterations - fit with 1) / 2, each the median of ``reps``."""
    t1 = measure(lambda: make(1).fit(R, show_progress=False), reps, warmup=0)[0]
    t3 = measure(lambda: make(3).fit(R, show_progress=False), reps, warmup=0)[0]
    return max(t3 - t1, 1e-9) / 2


def _ml100k(path: str | None):
    for p in (
        [Path(path)] if path else [Path(__file__).resolve().parents[3] / "shared/data/ml-100k"]
    ):
        f = p / "u.data" if (p / "u.data").is_file() else p / "ml-100k" / "u.data"
        if f.is_file():
            d = np.loadtxt(f, dtype=np.int64)
            R = sp.csr_matrix((np.ones(len(d), np.float32), (d[:, 0] - 1, d[:, 1] - 1)))
            return train_test_split(R, 0.2, random_state=0)
    return None


def run(args: Any) -> int:
    from threadpoolctl import threadpool_limits

    try:
        import implicit  # noqa: F401
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking
        from implicit.evaluation import ranking_metrics_at_k as implicit_metrics
    except ImportError:
        implicit = None
    size = QUICK if args.quick else FULL
    nt, reps = args.threads, max(1, args.repeats)
    meta = {"suite": "implicit", "threads": nt, **machine()}
    rows: list[dict[str, Any]] = []
    print(f"# implicit feedback: {meta['cpu']} ({meta['simd']}), {nt} threads, BLAS 1 thread, "
          f"k={K}" + ("" if implicit else "; implicit not installed: recfast only"))  # fmt: skip

    def row(what: str, unit: str, mine: float, peer: float | None, better: str) -> None:
        ratio = (
            None if peer is None else (peer / mine if better == "higher-is-peer" else mine / peer)
        )
        rows.append({"what": what, "unit": unit, "recfast": mine, "implicit": peer})
        r = "" if peer is None else f"{(mine / peer):8.3f}"
        p = "" if peer is None else f"{peer:12.4g}"
        print(f"| {what:<52} | {unit:<9} | {mine:12.4g} | {p:>12} | {r:>8} |")
        del ratio

    with threadpool_limits(1, "blas"):
        R = skewed_matrix(size["n_users"], size["n_items"], size["nnz"])
        print(f"synthetic: {R.shape[0]} users x {R.shape[1]} items, {R.nnz} interactions")
        print("| measurement | unit | recfast | implicit | recfast/implicit |")
        print("|---|---|---|---|---|")
        als = lambda it: recfast.ImplicitALS(factors=K, regularization=0.05, iterations=it,  # noqa: E731
                                             random_state=0, num_threads=nt)  # fmt: skip
        t = _per_iteration(als, R, reps)
        pt = None
        if implicit:
            pals = lambda it: AlternatingLeastSquares(factors=K, regularization=0.05,  # noqa: E731
                                                      iterations=it, random_state=0,
                                                      num_threads=nt)  # fmt: skip
            pt = _per_iteration(pals, R, reps)
        row("ALS iteration (CG 3 steps)", "s", t, pt, "lower")
        bpr = lambda it: recfast.BPR(factors=K, iterations=it, random_state=0,  # noqa: E731
                                     num_threads=nt)  # fmt: skip
        t = _per_iteration(bpr, R, reps)
        pt = None
        if implicit:
            pbpr = lambda it: BayesianPersonalizedRanking(factors=K, iterations=it,  # noqa: E731
                                                          random_state=0, num_threads=nt)  # fmt: skip
            pt = _per_iteration(pbpr, R, reps)
        row("BPR epoch (nnz samples)", "s", t, pt, "lower")

        mine = als(1).fit(R)
        users = np.arange(size["rec_users"])
        t = measure(lambda: mine.recommend(users, R, N=10), reps)[0]
        pt = None
        if implicit:
            peer = pals(1)
            peer.fit(R, show_progress=False)
            Rs = R[users]
            pt = measure(lambda: peer.recommend(users, Rs, N=10), reps)[0]
            a, b = mine.recommend(users[:200], R, N=10)[0], None
            peer.user_factors[:] = mine.user_factors
            peer.item_factors[:] = mine.item_factors
            b = peer.recommend(users[:200], Rs[:200], N=10)[0]
            agree = float((a == b).mean())
            print(f"(top-10 agreement with implicit on the same factors: {agree:.4f})")
        row(f"recommend {len(users)} users, N=10, seen filtered", "users/s", len(users) / t,
            None if pt is None else len(users) / pt, "higher")  # fmt: skip

        # Real time, one thread: a user with 50 interactions folded in and recommended.
        rng = np.random.default_rng(1)
        one = sp.csr_matrix((np.ones(50, np.float32), (np.zeros(50, int),
                             rng.choice(R.shape[1], 50, replace=False))), shape=(1, R.shape[1]))  # fmt: skip
        mine.num_threads = 1
        t = measure(lambda: mine.recommend(0, one, N=10, recalculate_user=True), 200, warmup=20)[0]
        pt = None
        if implicit:
            peer.num_threads = 1
            pt = measure(lambda: peer.recommend(0, one, N=10, recalculate_user=True), 200,
                         warmup=20)[0]  # fmt: skip
        row("recommend(recalculate_user=True), 1 user, 50 items", "ms", t * 1e3,
            None if pt is None else pt * 1e3, "lower")  # fmt: skip
        hundred = R[:100]
        ids = np.arange(100)
        t = measure(lambda: mine.partial_fit_users(ids, hundred), 20, warmup=3)[0]
        pt = None
        if implicit:
            pt = measure(lambda: peer.partial_fit_users(ids, hundred), 20, warmup=3)[0]
        row("partial_fit_users, 100 users", "ms", t * 1e3, None if pt is None else pt * 1e3,
            "lower")  # fmt: skip
        mine.num_threads = nt

        split = _ml100k(getattr(args, "data", None))
        if split is None:
            print("ml-100k not found: accuracy rows skipped (--data FOLDER)")
        else:
            tr, te = split
            tr, te = tr.astype(np.float32), te.astype(np.float32)
            print("\nml-100k, per-user 80/20 (seed 0), K=10; P@10 = implicit's precision "
                  "(hits / min(10, |test|), micro-averaged)")  # fmt: skip
            print("| model | library | fit s | NDCG@10 | P@10 | MAP@10 |")
            print("|---|---|---|---|---|---|")
            cases = [
                ("ALS f64 reg .05 15 it", "recfast",
                 lambda: recfast.ImplicitALS(factors=64, regularization=0.05, random_state=0,
                                             num_threads=nt)),
                ("ALS f64 reg .05 15 it, confidence=implicit", "recfast",
                 lambda: recfast.ImplicitALS(factors=64, regularization=0.05, random_state=0,
                                             confidence="implicit", num_threads=nt)),
                ("ALS defaults (f100 reg .01)", "recfast",
                 lambda: recfast.ImplicitALS(random_state=0, num_threads=nt)),
                ("BPR f64 100 it, negatives=popularity", "recfast",
                 lambda: recfast.BPR(factors=64, negatives="popularity", random_state=0,
                                     num_threads=nt)),
                ("BPR f64 100 it (uniform negatives)", "recfast",
                 lambda: recfast.BPR(factors=64, random_state=0, num_threads=nt)),
                ("BPR defaults (f100)", "recfast",
                 lambda: recfast.BPR(random_state=0, num_threads=nt)),
            ]  # fmt: skip
            if implicit:
                cases += [
                    ("ALS f64 reg .05 15 it", "implicit",
                     lambda: AlternatingLeastSquares(factors=64, regularization=0.05,
                                                     random_state=0, num_threads=nt)),
                    ("ALS defaults (f100 reg .01)", "implicit",
                     lambda: AlternatingLeastSquares(random_state=0, num_threads=nt)),
                    ("BPR f64 100 it", "implicit",
                     lambda: BayesianPersonalizedRanking(factors=64, random_state=0,
                                                         num_threads=nt)),
                    ("BPR defaults (f100)", "implicit",
                     lambda: BayesianPersonalizedRanking(random_state=0, num_threads=nt)),
                ]  # fmt: skip
            for name, lib, make in cases:
                m = make()
                t0 = time.perf_counter()
                m.fit(tr, show_progress=False)
                ft = time.perf_counter() - t0
                r = ranking_metrics_at_k(m, tr, te, K=10, auc=False)
                rows.append({"what": f"ml-100k {name}", "library": lib, "fit_s": ft,
                             "ndcg": r["ndcg"], "precision": r["precision_min"],
                             "map": r["map"]})  # fmt: skip
                print(f"| {name} | {lib} | {ft:.3f} | {r['ndcg']:.4f} | {r['precision_min']:.4f} "
                      f"| {r['map']:.4f} |")  # fmt: skip
            m = recfast.ImplicitALS(factors=64, regularization=0.05, random_state=0).fit(tr)
            t = measure(lambda: ranking_metrics_at_k(m, tr, te, K=10), reps)[0]
            t_noauc = measure(lambda: ranking_metrics_at_k(m, tr, te, K=10, auc=False), reps)[0]
            pt = None
            if implicit:
                pm = AlternatingLeastSquares(factors=64, iterations=1)
                pm.user_factors, pm.item_factors = m.user_factors.copy(), m.item_factors.copy()
                pt = measure(lambda: implicit_metrics(pm, tr, te, K=10, show_progress=False),
                             reps)[0]  # fmt: skip
            print(f"\nranking_metrics_at_k on ml-100k: {t:.3f} s with the full-ranking AUC, "
                  f"{t_noauc:.3f} s without" + ("" if pt is None else f"; implicit {pt:.3f} s"))  # fmt: skip
            rows.append({"what": "ranking_metrics_at_k ml-100k", "recfast": t,
                         "recfast_no_auc": t_noauc, "implicit": pt})  # fmt: skip
    write_json(args.json, rows, meta)
    return 0
