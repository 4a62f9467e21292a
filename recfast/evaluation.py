"""Splits and ranking metrics for recommenders, over the native top-k.

Metrics are exact: every item the user has not trained on is ranked (no sampled negatives;
sampled metrics disagree with the exact ones, Krichene & Rendle 2020). Any model works: a
recfast or implicit model (its ``user_factors``/``item_factors``, plus ``item_bias_`` when it
has one), a ``(user_factors, item_factors[, item_bias])`` tuple, or a callable
``scores(user_ids) -> (len(user_ids), n_items)`` (models that are not factor models, e.g. an
autoencoder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast._backends import select
from recfast._kernel_args import TopkArgs
from recfast._kinds import NUMPY
from recfast._threads import resolve_num_threads

__all__ = ["leave_k_out_split", "ranking_metrics_at_k", "train_test_split"]


def _csr(ratings: Any, name: str = "ratings") -> Any:
    import scipy.sparse as sp

    if not sp.issparse(ratings):
        raise TypeError(f"{name} must be a scipy.sparse matrix, got {type(ratings).__name__}")
    csr = sp.csr_matrix(ratings, copy=True)
    csr.sum_duplicates()
    return csr


def _rng(random_state: Any) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else (
        np.random.default_rng(random_state))  # fmt: skip


def _split_by_rank(csr: Any, rank: np.ndarray, n_test: np.ndarray) -> tuple[Any, Any]:
    """Entries whose within-row rank is below the row's ``n_test`` go to the test matrix."""
    import scipy.sparse as sp

    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    is_test = rank < n_test[rows]
    coo = csr.tocoo()
    make = lambda m: sp.csr_matrix(  # noqa: E731
        (coo.data[m], (coo.row[m], coo.col[m])), shape=csr.shape, dtype=csr.dtype
    )
    return make(~is_test), make(is_test)


def _within_row_rank(csr: Any, keys: np.ndarray) -> np.ndarray:
    """Rank of each stored entry within its row by ascending ``keys``."""
    rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
    order = np.lexsort((keys, rows))
    rank = np.empty(len(keys), np.int64)
    rank[order] = np.arange(len(keys)) - csr.indptr[rows[order]]
    return rank


def train_test_split(
    ratings: Any, test_fraction: float = 0.2, random_state: Any = None
) -> tuple[Any, Any]:
    """Split each user's interactions at random: ``round(test_fraction * n_u)`` of user ``u``'s
    ``n_u`` entries go to the test matrix, at most ``n_u - 1`` (every user with an interaction
    keeps one in train). Returns ``(train, test)`` CSR matrices of the input's shape, disjoint,
    summing to the input (duplicates summed first)."""
    csr = _csr(ratings)
    f = check.scalar("test_fraction", test_fraction, low=0.0, high=1.0)
    n = np.diff(csr.indptr)
    n_test = np.minimum(np.round(f * n).astype(np.int64), np.maximum(n - 1, 0))
    keys = _rng(random_state).random(csr.nnz)
    return _split_by_rank(csr, _within_row_rank(csr, keys), n_test)


def leave_k_out_split(
    ratings: Any,
    k: int = 1,
    by: str = "random",
    timestamps: Any = None,
    random_state: Any = None,
) -> tuple[Any, Any]:
    """Hold out ``k`` interactions per user (users with ``<= k`` keep all of them in train).

    ``by="random"``: ``k`` at random; ``by="time"``: the ``k`` latest, by ``timestamps`` (a
    scipy.sparse matrix with the same stored entries as ``ratings``; ties broken at random).
    Returns ``(train, test)`` CSR matrices.
    """
    csr = _csr(ratings)
    k = check.positive_int("k", k)
    if by not in ("random", "time"):
        raise ValueError(f"by must be 'random' or 'time', got {by!r}")
    n = np.diff(csr.indptr)
    n_test = np.where(n > k, k, 0)
    noise = _rng(random_state).random(csr.nnz)
    if by == "random":
        return _split_by_rank(csr, _within_row_rank(csr, noise), n_test)
    if timestamps is None:
        raise ValueError("by='time' needs timestamps (a sparse matrix shaped like ratings)")
    ts = _csr(timestamps, "timestamps")
    if (
        ts.shape != csr.shape
        or ts.nnz != csr.nnz
        or not (np.array_equal(ts.indptr, csr.indptr) and np.array_equal(ts.indices, csr.indices))
    ):
        raise ValueError("timestamps must have the same stored entries as ratings")
    t = ts.data.astype(np.float64)
    # Latest first: rank by descending time, random among equal times.
    order_key = np.lexsort((noise, -t))
    key = np.empty(csr.nnz)
    key[order_key] = np.arange(csr.nnz)
    return _split_by_rank(csr, _within_row_rank(csr, key), n_test)


def _factors(model: Any) -> tuple[Any, ...] | Callable[[np.ndarray], np.ndarray]:
    if isinstance(model, tuple):
        if len(model) not in (2, 3):
            raise TypeError("a model tuple must be (user_factors, item_factors[, item_bias])")
        return tuple(None if a is None else np.asarray(a) for a in model) + (
            (None,) if len(model) == 2 else ()
        )
    for u, v in (("user_factors_", "item_factors_"), ("user_factors", "item_factors")):
        U, V = getattr(model, u, None), getattr(model, v, None)
        if U is not None and V is not None:
            if hasattr(U, "to_numpy"):  # implicit's GPU matrices
                U, V = U.to_numpy(), V.to_numpy()
            b = getattr(model, "item_bias_", None)
            return np.asarray(U), np.asarray(V), None if b is None else np.asarray(b)
    if callable(model):
        return model
    raise TypeError(
        "model must have user_factors/item_factors, be a (user_factors, item_factors[, "
        f"item_bias]) tuple, or a callable scores(user_ids); got {type(model).__name__}"
    )


def ranking_metrics_at_k(
    model: Any,
    train: Any,
    test: Any,
    K: int = 10,
    *,
    per_user: bool = False,
    auc: bool = True,
    batch_size: int = 2048,
    num_threads: int | None = None,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Ranking metrics at ``K`` of ``model``, over the users with at least one test item.

    For user ``u``, ``R_u`` are the top-``K`` items over all items not in ``train[u]`` (ties
    to the lower id), ``T_u`` the items of ``test[u]``, ``hit_r = [R_u[r] in T_u]`` and
    ``m_u = min(K, |T_u|)``:

    * ``precision``: ``sum_r hit_r / K``, averaged over users (the textbook P@K);
    * ``precision_min``: ``sum_u sum_r hit_r / sum_u m_u``, implicit's "precision" (a
      micro-average dividing by ``min(K, |T_u|)``, so a user with 2 test items can score 1);
    * ``recall``: ``sum_r hit_r / |T_u|``;
    * ``ndcg``: ``sum_r hit_r / log2(r + 2)`` divided by its best value
      ``sum_{r < m_u} 1 / log2(r + 2)``;
    * ``map``: ``sum_r hit_r * precision@(r + 1) / m_u`` (implicit's MAP@K);
    * ``mrr``: ``1 / (r + 1)`` for the first hit ``r < K``, else 0;
    * ``auc`` (when ``auc=True``): over the full ranking, the fraction of (test item, negative)
      pairs ordered right, negatives being the items in neither ``train[u]`` nor ``test[u]``,
      ties counting one half;
    * ``coverage``: the fraction of items that appear in some ``R_u``; ``users``: how many
      users were evaluated.

    Parameters
    ----------
    model : factor model, ``(U, V[, item_bias])`` tuple or callable ``scores(user_ids)``
    train, test : scipy.sparse (n_users, n_items); stored entries are interactions
    per_user : bool
        Also return ``"per_user"``: a dict of (users,) arrays per metric and ``"user_ids"``,
        for significance tests.

    Factor models run on the native top-k (multithreaded); a callable's scores are ranked
    with NumPy.
    """
    train, test = _csr(train, "train"), _csr(test, "test")
    if train.shape != test.shape:
        raise ValueError(
            f"train and test must have the same shape, got {train.shape} and {test.shape}"
        )
    K = check.positive_int("K", K)
    n_users, n_items = train.shape
    src = _factors(model)
    if not callable(src):
        U, V, b = src
        if U.shape[0] < n_users or V.shape[0] != n_items:
            raise ValueError(
                f"the model has {U.shape[0]} users and {V.shape[0]} items; train has shape "
                f"{train.shape}"
            )
        U = np.ascontiguousarray(U)
        V = np.ascontiguousarray(V, U.dtype)
        b = None if b is None else np.ascontiguousarray(b, U.dtype)
        kernel = select("topk", None, NUMPY)[1]
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    nt = resolve_num_threads(num_threads)
    disc = 1.0 / np.log2(np.arange(K) + 2.0)
    idcg = np.cumsum(disc)
    cols = {m: [] for m in ("precision", "recall", "ndcg", "map", "mrr", "auc", "hits", "m_u")}
    seen_items = np.zeros(n_items, bool)
    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(users), desc="ranking_metrics_at_k", unit="user")
    for lo in range(0, len(users), batch_size):
        ub = users[lo : lo + batch_size]
        tr, te = train[ub], test[ub]
        scores = None
        if callable(src):
            scores = np.asarray(src(ub), dtype=np.float64)
            if scores.shape != (len(ub), n_items):
                raise ValueError(
                    f"scores(user_ids) must return shape {(len(ub), n_items)}, got {scores.shape}"
                )
            top = _numpy_topk(scores, tr, K)
        else:
            top = np.empty((len(ub), K), np.int64)
            ts = np.empty((len(ub), K), U.dtype)
            kernel(TopkArgs(U[ub], V, b, None, None, tr.indptr.astype(np.int64), tr.indices, K,
                            top, ts, nt))  # fmt: skip
        n_t = np.diff(te.indptr)
        rows = np.repeat(np.arange(len(ub)), n_t)
        test_keys = rows * n_items + te.indices
        valid = top >= 0
        keys = np.arange(len(ub))[:, None] * n_items + np.where(valid, top, 0)
        hit = valid & np.isin(keys, test_keys)
        seen_items[top[valid]] = True
        h = hit.sum(axis=1)
        m_u = np.minimum(K, n_t)
        cols["hits"].append(h)
        cols["m_u"].append(m_u)
        cols["precision"].append(h / K)
        cols["recall"].append(h / n_t)
        cols["ndcg"].append((hit * disc).sum(axis=1) / idcg[m_u - 1])
        prec_at = np.cumsum(hit, axis=1) / np.arange(1, K + 1)
        cols["map"].append((prec_at * hit).sum(axis=1) / m_u)
        first = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
        cols["mrr"].append(np.where(first >= 0, 1.0 / np.maximum(first + 1, 1), 0.0))
        if auc:
            if scores is None:
                scores = U[ub] @ V.T
                if b is not None:
                    scores = scores + b
            cols["auc"].append(_auc(scores, tr, te))
        if bar is not None:
            bar.update(len(ub))
    if bar is not None:
        bar.close()
    cat = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cols.items()}
    n = len(users)
    mean = lambda a: float(a.mean()) if n else float("nan")  # noqa: E731
    out: dict[str, Any] = {
        "precision": mean(cat["precision"]),
        "precision_min": float(cat["hits"].sum() / cat["m_u"].sum()) if n else float("nan"),
        "recall": mean(cat["recall"]),
        "ndcg": mean(cat["ndcg"]),
        "map": mean(cat["map"]),
        "mrr": mean(cat["mrr"]),
        "coverage": float(seen_items.mean()) if n_items else float("nan"),
        "users": n,
    }
    if auc:
        out["auc"] = mean(cat["auc"])
    if per_user:
        out["per_user"] = {k: cat[k] for k in ("precision", "recall", "ndcg", "map", "mrr")}
        if auc:
            out["per_user"]["auc"] = cat["auc"]
        out["per_user"]["user_ids"] = users
    return out


def _numpy_topk(scores: np.ndarray, tr: Any, K: int) -> np.ndarray:
    s = scores.copy()
    s[np.repeat(np.arange(s.shape[0]), np.diff(tr.indptr)), tr.indices] = -np.inf
    s[np.isnan(s)] = -np.inf
    n_items = s.shape[1]
    kk = min(K, n_items)
    part = (
        np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        if kk < n_items
        else np.tile(np.arange(n_items), (s.shape[0], 1))
    )
    ps = np.take_along_axis(s, part, axis=1)
    idx = np.empty_like(part)
    for r in range(s.shape[0]):  # best first, ties to the lower id
        o = np.lexsort((part[r], -ps[r]))
        idx[r] = part[r][o]
    out = np.full((s.shape[0], K), -1, np.int64)
    out[:, :kk] = idx
    out[:, :kk][np.take_along_axis(s, idx, axis=1) == -np.inf] = -1
    return out


def _auc(scores: np.ndarray, tr: Any, te: Any) -> np.ndarray:
    """Per-row AUC of the test items against the items in neither train nor test."""
    m, n_items = scores.shape
    out = np.empty(m)
    for r in range(m):
        s = scores[r]
        t_items = te.indices[te.indptr[r] : te.indptr[r + 1]]
        mask = np.ones(n_items, bool)
        mask[tr.indices[tr.indptr[r] : tr.indptr[r + 1]]] = False
        mask[t_items] = False
        neg = np.sort(s[mask])
        if neg.shape[0] == 0:
            out[r] = np.nan
            continue
        st = s[t_items]
        lt = np.searchsorted(neg, st, side="left")
        le = np.searchsorted(neg, st, side="right")
        out[r] = float((lt + 0.5 * (le - lt)).sum()) / (len(t_items) * neg.shape[0])
    return out
