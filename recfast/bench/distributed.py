"""DSGD on a Dask LocalCluster vs the single-machine fit, on one machine (issue 12).

The 5M-rating synthetic matrix (50,000 users x 10,000 items, k=64): ``MatrixFactorization`` on
``--threads`` threads against the same estimator fitted with ``client=`` on a LocalCluster of
``--threads`` worker processes x 1 thread. Per epoch: wall time, the share in the kernel (the
busiest worker's sum of ``sgd_mf_epoch`` seconds), the share receiving factor blocks (the
busiest worker's incoming transfers, from the workers' own transfer logs) and the rest
(scheduling, serialisation, block copies, waiting); bytes moved; test RMSE of both fits.
On one machine the workers can only add overhead: the target is <= 1.5x the single-machine time.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from typing import Any

import numpy as np

import recfast
from recfast.bench.timing import machine, write_json
from recfast.datasets import synthetic_ratings

FULL = dict(n_users=50_000, n_items=10_000, nnz=5_000_000)
QUICK = dict(n_users=5_000, n_items=1_000, nnz=200_000)
K = 64


def _transfers(dask_worker: Any) -> list[dict[str, Any]]:
    return [
        {"start": t["start"], "duration": t["duration"], "keys": dict(t["keys"])}
        for t in dask_worker.transfer_incoming_log
    ]


def run(args: Any) -> int:
    try:
        import distributed
    except ImportError:
        print("distributed: needs dask.distributed (pip install 'recfast[distributed]'); skipped")
        return 0
    size = QUICK if args.quick else FULL
    nt = args.threads
    epochs = 4 if args.quick else 6
    data = synthetic_ratings(size["n_users"], size["n_items"], size["nnz"], seed=0)
    r, c, v = data.as_tuple()
    test = np.random.default_rng(1).random(len(v)) < 0.02
    train, held = (r[~test], c[~test], v[~test]), (r[test], c[test], v[test])
    params = dict(factors=K, epochs=epochs, random_state=0)
    # The machine is shared: the single-machine fit and the cluster fits alternate, round after
    # round, and each row reports medians over rounds (ratios taken within a round).
    res: dict[str, list[dict[str, Any]]] = {}
    with distributed.LocalCluster(
        n_workers=nt, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR,
    ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
        client.wait_for_workers(nt, timeout=120)
        for _ in range(max(1, args.repeats)):
            t = time.perf_counter()
            single = recfast.MatrixFactorization(**params, num_threads=nt).fit(train)
            total = time.perf_counter() - t
            s_epoch = statistics.median(single.history_["seconds"][1:])
            res.setdefault(f"single machine, {nt} threads", []).append(
                dict(epoch_s=s_epoch, ratio=1.0, total_s=total, rmse=single.score(held),
                     layout_s=single.history_["layout_seconds"], n_blocks=single.n_blocks_)
            )  # fmt: skip
            for n_blocks in (None, 2 * nt):
                client.run(lambda dask_worker: dask_worker.transfer_incoming_log.clear())
                t = time.perf_counter()
                m = recfast.MatrixFactorization(**params, n_blocks=n_blocks).fit(
                    train, client=client, timeout=600
                )
                total = time.perf_counter() - t
                h = m.history_
                per_epoch = _epoch_transfers(client.run(_transfers), epochs)
                wall = statistics.median(h["seconds"][1:])
                kern = statistics.median(h["kernel_seconds"][1:])
                move = statistics.median(x["seconds"] for x in per_epoch[1:])
                res.setdefault(
                    f"DSGD, LocalCluster {nt} workers x 1 thread, p={m.n_blocks_}", []
                ).append(dict(
                    epoch_s=wall, ratio=wall / s_epoch, total_s=total, rmse=m.score(held),
                    layout_s=h["layout_seconds"], n_blocks=m.n_blocks_, kernel_share=kern / wall,
                    transfer_share=move / wall, overhead_share=max(0.0, 1 - (kern + move) / wall),
                    item_mb_per_epoch=statistics.median(x["item_bytes"] for x in per_epoch[1:]) / 1e6,
                    other_mb_per_epoch=statistics.median(x["other_bytes"] for x in per_epoch[1:]) / 1e6,
                    tasks_per_epoch=2 * m.n_blocks_**2 + m.n_blocks_,
                ))  # fmt: skip
        overhead = _schedule_cost(client)
    rows = [
        {"case": case, "rounds": len(rs),
         **{k: statistics.median(r[k] for r in rs) for k in rs[0]}}
        for case, rs in res.items()
    ]  # fmt: skip
    _print(rows, size, nt, epochs, rows[0]["rmse"])
    print(f"\nScheduling cost alone (a DSGD fit of {TINY} ratings, k=4, on the same cluster):")
    print(f"{'p':>4} {'tasks/epoch':>12} {'s/epoch':>9} {'ms/stratum':>11} {'ms/task':>8}")
    for r in overhead:
        print(f"{r['n_blocks']:>4} {r['tasks_per_epoch']:>12} {r['epoch_s']:>9.4f} "
              f"{1e3 * r['stratum_s']:>11.2f} {1e3 * r['task_s']:>8.2f}")  # fmt: skip
    rows += [{"case": f"scheduling only, p={r['n_blocks']}", **r} for r in overhead]
    write_json(args.json, rows, {"suite": "distributed", **size, "k": K, **machine()})
    return 0


TINY = 2_000


def _schedule_cost(client: Any) -> list[dict[str, Any]]:
    """Per-epoch time of DSGD on data so small that the kernel takes microseconds: what the
    scheduler, the task round trips and the dependency waits cost per stratum and per task."""
    data = synthetic_ratings(200, 200, TINY, seed=3)
    out = []
    for p in (2, 4, 8, 16):
        m = recfast.MatrixFactorization(factors=4, epochs=8, n_blocks=p, random_state=0)
        m.fit(data, client=client, timeout=600)
        e = statistics.median(m.history_["seconds"][1:])
        tasks = 2 * p * p + p
        out.append(dict(n_blocks=p, tasks_per_epoch=tasks, epoch_s=e, stratum_s=e / p,
                        task_s=e / tasks))  # fmt: skip
    return out


def _epoch_transfers(logs: dict[str, list[dict[str, Any]]], epochs: int) -> list[dict[str, float]]:
    """Per epoch: the busiest worker's seconds receiving data; bytes of item blocks and other."""
    pat = re.compile(r"^dsgd-(upd|item|loss)-[0-9a-f]+-e(\d+)-")
    out = [{"seconds": 0.0, "item_bytes": 0.0, "other_bytes": 0.0} for _ in range(epochs)]
    per_worker = [dict.fromkeys(logs, 0.0) for _ in range(epochs)]
    for w, log in logs.items():
        for tr in log:
            for key, nbytes in tr["keys"].items():
                m = pat.search(str(key))
                if not m:
                    continue
                e = int(m.group(2))
                out[e]["item_bytes" if m.group(1) == "item" else "other_bytes"] += nbytes
            ep = {int(m.group(2)) for key in tr["keys"] if (m := pat.search(str(key)))}
            for e in ep:
                per_worker[e][w] += tr["duration"] / len(ep)
    for e in range(epochs):
        out[e]["seconds"] = max(per_worker[e].values(), default=0.0)
    return out


def _print(rows, size, nt, epochs, s_rmse) -> None:
    m = machine()
    print(
        f"\nDSGD vs single machine: {size['nnz']:,} ratings ({size['n_users']:,} x "
        f"{size['n_items']:,}), k={K}, {epochs} epochs, {rows[0]['rounds']} rounds; CPU "
        f"{m['cpu']} ({m['cores']} cores, {m['simd']})"
    )
    head = (f"{'case':<48} {'s/epoch':>8} {'x single':>8} {'kernel':>7} {'moving':>7} "
            f"{'other':>7} {'MB/epoch':>9} {'RMSE':>7} {'dRMSE':>7}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in rows:
        share = [r.get(k) for k in ("kernel_share", "transfer_share", "overhead_share")]
        cells = ["" if x is None else f"{100 * x:.0f}%" for x in share]
        mb = r.get("item_mb_per_epoch")
        mbs = "" if mb is None else f"{mb:.1f}"
        print(
            f"{r['case']:<48} {r['epoch_s']:>8.3f} {r['ratio']:>7.2f}x "
            f"{cells[0]:>7} {cells[1]:>7} {cells[2]:>7} {mbs:>9} {r['rmse']:>7.4f} "
            f"{r['rmse'] - s_rmse:>+7.4f}"
        )
    print("(medians over rounds of the per-epoch medians over epochs 2..; x single: within a "
          "round; 'moving': the busiest worker receiving blocks; MB/epoch: item-factor bytes "
          "received by all workers)")  # fmt: skip
