"""``MultDAE`` (Liang, Krishnan, Hoffman & Jebara, "Variational Autoencoders for Collaborative
Filtering", WWW 2018; the denoising variant): an autoencoder over users' implicit-feedback rows
with a multinomial likelihood, on recfast's dense kernels.

For a user's row of interaction counts ``x`` (n_items,)::

    x~ = dropout(x / ||x||_2)                     (training only)
    h  = tanh(W1 x~ + b1)                         W1 (hidden, n_items), b1 (hidden,)
    z  = W2 h + b2                                W2 (n_items, hidden), b2 (n_items,)
    L  = -sum_i x_i log softmax(z)_i              (averaged over the mini-batch)
         + l2/2 (||W1||^2 + ||W2||^2)             (per mini-batch)

The scores of a user are ``z``: a new user, or a user with new events, is folded in by one
forward pass over the row, so recommendation is real-time by construction.

Recipe (the defaults; ml-100k per-user 80/20 split, see BENCHMARKS.md): hidden 600, dropout 0.5,
l2 0.02 (the paper's weight decay lambda = 0.01 in its ``lambda ||W||^2`` form), Adam with
learning rate 1e-3, batch 100 users, 40 epochs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast.dense import dense, dense_backward
from recfast.implicit import topk
from recfast.models import _io
from recfast.models._adam import Adam
from recfast.models._interactions import as_user_items, checked_rows, requested_rows
from recfast.models._kinded import Kinded, kinded

__all__ = ["MultDAE"]

FORMAT_VERSION = 1
_PARAMS = ("hidden", "dropout", "epochs", "learning_rate", "l2", "batch_size", "random_state",
           "num_threads", "backend", "show_progress")  # fmt: skip


class MultDAE(Kinded):
    """Denoising autoencoder with a multinomial likelihood for implicit feedback.

    Parameters
    ----------
    hidden : int
        Width of the tanh hidden layer.
    dropout : float in [0, 1)
        Share of each input row's entries dropped in training (the denoising).
    epochs : int
    learning_rate : float
        Adam's step size.
    l2 : float
        Weight of ``1/2 (||W1||^2 + ||W2||^2)`` in each mini-batch's loss.
    batch_size : int
        Users per step.
    dtype : float32 or float64
    random_state : int, optional
    num_threads, backend : passed to every recfast op
    show_progress : bool
        A tqdm bar over the epochs.

    Attributes (after fit)
    ----------------------
    W1_ (hidden, n_items), b1_ (hidden,), W2_ (n_items, hidden), b2_ (n_items,): NumPy arrays.
    history_ : dict with per-epoch "loss" (the mean multinomial negative log-likelihood per user
    plus the L2 term) and "seconds".
    """

    W1_ = kinded("W1", "encoder weights (hidden, n_items)")
    b1_ = kinded("b1", "encoder bias (hidden,)")
    W2_ = kinded("W2", "decoder weights (n_items, hidden)")
    b2_ = kinded("b2", "decoder bias (n_items,)")

    def __init__(
        self,
        hidden: int = 600,
        dropout: float = 0.5,
        epochs: int = 40,
        learning_rate: float = 1e-3,
        l2: float = 0.02,
        batch_size: int = 100,
        dtype: Any = np.float32,
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        show_progress: bool = False,
    ) -> None:
        self.hidden = hidden
        self.dropout = dropout
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.l2 = l2
        self.batch_size = batch_size
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.show_progress = show_progress

    def get_params(self) -> dict[str, Any]:
        p = {k: getattr(self, k) for k in _PARAMS}
        p["dtype"] = np.dtype(self.dtype).name
        return p

    def _check_params(self) -> dict[str, Any]:
        dtype = np.dtype(self.dtype)
        if dtype not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        drop = check.scalar("dropout", self.dropout, low=0.0)
        if drop >= 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        return dict(
            hidden=check.positive_int("hidden", self.hidden),
            dropout=drop,
            epochs=check.positive_int("epochs", self.epochs),
            lr=check.scalar("learning_rate", self.learning_rate, low=0.0, low_open=True),
            l2=check.scalar("l2", self.l2, low=0.0),
            batch=check.positive_int("batch_size", self.batch_size),
            dtype=dtype,
        )

    @property
    def _ops(self) -> dict[str, Any]:
        return {"num_threads": self.num_threads, "backend": self.backend}

    # -- fit ----------------------------------------------------------------------------------
    def fit(self, user_items: Any) -> MultDAE:
        """Train on ``user_items``, a scipy.sparse (n_users, n_items) matrix of non-negative
        interaction strengths (counts; duplicates summed). Users without interactions are
        skipped. A fit that raises leaves the model as it was."""
        p = self._check_params()
        X = as_user_items(user_items).astype(p["dtype"])
        if X.nnz == 0:
            raise ValueError("user_items has no interactions: fit needs at least one")
        with self._transaction():
            self._fit(X, p)
        return self

    def _fit(self, X, p) -> None:
        dt = p["dtype"]
        n_users, n_items = X.shape
        self.n_items_ = n_items
        rng = np.random.default_rng(self.random_state)
        H = p["hidden"]
        # Glorot-uniform weights, as the paper's code initializes them.
        lim1 = np.sqrt(6.0 / (H + n_items))
        W1 = rng.uniform(-lim1, lim1, (H, n_items)).astype(dt)
        W2 = rng.uniform(-lim1, lim1, (n_items, H)).astype(dt)
        b1 = np.zeros(H, dt)
        b2 = np.zeros(n_items, dt)
        params = [W1, b1, W2, b2]
        adam = Adam(params, p["lr"])
        users = np.flatnonzero(np.diff(X.indptr) > 0)
        keep = 1.0 - p["dropout"]
        l2, ops = p["l2"], self._ops
        history: dict[str, list[float]] = {"loss": [], "seconds": []}
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=p["epochs"], desc="MultDAE", unit="epoch")
        # Overflow in a diverging step is caught below as a non-finite loss or weight.
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for epoch in range(p["epochs"]):
                    t0 = time.perf_counter()
                    order = rng.permutation(users)
                    total, batches = 0.0, 0
                    for lo in range(0, order.size, p["batch"]):
                        sub = X[order[lo : lo + p["batch"]]]
                        Xb = sub.toarray()
                        sub = _normalized(sub)
                        if keep < 1.0:  # inverted dropout: the kept entries are scaled by 1/keep
                            sub.data *= (rng.random(sub.nnz) < keep) / dt.type(keep)
                        Xin = sub
                        # L2 goes through Adam's fused pass (the same gradient, a pass fewer).
                        nll, grads = _loss_and_grads(params, Xb, Xin, 0.0, ops)
                        adam.step(grads, decay=(l2, 0.0, l2, 0.0))
                        total += nll + 0.5 * l2 * (float(np.sum(W1 * W1)) + float(np.sum(W2 * W2)))
                        batches += 1
                    loss = total / max(batches, 1)
                    if not np.isfinite(loss) or not all(np.isfinite(a.sum()) for a in params):
                        raise FloatingPointError(
                            f"MultDAE diverged in epoch {epoch + 1} (lower learning_rate)"
                        )
                    history["loss"].append(loss)
                    history["seconds"].append(time.perf_counter() - t0)
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.4f}")
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        self.W1_, self.b1_, self.W2_, self.b2_ = W1, b1, W2, b2
        self.history_ = history

    # -- use ----------------------------------------------------------------------------------
    def _fitted(self) -> None:
        if "_arrays" not in self.__dict__ or "W1" not in self._arrays:
            raise RuntimeError("this MultDAE is not fitted yet; call fit() first")

    def scores(self, user_items: Any) -> np.ndarray:
        """Scores ``z`` (n_users, n_items) of each row of ``user_items`` (scipy.sparse,
        (n_users, n_items)): one forward pass, no dropout."""
        self._fitted()
        return self._scores(self._rows_of(user_items))

    def _rows_of(self, user_items: Any):
        """``user_items`` checked (checked_rows: no copy of a canonical CSR) and as wide as the
        catalogue."""
        import scipy.sparse as sp

        if (
            sp.issparse(user_items)
            and user_items.ndim == 2
            and user_items.shape[1] != self.n_items_
        ):
            raise ValueError(
                f"user_items has {user_items.shape[1]} columns but the model was fitted on "
                f"{self.n_items_} items"
            )
        return checked_rows(user_items, "user_items")

    def _codes(self, X) -> np.ndarray:
        """The hidden layer ``h`` (n_rows, hidden) of each row of the CSR ``X``."""
        W1, b1 = self._host("W1"), self._host("b1")
        return np.tanh(np.asarray(_normalized(X) @ W1.T) + b1).astype(W1.dtype, copy=False)

    def _scores(self, X) -> np.ndarray:
        ops = self._ops
        W2, b2 = self._host("W2"), self._host("b2")
        out = np.empty((X.shape[0], self.n_items_), W2.dtype)
        for lo in range(0, X.shape[0], 1024):
            dense(self._codes(X[lo : lo + 1024]), W2, b2, out=out[lo : lo + 1024], **ops)
        return out

    def recommend(
        self,
        userid: Any,
        user_items: Any,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Any = None,
        items: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` best items for one user or an array of users, folding each in from its row
        of ``user_items`` (scipy.sparse: exactly one row per requested user, as implicit >= 0.5
        takes it, or else the whole user x item matrix with rows indexed by ``userid``; a user
        unseen in training is just another row).

        ``filter_already_liked_items`` leaves out each user's items in ``user_items``;
        ``filter_items`` (item ids) are never recommended; ``items`` (item ids), when given, are
        the only candidates. Returns ``(ids, scores)``: (N,) for one user, (m, N) for m users,
        best first; where fewer than ``N`` items are left, ids are -1 and scores -inf."""
        self._fitted()
        scalar = np.ndim(userid) == 0
        ids = check.index_array("userid", np.atleast_1d(np.asarray(userid)))
        if (ids < 0).any():
            raise ValueError("userid must be >= 0")
        n = check.positive_int("N", N)
        rows = requested_rows(ids, user_items, 0, self.n_items_)
        if filter_items is not None:  # named as the caller knows it (topk calls it "banned")
            filter_items = check.index_array("filter_items", np.atleast_1d(filter_items),
                                             self.n_items_)  # fmt: skip
        # The scores are h W2^T + b2: a factor model over the codes, ranked by the native top-k
        # (no (users x items) score matrix).
        top, sc = topk(self._codes(rows), self._host("W2"), n, item_bias=self._host("b2"),
                       items=items, banned=filter_items,
                       exclude=rows if filter_already_liked_items else None,
                       num_threads=self.num_threads, backend=self.backend)  # fmt: skip
        return (top[0], sc[0]) if scalar else (top, sc)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model (.npz, format version 1, atomically); :meth:`load` reads it."""
        self._fitted()
        arrays = {k: self._host(k) for k in ("W1", "b1", "W2", "b2")}
        meta = {"model": "MultDAE", "format_version": FORMAT_VERSION,
                "params": self.get_params(), "n_items": self.n_items_,
                "history": self.history_}  # fmt: skip
        _io.save_npz(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> MultDAE:
        """Load a model written by :meth:`save`; every field is checked."""
        meta, arrays = _io.load_npz(path, "MultDAE", FORMAT_VERSION)
        params = _io.meta_value(path, meta, "params", (dict,))
        try:
            model = cls(**params)
            p = model._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'params' is not valid ({exc})") from None
        ni = _io.meta_value(path, meta, "n_items", (int,))
        H, dt = p["hidden"], p["dtype"]
        f = _io.field
        model.W1_ = f(path, arrays, "W1", (H, ni), dtype=dt)
        model.b1_ = f(path, arrays, "b1", (H,), dtype=dt)
        model.W2_ = f(path, arrays, "W2", (ni, H), dtype=dt)
        model.b2_ = f(path, arrays, "b2", (ni,), dtype=dt)
        model.n_items_ = ni
        model.history_ = _io.meta_value(path, meta, "history", (dict,))
        return model


def _loss_and_grads(params, X, Xin, l2, ops):
    """The mini-batch's mean multinomial negative log-likelihood of ``X`` (m, n_items), dense,
    given the (dropped-out, normalized) input ``Xin`` (scipy.sparse CSR, same shape), and the
    gradients of it plus the L2 term, in the order of ``params`` = (W1, b1, W2, b2).

    The encoder's products take ``Xin`` sparse (a user's row holds a few percent of the items,
    so ``Xin W1^T`` and ``dL/dpre^T Xin`` cost nnz * hidden instead of m * n_items * hidden);
    the decoder, dense in both directions, runs on recfast's dense kernels."""
    W1, b1, W2, b2 = params
    dt = W1.dtype.type
    m = X.shape[0]
    h = np.tanh(np.asarray(Xin @ W1.T) + b1)
    z = dense(h, W2, b2, **ops)
    logp = _log_softmax(z)
    nll = -float(np.sum(X * logp)) / m
    # d(-sum x log softmax(z))/dz = softmax(z) * sum(x) - x, per row
    gz = np.exp(logp) * X.sum(axis=1, keepdims=True) - X
    gz /= dt(m)
    gh, gW2, gb2 = dense_backward(gz, h, W2, **ops)
    gpre = gh * (1 - h * h)
    gW1 = np.asarray(Xin.T @ gpre).T
    gb1 = gpre.sum(axis=0)
    if l2:
        gW1 += dt(l2) * W1
        gW2 += dt(l2) * W2
    return nll, (gW1, gb1, gW2, gb2)


def _normalized(X):
    """A copy of the CSR matrix ``X`` with each row scaled to unit L2 norm (empty rows stay
    empty)."""
    X = X.copy()
    counts = np.diff(X.indptr)
    row = np.repeat(np.arange(X.shape[0]), counts)
    norms = np.sqrt(np.bincount(row, X.data.astype(np.float64) ** 2, minlength=X.shape[0]))
    X.data /= norms[row].astype(X.dtype)
    return X


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))
