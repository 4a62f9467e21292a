"""DSGD (Gemulla et al., KDD 2011): :class:`~recfast.MatrixFactorization` on a Dask cluster.

The ratings are cut into ``p x p`` blocks (users and items range-split, the ranges
:func:`recfast.mf_block_layout` uses). Worker ``w`` owns the user blocks ``[w c, (w+1) c)``
(``p = c W``) and their ratings, laid out once per fit on that worker. An epoch is ``p``
strata; in stratum ``s`` user block ``b`` is updated with item block ``(b + s) mod p`` by the
native ``sgd_mf_epoch`` on its owner. The blocks of a stratum share no user and no item, so
they run at once; between strata only item blocks move (each item block visits the user blocks
in descending order, so it changes worker ``W`` times per epoch: every worker receives one copy
of the item factors per epoch, and the ratings never move).

Why ``MatrixFactorization.fit(..., client=)`` and not a ``DistributedMatrixFactorization``: the
parameters and the fitted model are the same, so one class keeps one parameter list, one
``save``/``load`` format and one set of docs; only where the epochs run differs.

Why futures and not actors or ``client.scatter``: every block is the output of a pure task
(factor blocks in, factor blocks out), so a result lost with a worker is recomputed by Dask
from its lineage, and a re-run gives the same bits; an actor's state dies with its worker, and
scattered data has no lineage. User blocks stay resident because their tasks are pinned
(``workers=``, with ``allow_other_workers`` so that a dead owner's blocks move elsewhere).
The epoch's task graph is submitted at once; the data dependencies alone order the strata, so
the scheduler never waits for the driver between strata.

Lineage is cut at every ``checkpoint_dir`` epoch (the next epoch starts from tasks that read
the checkpoint files); without a checkpoint a lost block is recomputed from the start of the
fit (correct, but up to a whole fit of work).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast.distributed import _tasks as T
from recfast.mf import DivergenceError

CHECKPOINT_VERSION = 1
MANIFEST = "dsgd.json"


def _require_dask() -> Any:
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - the extra is missing
        raise ImportError(
            "client= needs dask.distributed: pip install 'recfast[distributed]'"
        ) from exc
    return distributed


def is_dask_dataframe(obj: Any) -> bool:
    """True for a ``dask.dataframe`` collection (without importing dask when it is absent)."""
    mod = type(obj).__module__
    return mod.startswith(("dask.dataframe", "dask_expr")) and hasattr(obj, "to_delayed")


def _workers(client: Any) -> list[str]:
    distributed = _require_dask()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if client.status != "running":
        raise ValueError(f"client is not running (status {client.status!r})")
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if not workers:
        raise ValueError(
            "the Dask cluster has no workers: start some (dask worker <scheduler address>) or "
            "call client.wait_for_workers(n) before fit"
        )
    return workers


def _frame_stats(ddf: Any, columns: tuple[str, str, str], client: Any, timeout: float | None):
    """Check the columns and dtypes of a dask dataframe; one pass for sizes and the mean."""
    distributed = _require_dask()
    if not (isinstance(columns, tuple) and len(columns) == 3 and all(isinstance(c, str) for c in columns)):  # fmt: skip
        raise TypeError(f"columns must be a (user, item, rating) tuple of names, got {columns!r}")
    missing = [c for c in columns if c not in ddf.columns]
    if missing:
        raise ValueError(
            f"ratings has no column(s) {missing} (columns={columns}); it has {list(ddf.columns)}"
        )
    from pandas.api import types as pdt  # dask.dataframe's own dependency

    for c, what in zip(columns[:2], ("user", "item")):
        dt = ddf[c].dtype
        if not pdt.is_integer_dtype(dt) or pdt.is_bool_dtype(dt):
            raise TypeError(
                f"ratings column {c!r} ({what} ids) must hold integers, got dtype {dt}; map the "
                "ids to 0..n-1 integers first"
            )
    dt = ddf[columns[2]].dtype
    if not pdt.is_numeric_dtype(dt) or pdt.is_bool_dtype(dt):
        raise TypeError(f"ratings column {columns[2]!r} must hold numbers, got dtype {dt}")
    u, i, r = (ddf[c] for c in columns)
    fut = client.compute([u.min(), u.max(), i.min(), i.max(), r.count(), r.sum(), r.min(), r.max(),
                          r.isna().sum(), u.isna().sum() + i.isna().sum(), u.size])  # fmt: skip
    distributed.wait(fut, timeout=timeout)
    umin, umax, imin, imax, n, total, rmin, rmax, nans, id_nans, size = client.gather(fut)
    if size == 0:
        raise ValueError("ratings is empty: fit needs at least one rating")
    if id_nans:
        raise ValueError(f"ratings columns {columns[:2]} hold missing ids")
    if umin < 0 or imin < 0:
        raise ValueError(f"ratings ids must be >= 0, got user min {umin}, item min {imin}")
    if nans or not (np.isfinite(rmin) and np.isfinite(rmax)):
        raise ValueError(f"ratings column {columns[2]!r} holds NaN or inf")
    return (int(umax) + 1, int(imax) + 1), int(n), float(total) / n, (float(rmin), float(rmax))


def fit_dsgd(
    model: Any,
    ratings: Any,
    client: Any,
    *,
    columns: tuple[str, str, str] = ("user", "item", "rating"),
    checkpoint_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> Any:
    """Fit ``model`` (a :class:`~recfast.MatrixFactorization`) by DSGD on ``client``'s cluster.

    ``ratings``: a ``dask.dataframe`` with integer user/item id columns and a rating column
    (``columns``), or any local input ``MatrixFactorization.fit`` takes. ``checkpoint_dir``
    (shared by the driver and the workers): the factors are written there after every epoch
    and a later fit with the same data, parameters and cluster size resumes from the last
    complete epoch. ``timeout``: seconds any one epoch (or the layout) may take before
    ``TimeoutError``. Sets the same attributes as the single-machine fit, plus ``n_blocks_``.
    """
    distributed = _require_dask()
    workers = _workers(client)
    p = model._checked_params()
    dtype, k = p["dtype"], p["k"]
    if timeout is not None:
        timeout = check.scalar("timeout", timeout, low=0.0, low_open=True)
    if is_dask_dataframe(ratings):
        shape, nnz, mu, rating_range = _frame_stats(ratings, columns, client, timeout)
        local = None
    else:
        rows, cols, values, shape = model._triplet(ratings, "ratings", dtype, None)
        nnz = len(values)
        if nnz == 0:
            raise ValueError("ratings is empty: fit needs at least one rating")
        mu = float(values.mean(dtype=np.float64))
        rating_range = (float(values.min()), float(values.max()))
        local = (rows, cols, values)
    n_users, n_items = shape
    W = len(workers)
    if model.n_blocks is not None:
        nb = check.positive_int("n_blocks", model.n_blocks)
        if nb > 4096:
            raise ValueError(f"n_blocks must be <= 4096, got {nb}")
    else:
        # One block per worker: the fewest tasks (each costs the scheduler ~1-10 ms) and
        # factor moves; the strata still give the single-machine RMSE (tests, BENCHMARKS.md).
        nb = W
    nb = min(nb, max(1, min(n_users, n_items)))
    owner = [workers[b * W // nb] for b in range(nb)]
    # The seed is drawn once here: every task gets it as an argument, so re-runs agree.
    seed = int(np.random.default_rng(model.random_state).integers(2**63))
    tag = uuid.uuid4().hex[:8]
    adagrad = model.solver == "adagrad"
    spec = {
        "format_version": CHECKPOINT_VERSION, "params": _fit_params(model), "n_blocks": nb,
        "shape": [n_users, n_items], "nnz": nnz, "seed": seed, "mean": mu,
    }  # fmt: skip
    ckpt = None if checkpoint_dir is None else Path(checkpoint_dir)
    start, history, lr = 0, _new_history(), p["lr"]
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        resumed = _read_manifest(ckpt, spec, model.random_state)
        if resumed is not None and resumed[0] > p["epochs"]:
            raise ValueError(
                f"{ckpt} holds a checkpoint after epoch {resumed[0]}, beyond epochs={p['epochs']}"
            )
        if resumed is not None:
            start, history, lr, spec["seed"] = resumed
            seed = spec["seed"]
    # Threads inside one block update: num_threads when given (multi-core workers), else 1
    # (a worker per core). Not resolved from this machine's cores: the workers have their own.
    nt = 1 if model.num_threads is None else check.positive_int("num_threads", model.num_threads)
    hp = T.Hyper(p["reg"], p["breg"], mu, model.backend, nt)

    def submit(fn: Any, *args: Any, key: str, worker: str | None = None) -> Any:
        # "dsgd-upd-<fit>-e3-s1-b0": the dashboard groups tasks by the leading words (dsgd-upd).
        kind, _, rest = key.partition("-")
        key = f"dsgd-{kind}-{tag}-{rest}"
        if worker is None:
            return client.submit(fn, *args, key=key, pure=False)
        return client.submit(fn, *args, key=key, pure=False, workers=[worker],
                             allow_other_workers=True)  # fmt: skip

    sizes = [[T.bounds(n, nb, b)[1] - T.bounds(n, nb, b)[0] for b in range(nb)]
             for n in (n_users, n_items)]  # fmt: skip
    block_args = (k, str(dtype), model.biases, adagrad)

    def roots(epoch: int) -> tuple[list[Any], list[Any]]:
        """The blocks epoch ``epoch`` starts from, as tasks without inputs: drawn from the seed
        (epoch 0) or read from the checkpoint. Item block j starts beside user block j."""
        out = []
        for side, name in enumerate("ui"):
            if epoch == 0:
                out.append([submit(T.init_block, seed, side, b, sizes[side][b], k,
                                   p["init_std"], *block_args[1:], key=f"init-{name}{b}",
                                   worker=owner[b]) for b in range(nb)])  # fmt: skip
            else:
                out.append([submit(T.load_block, str(_block_path(ckpt, name, b, epoch)),
                                   sizes[side][b], *block_args, key=f"load-{name}{b}-e{epoch}",
                                   worker=owner[b]) for b in range(nb)])  # fmt: skip
        return out[0], out[1]

    def wait(futs: list[Any], what: str) -> None:
        try:
            distributed.wait(futs, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(f"DSGD: {what} took longer than timeout={timeout} s") from None
        except Exception as exc:
            _closed(client, exc)
            raise

    try:
        t0 = time.perf_counter()
        blocks = _layout(
            client, submit, ratings, local, columns, nb, shape, seed, owner, str(dtype), k
        )
        wait(blocks, "the ratings layout")
        _raise_errors(client, blocks)
        history["layout_seconds"] = time.perf_counter() - t0
        users, items = roots(start)
        bar = None
        if model.show_progress and start < p["epochs"]:
            from tqdm.auto import tqdm

            bar = tqdm(total=(p["epochs"] - start) * nb, desc="DSGD", unit="stratum")
        last = [time.perf_counter()]

        def finish(epoch: int, strata: list[list[Any]], losses: list[Any], lr: float) -> None:
            """Wait for epoch ``epoch`` and record it."""
            if bar is not None:
                for s, outs in enumerate(strata):
                    wait(outs, f"stratum {s + 1} of epoch {epoch + 1}")
                    bar.update(1)
            wait(losses, f"epoch {epoch + 1}")
            try:
                got = client.gather(losses)
            except DivergenceError as exc:
                raise DivergenceError(
                    f"{exc} in epoch {epoch + 1} of {p['epochs']} (learning_rate={lr:g})"
                ) from None
            sse = float(sum(g[0] for g in got))
            now = time.perf_counter()
            history["seconds"].append(now - last[0])
            last[0] = now
            history["kernel_seconds"].append(_per_worker_max(got, owner))
            history["loss"].append(sse)
            history["train_rmse"].append(math.sqrt(sse / nnz))
            if not np.isfinite(sse):
                raise DivergenceError(
                    f"SGD diverged in epoch {epoch + 1} of {p['epochs']}: the training loss "
                    f"is {sse} (learning_rate={lr:g}); lower learning_rate"
                )
            if bar is not None:
                bar.set_postfix(mse=f"{sse / nnz:.4f}")

        pending = None
        try:
            for epoch in range(start, p["epochs"]):
                state, item, strata = list(users), list(items), []
                for s in range(nb):
                    outs = []
                    for b in range(nb):
                        j = (b + s) % nb
                        out = submit(T.update, state[b], item[j], blocks[b], j, lr, hp, s == 0,
                                     key=f"upd-e{epoch}-s{s}-b{b}", worker=owner[b])  # fmt: skip
                        state[b] = out
                        outs.append((j, out))
                    for j, out in outs:
                        item[j] = submit(T.item_of, out, key=f"item-e{epoch}-s{s}-i{j}")
                    strata.append([out for _, out in outs])
                losses = [submit(T.loss_of, state[b], key=f"loss-e{epoch}-b{b}") for b in range(nb)]
                users, items = state, item
                # The next epoch is submitted before this one is waited for: the workers go
                # from one epoch into the next without waiting for the driver.
                if pending is not None:
                    finish(*pending)
                pending = (epoch, strata, losses, lr)
                lr *= p["decay"]
                if ckpt is not None:
                    finish(*pending)
                    pending = None
                    _checkpoint(client, submit, wait, ckpt, users, items, owner, epoch + 1,
                                {**spec, "learning_rate": lr, "history": history})  # fmt: skip
                    # The next epoch starts from the files: the lineage ends here.
                    users, items = roots(epoch + 1)
                    last[0] = time.perf_counter()
            if pending is not None:
                finish(*pending)
        finally:
            if bar is not None:
                bar.close()
        users = [
            submit(T.user_of, u, key=f"user-b{b}", worker=owner[b]) for b, u in enumerate(users)
        ]
        wait(users + items, "gathering the factors")
        U = client.gather(users)
        V = client.gather(items)
    except Exception as exc:
        _closed(client, exc)
        raise
    st = _assemble(U, V, mu, rating_range)
    model._commit(st, _numpy_kind())
    model.history_ = history
    model.n_blocks_ = nb
    return model


def _layout(client, submit, ratings, local, columns, nb, shape, seed, owner, dtype, k):
    """Futures of the laid-out rating blocks, one per user block, on its owner."""
    n_users, n_items = shape
    if local is not None:
        rows, cols, values = local
        blk = T.block_of(rows, n_users, nb)
        order = np.argsort(blk, kind="stable")
        cuts = np.searchsorted(blk[order], np.arange(nb + 1))
        # The slices travel inside the tasks (not client.scatter): a task can be re-run after
        # its worker dies, scattered data cannot. Dask warns about such graphs; it is meant.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Sending large graph", UserWarning)
            return [
            submit(T.layout, b, nb, n_users, n_items, seed, k,
                   (rows[order[cuts[b] : cuts[b + 1]]], cols[order[cuts[b] : cuts[b + 1]]],
                    values[order[cuts[b] : cuts[b + 1]]]), key=f"layout-b{b}", worker=owner[b])
            for b in range(nb)
        ]  # fmt: skip
    parts = client.compute(ratings.to_delayed())
    splits = [submit(T.split_partition, part, columns, nb, n_users, dtype, key=f"split-{q}")
              for q, part in enumerate(parts)]  # fmt: skip
    out = []
    for b in range(nb):
        pieces = [submit(T.piece, sp, b, key=f"piece-{q}-b{b}") for q, sp in enumerate(splits)]
        out.append(submit(T.layout, b, nb, n_users, n_items, seed, k, *pieces, key=f"layout-b{b}",
                          worker=owner[b]))  # fmt: skip
    return out


def _checkpoint(client, submit, wait, ckpt, users, items, owner, epoch, meta) -> None:
    """Write the epoch's blocks, then the manifest (the commit point); drop the older files."""
    saves = [submit(T.save_block, u, str(_block_path(ckpt, "u", b, epoch)),
                    key=f"save-u{b}-e{epoch}", worker=owner[b]) for b, u in enumerate(users)]  # fmt: skip
    saves += [submit(T.save_block, v, str(_block_path(ckpt, "i", j, epoch)),
                     key=f"save-i{j}-e{epoch}") for j, v in enumerate(items)]  # fmt: skip
    wait(saves, f"the checkpoint of epoch {epoch}")
    _raise_errors(client, saves)
    _write_manifest(ckpt, {**meta, "epoch": epoch})
    for old in ckpt.glob(f"dsgd-*-e{epoch - 1}.npz"):
        old.unlink(missing_ok=True)


def _block_path(ckpt: Path, side: str, b: int, epoch: int) -> Path:
    return ckpt / f"dsgd-{side}{b}-e{epoch}.npz"


def _fit_params(model: Any) -> dict[str, Any]:
    """The parameters a checkpoint must match to be resumed (threads and progress do not)."""
    p = model.get_params()
    # epochs may grow: a resumed fit trains on from the checkpoint's epoch.
    for key in ("num_threads", "show_progress", "backend", "random_state", "epochs"):
        p.pop(key, None)
    return p


def _new_history() -> dict[str, Any]:
    return {"loss": [], "train_rmse": [], "val_rmse": [], "seconds": [], "kernel_seconds": [],
            "layout_seconds": 0.0}  # fmt: skip


def _write_manifest(ckpt: Path, meta: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".dsgd.", suffix=".tmp", dir=ckpt)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, ckpt / MANIFEST)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_manifest(ckpt: Path, spec: dict[str, Any], random_state: Any):
    """``(epoch, history, learning_rate, seed)`` to resume from, or None for a fresh fit."""
    path = ckpt / MANIFEST
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable DSGD checkpoint ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a DSGD checkpoint")
    # A checkpoint of a random_state=None fit has its own seed; any other field must match.
    keys = [k for k in spec if k != "seed" or random_state is not None]
    diff = [k for k in keys if meta.get(k) != spec[k]]
    if diff:
        raise ValueError(
            f"{ckpt} holds the checkpoint of another fit (it differs in {diff}); use an empty "
            "checkpoint_dir or the same data, parameters and n_blocks"
        )
    epoch = meta.get("epoch")
    if not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"{path}: field 'epoch' is not valid")
    return epoch, meta["history"], float(meta["learning_rate"]), int(meta["seed"])


def _per_worker_max(got: list[tuple[float, float]], owner: list[str]) -> float:
    per: dict[str, float] = {}
    for (_, sec), w in zip(got, owner):
        per[w] = per.get(w, 0.0) + sec
    return max(per.values())


def _raise_errors(client: Any, futs: list[Any]) -> None:
    for f in futs:
        if f.status == "error":
            f.result()


def _closed(client: Any, exc: BaseException) -> None:
    if client.status != "running":
        raise RuntimeError(
            f"the Dask client closed during fit (status {client.status!r}); the estimator is "
            "unchanged"
        ) from exc


def _assemble(U: list[T.Factors], V: list[T.Factors], mu: float, rating_range):
    from recfast.models.mf import _State

    def cat(blocks: list[T.Factors], field: str) -> np.ndarray | None:
        parts = [getattr(b, field) for b in blocks]
        return None if parts[0] is None else np.concatenate(parts)

    return _State(cat(U, "factors"), cat(V, "factors"), cat(U, "bias"), cat(V, "bias"), mu,
                  rating_range)  # fmt: skip


def _numpy_kind() -> Any:
    from recfast._kinds import NUMPY

    return NUMPY
