"""``AutoRec`` (Sedhain et al., WWW 2015): an autoencoder over rating vectors, on recfast's dense
kernels.

Item-based (I-AutoRec, the default): each item's vector of ratings by the n_users users, with
zeros where unobserved, is encoded and decoded::

    h_i = sigmoid(W r_i + b)       W (hidden, n_users), b (hidden,)
    r^_i = V h_i + c               V (n_users, hidden), c (n_users,)

and the loss counts observed entries only, plus L2 on the weights::

    L = 1/2 sum_{(u, i) observed} (r_ui - r^_i[u])^2 + l2/2 (||W||^2 + ||V||^2)

The prediction for (u, i) is ``r^_i[u]``, clipped to the training ratings' range. User-based
(``based="user"``) swaps the roles of users and items. Training: mini-batches of rows
(``recfast.dense`` forward, ``recfast.dense_backward`` backward) and Adam.

Recipe (the defaults; ml-100k u1..u5, see BENCHMARKS.md): hidden 500, l2 100, Adam with learning
rate 1e-3, batch 64 rows, 25 epochs (with ``validation``, the weights of the best validation epoch
are kept).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast.dense import dense, dense_backward
from recfast.mf import recommend_topk
from recfast.models import _io
from recfast.models._adam import Adam
from recfast.models._kinded import Kinded, host, kinded
from recfast.models.mf import as_triplet

__all__ = ["AutoRec"]

FORMAT_VERSION = 1
_PARAMS = ("hidden", "based", "epochs", "learning_rate", "l2", "batch_size", "init_std",
           "rating_scale", "random_state", "num_threads", "backend", "show_progress")  # fmt: skip


class AutoRec(Kinded):
    """Item- or user-based AutoRec for explicit ratings.

    Parameters
    ----------
    hidden : int
        Width of the sigmoid hidden layer.
    based : {"item", "user"}
        I-AutoRec (rows are items, encoded over their users' ratings) or U-AutoRec.
    epochs : int
        Passes over the rows.
    learning_rate : float
        Adam's step size.
    l2 : float
        Weight of ``1/2 (||W||^2 + ||V||^2)`` in the loss (per epoch: each mini-batch carries its
        share).
    batch_size : int
        Rows per step.
    init_std : float
        Standard deviation of the normal initial weights.
    rating_scale : (low, high), optional
        The declared range of the ratings: ``fit`` refuses ratings outside it and predictions
        are clipped to it. Without it, the training ratings' own range is used for clipping.
    dtype : float32 or float64
    random_state : int, optional
    num_threads, backend : passed to every recfast op
    show_progress : bool
        A tqdm bar over the epochs.

    Attributes (after fit), in the kind of the ratings' arrays
    ----------------------------------------------------------
    W_ (hidden, n_cols), b_ (hidden,), V_ (n_cols, hidden), c_ (n_cols,): the encoder and decoder;
    n_cols is n_users for I-AutoRec.
    global_mean_, user_bias_ (n_users,), item_bias_ (n_items,): the baseline that users or items
    without training ratings get.
    history_ : dict with per-epoch "loss" (the training objective), "train_rmse", "val_rmse",
    "seconds"; "best_epoch" when validation picked one.
    """

    W_ = kinded("W")
    b_ = kinded("b")
    V_ = kinded("V")
    c_ = kinded("c")
    user_bias_ = kinded("user_bias")
    item_bias_ = kinded("item_bias")

    def __init__(
        self,
        hidden: int = 500,
        based: str = "item",
        epochs: int = 25,
        learning_rate: float = 1e-3,
        l2: float = 100.0,
        batch_size: int = 64,
        init_std: float = 0.03,
        rating_scale: tuple[float, float] | None = None,
        dtype: Any = np.float32,
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        show_progress: bool = False,
    ) -> None:
        self.hidden = hidden
        self.based = based
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.l2 = l2
        self.batch_size = batch_size
        self.init_std = init_std
        self.rating_scale = rating_scale
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.show_progress = show_progress

    def get_params(self) -> dict[str, Any]:
        p = {k: getattr(self, k) for k in _PARAMS}
        p["dtype"] = np.dtype(self.dtype).name
        if p["rating_scale"] is not None:
            p["rating_scale"] = [float(v) for v in p["rating_scale"]]
        return p

    def _check_params(self) -> dict[str, Any]:
        if self.based not in ("item", "user"):
            raise ValueError(f"based must be 'item' or 'user', got {self.based!r}")
        dtype = np.dtype(self.dtype)
        if dtype not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        scale = self.rating_scale
        if scale is not None:
            try:
                lo, hi = (float(v) for v in scale)
            except (TypeError, ValueError):
                raise TypeError(f"rating_scale must be a (low, high) pair, got {scale!r}") from None
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"rating_scale must be finite with low < high, got {scale!r}")
            scale = (lo, hi)
        return dict(
            scale=scale,
            hidden=check.positive_int("hidden", self.hidden),
            epochs=check.positive_int("epochs", self.epochs),
            lr=check.scalar("learning_rate", self.learning_rate, low=0.0, low_open=True),
            l2=check.scalar("l2", self.l2, low=0.0),
            batch=check.positive_int("batch_size", self.batch_size),
            std=check.scalar("init_std", self.init_std, low=0.0, low_open=True),
            dtype=dtype,
        )

    # -- data ---------------------------------------------------------------------------------
    def _triplet(self, ratings: Any, name: str, shape: tuple[int, int] | None):
        r, c, v, s = as_triplet(ratings, name)
        v = np.asarray(v)
        if v.dtype.kind not in "fiu":
            raise TypeError(f"{name} values must be numbers, got dtype {v.dtype}")
        v = v.astype(np.float64)
        if s is None:
            r, c = check.index_array("rows", r), check.index_array("cols", c)
            s = (int(r.max()) + 1 if r.size else 0, int(c.max()) + 1 if c.size else 0)
        if shape is not None:  # predict-time input may hold unknown ids: range checks are later
            r, c = check.index_array("rows", r), check.index_array("cols", c)
            if r.shape != c.shape or c.shape != v.shape:
                raise ValueError(f"{name}: rows, cols and values must have the same length")
            if v.size and not np.isfinite(v).all():
                raise ValueError(f"{name} values must be finite")
            return r, c, v
        r, c, v = check.ratings_triplet(r, c, v, s[0], s[1])
        return r, c, v, s

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, ratings: Any, validation: Any = None) -> AutoRec:
        """Train on ``ratings`` (scipy.sparse users x items, a recfast.datasets.Ratings, or
        ``(rows, cols, values)``). With ``validation`` (same forms), the model of the epoch with
        the best validation RMSE is kept. A fit that raises leaves the model as it was."""
        kind = (
            kinds.of(ratings, ("rows", "cols", "values"))
            if isinstance(ratings, tuple) and len(ratings) == 3
            else kinds.NUMPY
        )
        if not kind.host:
            raise TypeError(f"AutoRec trains on the host; got {kind.name} ratings")
        p = self._check_params()
        rows, cols, values, shape = self._triplet(ratings, "ratings", None)
        if values.size == 0:
            raise ValueError("ratings is empty: fit needs at least one rating")
        if p["scale"] is not None and ((values < p["scale"][0]) | (values > p["scale"][1])).any():
            bad = values[(values < p["scale"][0]) | (values > p["scale"][1])][0]
            raise ValueError(
                f"ratings holds {bad:g}, outside the declared rating_scale {p['scale']}"
            )
        val = None if validation is None else self._triplet(validation, "validation", shape)
        with self._transaction():
            self._fit(rows, cols, values, shape, val, p)
            self._kind = kind
        return self

    def _fit(self, rows, cols, values, shape, val, p) -> None:
        import scipy.sparse as sp

        dt = p["dtype"]
        n_users, n_items = shape
        self.n_users_, self.n_items_ = n_users, n_items
        self.rating_range_ = p["scale"] or (float(values.min()), float(values.max()))
        self._baseline(rows, cols, values, n_users, n_items)
        # Rows of the autoencoder: items (I-AutoRec) or users; columns: the other side.
        r_idx, c_idx, n_rows, n_cols = (
            (cols, rows, n_items, n_users)
            if self.based == "item"
            else (rows, cols, n_users, n_items)
        )
        R = sp.csr_matrix((values.astype(dt), (r_idx, c_idx)), shape=(n_rows, n_cols))
        R.sum_duplicates()
        R.sort_indices()
        self._R = R
        rng = np.random.default_rng(self.random_state)
        H, std = p["hidden"], p["std"]
        W = (rng.standard_normal((H, n_cols)) * std).astype(dt)
        b = np.zeros(H, dt)
        V = (rng.standard_normal((n_cols, H)) * std).astype(dt)
        c = np.full(n_cols, self.global_mean_, dt)
        params = [W, b, V, c]
        adam = Adam(params, p["lr"])
        ops = {"num_threads": self.num_threads, "backend": self.backend}
        history: dict[str, Any] = {"loss": [], "train_rmse": [], "val_rmse": [], "seconds": []}
        best: tuple[float, int, list[np.ndarray] | None] = (math.inf, -1, None)
        l2 = p["l2"]
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=p["epochs"], desc="AutoRec", unit="epoch")
        try:
            for epoch in range(p["epochs"]):
                t0 = time.perf_counter()
                order = rng.permutation(n_rows)
                sse = 0.0
                for lo in range(0, n_rows, p["batch"]):
                    idx = order[lo : lo + p["batch"]]
                    sub = R[idx]
                    # The encoder multiplies the sparse rows (a row holds a few percent of the
                    # entries: nnz * hidden instead of rows * n_cols * hidden); the decoder,
                    # dense both ways, runs on recfast's dense kernels.
                    Hh = _sigmoid(np.asarray(sub @ W.T) + b)
                    Y = dense(Hh, V, c, **ops)
                    # Error on the observed entries only (a zero of X is "unobserved").
                    E = np.zeros_like(Y)
                    ri = np.repeat(np.arange(len(idx)), np.diff(sub.indptr))
                    err = Y[ri, sub.indices] - sub.data
                    E[ri, sub.indices] = err
                    sse += float(err @ err)
                    gH, gV, gc = dense_backward(E, Hh, V, **ops)
                    gpre = gH * Hh * (1 - Hh)
                    gW = np.asarray(sub.T @ gpre).T
                    gb = gpre.sum(axis=0)
                    share = len(idx) / n_rows  # this batch's share of the epoch's L2 term
                    adam.step((gW, gb, gV, gc), decay=(l2 * share, 0.0, l2 * share, 0.0))
                nnz = R.nnz
                obj = 0.5 * sse + 0.5 * l2 * (float(np.sum(W * W)) + float(np.sum(V * V)))
                if not np.isfinite(obj) or not all(np.isfinite(a.sum()) for a in params):
                    raise FloatingPointError(
                        f"AutoRec diverged in epoch {epoch + 1} (lower learning_rate)"
                    )
                history["loss"].append(obj)
                history["train_rmse"].append(math.sqrt(sse / nnz))
                history["seconds"].append(time.perf_counter() - t0)
                self._set(W, b, V, c)
                if val is not None:
                    rmse = self._rmse(*val)
                    history["val_rmse"].append(rmse)
                    if rmse < best[0]:
                        best = (rmse, epoch, [a.copy() for a in params])
                if bar is not None:
                    post = {"mse": f"{sse / nnz:.4f}"}
                    if val is not None:
                        post["val_rmse"] = f"{history['val_rmse'][-1]:.4f}"
                    bar.set_postfix(post)
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        if best[2] is not None:
            self._set(*best[2])
            history["best_epoch"] = best[1] + 1
        self.history_ = history

    def _set(self, W, b, V, c) -> None:
        self.W_, self.b_, self.V_, self.c_ = W, b, V, c
        self._codes = None  # the encoded rows, computed on first use

    def _baseline(self, rows, cols, values, n_users, n_items, reg: float = 10.0) -> None:
        """mu + b_u + b_i by two regularized passes (the prediction of unknown rows)."""
        mu = float(values.mean())
        bi = np.bincount(cols, values - mu, n_items) / (np.bincount(cols, None, n_items) + reg)
        res = values - mu - bi[cols]
        bu = np.bincount(rows, res, n_users) / (np.bincount(rows, None, n_users) + reg)
        self.global_mean_ = mu
        dt = np.dtype(self.dtype)
        self.user_bias_, self.item_bias_ = bu.astype(dt), bi.astype(dt)

    # -- use ----------------------------------------------------------------------------------
    def _fitted(self) -> None:
        if "_arrays" not in self.__dict__ or "W" not in self._arrays:
            raise RuntimeError("this AutoRec is not fitted yet; call fit() first")

    def _row_codes(self) -> np.ndarray:
        """h of every row (n_rows, hidden), computed once per fitted model."""
        if getattr(self, "_codes", None) is None:
            W, b = self._host("W"), self._host("b")
            codes = np.empty((self._R.shape[0], W.shape[0]), W.dtype)
            for lo in range(0, self._R.shape[0], 1024):
                codes[lo : lo + 1024] = _sigmoid(np.asarray(self._R[lo : lo + 1024] @ W.T) + b)
            self._codes = codes
        return self._codes

    def _predict_pairs(self, users: np.ndarray, items: np.ndarray, clip: bool) -> np.ndarray:
        known = (users < self.n_users_) & (items < self.n_items_)
        if self.based == "item":
            rws, cls_ = items, users
        else:
            rws, cls_ = users, items
        out = np.empty(users.shape, np.float64)
        mu, bu, bi = self.global_mean_, self._host("user_bias"), self._host("item_bias")
        # A row with no training rating encodes to the bias alone: give it the baseline instead.
        has = np.zeros(users.shape, bool)
        if known.any():
            counts = np.diff(self._R.indptr)
            has[known] = counts[rws[known]] > 0
        k = np.flatnonzero(known & has)
        if k.size:
            codes = self._row_codes()
            V, c = self._host("V"), self._host("c")
            out[k] = np.einsum("ij,ij->i", V[cls_[k]], codes[rws[k]]) + c[cls_[k]]
        rest = np.flatnonzero(~(known & has))
        if rest.size:
            u, i = users[rest], items[rest]
            out[rest] = (
                mu
                + np.where(u < self.n_users_, bu[np.minimum(u, self.n_users_ - 1)], 0.0)
                + np.where(i < self.n_items_, bi[np.minimum(i, self.n_items_ - 1)], 0.0)
            )
        if clip:
            np.clip(out, *self.rating_range_, out=out)
        return out.astype(np.dtype(self.dtype))

    def predict(
        self, users: Any, items: Any, *, clip: bool = True, unknown: str = "baseline"
    ) -> Any:
        """Predicted ratings (n,) for the pairs ``(users[j], items[j])``.

        Users or items outside the training data (an id >= the fitted count, or a row with no
        training rating) get the baseline ``global_mean_ + user_bias_ + item_bias_`` (the known
        parts); ``unknown="raise"`` makes them a ValueError instead."""
        self._fitted()
        users = check.index_array("users", np.atleast_1d(host(users)))
        items = check.index_array("items", np.atleast_1d(host(items)))
        if users.shape != items.shape:
            raise ValueError(
                f"users and items must have the same length, got {len(users)} and {len(items)}"
            )
        if unknown not in ("baseline", "raise"):
            raise ValueError(f"unknown must be 'baseline' or 'raise', got {unknown!r}")
        if (users < 0).any() or (items < 0).any():
            raise ValueError("users and items must be >= 0")
        if unknown == "raise":
            check.index_array("users", users, self.n_users_)
            check.index_array("items", items, self.n_items_)
        return self._show(self._predict_pairs(users, items, clip))

    def _rmse(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> float:
        if values.size == 0:
            return float("nan")
        err = self._predict_pairs(rows, cols, True).astype(np.float64) - values
        return float(np.sqrt(np.mean(err * err)))

    def score(self, ratings: Any) -> float:
        """RMSE of the (clipped) predictions on ``ratings``."""
        self._fitted()
        return self._rmse(*self._triplet(ratings, "ratings", (self.n_users_, self.n_items_)))

    def recommend(self, users: Any, n: int = 10, exclude: Any = None) -> tuple[Any, Any]:
        """Top-``n`` items per user by predicted rating (``exclude``: scipy.sparse users x items
        of items to leave out, e.g. the training matrix). Returns (items, scores) (m, n)."""
        self._fitted()
        users = check.index_array("users", np.atleast_1d(host(users)), self.n_users_)
        V, c = self._host("V"), self._host("c")
        codes = self._row_codes()
        if self.based == "item":  # score(u, i) = V[u] . h_i + c[u]
            items, scores = recommend_topk(V, codes, users, n, offset=c, exclude=exclude)
        else:  # score(u, i) = h_u . V[i] + c[i]
            items, scores = recommend_topk(codes, V, users, n, item_bias=c, exclude=exclude)
        return self._show(items), self._show(scores)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model (.npz, format version 1, atomically); :meth:`load` reads it."""
        self._fitted()
        R = self._R
        arrays = {k: self._host(k) for k in ("W", "b", "V", "c", "user_bias", "item_bias")}
        arrays.update(R_data=R.data, R_indices=R.indices.astype(np.int64),
                      R_indptr=R.indptr.astype(np.int64))  # fmt: skip
        meta = {"model": "AutoRec", "format_version": FORMAT_VERSION, "params": self.get_params(),
                "n_users": self.n_users_, "n_items": self.n_items_,
                "global_mean": self.global_mean_, "rating_range": list(self.rating_range_),
                "history": self.history_}  # fmt: skip
        _io.save_npz(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path, *, array_kind: str = "numpy") -> AutoRec:
        """Load a model written by :meth:`save`; every field is checked."""
        import scipy.sparse as sp

        target = kinds.kind_named(array_kind)
        if not target.host:
            raise ValueError(f"array_kind={array_kind!r}: AutoRec lives on the host")
        meta, arrays = _io.load_npz(path, "AutoRec", FORMAT_VERSION)
        params = _io.meta_value(path, meta, "params", (dict,))
        try:
            model = cls(**params)
            p = model._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'params' is not valid ({exc})") from None
        nu = _io.meta_value(path, meta, "n_users", (int,))
        ni = _io.meta_value(path, meta, "n_items", (int,))
        n_rows, n_cols = (ni, nu) if model.based == "item" else (nu, ni)
        H, dt = p["hidden"], p["dtype"]
        f = _io.field
        W = f(path, arrays, "W", (H, n_cols), dtype=dt)
        b = f(path, arrays, "b", (H,), dtype=dt)
        V = f(path, arrays, "V", (n_cols, H), dtype=dt)
        c = f(path, arrays, "c", (n_cols,), dtype=dt)
        bu = f(path, arrays, "user_bias", (nu,), dtype=dt)
        bi = f(path, arrays, "item_bias", (ni,), dtype=dt)
        data = f(path, arrays, "R_data", (None,), dtype=dt)
        ind, ptr = arrays.get("R_indices"), arrays.get("R_indptr")
        if (
            ind is None or ptr is None or ind.dtype != np.int64 or ptr.dtype != np.int64
            or ptr.shape != (n_rows + 1,) or ind.shape != data.shape or ptr[0] != 0
            or ptr[-1] != data.size or (np.diff(ptr) < 0).any()
            or (ind.size and (ind.min() < 0 or ind.max() >= n_cols))
        ):  # fmt: skip
            raise ValueError(f"{path}: the training matrix (R_indices, R_indptr) is not valid")
        model.n_users_, model.n_items_ = nu, ni
        model._R = sp.csr_matrix((data, ind, ptr), shape=(n_rows, n_cols))
        model.global_mean_ = float(_io.meta_value(path, meta, "global_mean", (int, float)))
        rr = _io.meta_value(path, meta, "rating_range", (list,))
        model.rating_range_ = (float(rr[0]), float(rr[1]))
        model._set(W, b, V, c)
        model.user_bias_, model.item_bias_ = bu, bi
        model.history_ = meta.get("history", {})
        model._kind = target
        return model


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) in place, without overflow warnings for large negative x."""
    with np.errstate(over="ignore"):
        np.negative(x, out=x)
        np.exp(x, out=x)
    x += 1
    np.reciprocal(x, out=x)
    return x
