"""``MatrixFactorization``: biased matrix factorization ("SVD", Funk/Koren) trained with SGD.

Recipe (the defaults; mean test RMSE 0.9096 over ml-100k u1..u5, see BENCHMARKS.md): mean-centred
ratings, user/item biases, 64 factors initialised N(0, 0.05^2), LIBMF's row-wise AdaGrad
(``solver="adagrad"``) with learning rate 0.1 decayed by 0.95 per epoch, L2 0.1 on factors and
biases, 30 epochs, predictions clipped to the training ratings' range. The ratings are laid out once per
fit in FPSGD blocks (``recfast.mf_block_layout``) and then streamed every epoch: the schedule is
parallel, cache-friendly and deterministic for a given ``random_state`` whatever the thread count.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast._backends import select
from recfast._threads import resolve_num_threads
from recfast.mf import DivergenceError, raise_if_diverged, recommend_topk

FORMAT_VERSION = 1
_SOLVERS = ("adagrad", "sgd")
_DEFAULT_LR = {"adagrad": 0.1, "sgd": 0.01}


def as_triplet(
    ratings: Any, name: str = "ratings"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int] | None]:
    """``(rows, cols, values, shape or None)`` from scipy.sparse, a recfast Ratings, or a tuple.

    Every stored entry of a sparse matrix is a rating (explicit zeros included).
    """
    import scipy.sparse as sp

    if sp.issparse(ratings):
        coo = ratings.tocoo()
        return coo.row, coo.col, coo.data, tuple(coo.shape)
    if hasattr(ratings, "as_tuple") and hasattr(ratings, "shape"):  # recfast.datasets.Ratings
        r, c, v = ratings.as_tuple()
        return r, c, v, tuple(ratings.shape)
    if isinstance(ratings, tuple) and len(ratings) == 3:
        r, c, v = (np.asarray(x) for x in ratings)
        return r, c, v, None
    raise TypeError(
        f"{name} must be a scipy.sparse matrix, a recfast.datasets.Ratings or a (rows, cols, values) "
        f"tuple, got {type(ratings).__name__}"
    )


class MatrixFactorization:
    """Biased matrix factorization ``r_ui ~ mu + b_u + b_i + p_u . q_i`` trained by SGD.

    Parameters
    ----------
    factors : int
        Latent dimension k.
    epochs : int
        Passes over the ratings.
    learning_rate : float, optional
        Step size; default 0.1 for ``solver="adagrad"`` (divided per row by the root of the
        accumulated squared gradient) and 0.01 for ``solver="sgd"``.
    regularization : float
        L2 weight on the factors.
    bias_regularization : float, optional
        L2 weight on the biases (default: ``regularization``).
    biases : bool
        Learn per-user and per-item biases (the global mean is always used).
    init_std : float
        Standard deviation of the normal initial factors.
    learning_rate_decay : float
        The step size is multiplied by this after every epoch.
    solver : {"adagrad", "sgd"}
        LIBMF's row-wise AdaGrad, or plain SGD with the decayed learning rate.
    n_blocks : int, optional
        Side of the FPSGD block grid (default: by cache size and thread count).
    random_state : int, optional
        Seed of the initialisation; one seed gives one result for every thread count.
    num_threads : int, optional
        Threads for the kernel (default :func:`recfast.get_num_threads`).
    backend : str, optional
        Kernel backend (default: the fastest live one).
    dtype : float32 or float64
    show_progress : bool
        Draw a tqdm progress bar with the current loss.
    """

    def __init__(
        self,
        factors: int = 64,
        epochs: int = 30,
        learning_rate: float | None = None,
        regularization: float = 0.1,
        bias_regularization: float | None = None,
        biases: bool = True,
        init_std: float = 0.05,
        learning_rate_decay: float = 0.95,
        solver: str = "adagrad",
        n_blocks: int | None = None,
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        dtype: Any = np.float32,
        show_progress: bool = False,
    ) -> None:
        self.factors = factors
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.biases = biases
        self.init_std = init_std
        self.learning_rate_decay = learning_rate_decay
        self.solver = solver
        self.n_blocks = n_blocks
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.dtype = dtype
        self.show_progress = show_progress

    # -- hyper-parameters -------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        keys = (
            "factors",
            "epochs",
            "learning_rate",
            "regularization",
            "bias_regularization",
            "biases",
            "init_std",
            "learning_rate_decay",
            "solver",
            "n_blocks",
            "random_state",
            "num_threads",
            "backend",
            "show_progress",
        )
        p = {k: getattr(self, k) for k in keys}
        p["dtype"] = np.dtype(self.dtype).name
        return p

    def _checked_params(self) -> dict[str, Any]:
        dtype = np.dtype(self.dtype)
        if dtype not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        lr = _DEFAULT_LR[self.solver] if self.learning_rate is None else self.learning_rate
        reg = check.scalar("regularization", self.regularization, low=0.0)
        return dict(
            dtype=dtype,
            k=check.positive_int("factors", self.factors),
            epochs=check.positive_int("epochs", self.epochs) if self.epochs != 0 else 0,
            lr=check.scalar("learning_rate", lr, low=0.0, low_open=True),
            reg=reg,
            breg=reg
            if self.bias_regularization is None
            else check.scalar("bias_regularization", self.bias_regularization, low=0.0),
            init_std=check.scalar("init_std", self.init_std, low=0.0),
            decay=check.scalar(
                "learning_rate_decay", self.learning_rate_decay, low=0.0, low_open=True, high=1.0
            ),
            nt=resolve_num_threads(self.num_threads),
        )

    def _block_count(self, nnz: int, n_items: int, k: int, itemsize: int, nt: int) -> int:
        if self.n_blocks is not None:
            return check.positive_int("n_blocks", self.n_blocks)
        # Enough blocks that an item block's rows sit in L2 (~256 KiB) and threads balance, few
        # enough that a block keeps a few hundred ratings. With <= 4 threads the count does not
        # depend on the thread count, so results match across thread counts.
        nb = max(8, 2 * nt, math.ceil(n_items * k * itemsize / (256 * 1024)))
        return int(max(1, min(nb, math.isqrt(max(nnz // 256, 1)), 4096)))

    # -- data -----------------------------------------------------------------------------
    def _triplet(self, ratings: Any, name: str, dtype: np.dtype, shape: tuple[int, int] | None):
        r, c, v, s = as_triplet(ratings, name)
        v = np.asarray(v)
        if v.dtype.kind not in "fiu":
            raise TypeError(f"{name} values must be numbers, got dtype {v.dtype}")
        if v.dtype.kind == "f" and v.dtype not in check.FLOAT_DTYPES:
            raise TypeError(f"{name} values must be float32 or float64, got dtype {v.dtype}")
        v = v.astype(dtype, copy=False)  # the estimator converts deliberately; kernels never do
        if shape is None:
            if s is None:
                r, c = check.index_array("rows", r), check.index_array("cols", c)
                s = (int(r.max()) + 1 if r.size else 0, int(c.max()) + 1 if c.size else 0)
            shape = s
        elif s is not None and (s[0] > shape[0] or s[1] > shape[1]):
            raise ValueError(f"{name} has shape {s}, larger than the fitted {shape}")
        r, c, v = check.ratings_triplet(r, c, v, shape[0], shape[1], dtype)
        return r, c, v, shape

    # -- fit ------------------------------------------------------------------------------
    def fit(
        self, ratings: Any, validation: Any = None, early_stopping: int | None = None
    ) -> MatrixFactorization:
        """Train on ``ratings``.

        Parameters
        ----------
        ratings : scipy.sparse (n_users, n_items), recfast.datasets.Ratings, or
            ``(rows, cols, values)``; every stored entry is a rating.
        validation : same forms, optional
            Ratings for the per-epoch validation RMSE in ``history_["val_rmse"]``.
        early_stopping : int, optional
            With ``validation``: stop after this many epochs without a better validation RMSE
            and keep the best epoch's model.

        Sets ``user_factors_ (n_users, k)``, ``item_factors_ (n_items, k)``, ``user_bias_``,
        ``item_bias_``, ``global_mean_`` and ``history_`` (per-epoch ``loss`` = training sum of
        squared errors, ``train_rmse``, ``val_rmse``, ``seconds``; ``layout_seconds``).
        """
        p = self._checked_params()
        dtype, k = p["dtype"], p["k"]
        rows, cols, values, shape = self._triplet(ratings, "ratings", dtype, None)
        val = None
        if validation is not None:
            val = self._triplet(validation, "validation", dtype, shape)[:3]
        if early_stopping is not None:
            early_stopping = check.positive_int("early_stopping", early_stopping)
            if val is None:
                raise ValueError("early_stopping needs validation ratings")
        n_users, n_items = shape
        nnz = len(values)
        rng = np.random.default_rng(self.random_state)
        self.user_factors_ = (rng.standard_normal((n_users, k)) * p["init_std"]).astype(dtype)
        self.item_factors_ = (rng.standard_normal((n_items, k)) * p["init_std"]).astype(dtype)
        self.user_bias_ = np.zeros(n_users, dtype) if self.biases else None
        self.item_bias_ = np.zeros(n_items, dtype) if self.biases else None
        self.global_mean_ = float(values.mean(dtype=np.float64)) if nnz else 0.0
        self.rating_range_ = (
            (float(values.min()), float(values.max())) if nnz else (-np.inf, np.inf)
        )
        ada = p["lr"] if self.solver == "adagrad" else None
        ua = np.ones(n_users, dtype) if ada else None
        ia = np.ones(n_items, dtype) if ada else None
        self.history_: dict[str, Any] = {
            "loss": [],
            "train_rmse": [],
            "val_rmse": [],
            "seconds": [],
            "layout_seconds": 0.0,
        }
        if nnz == 0 or p["epochs"] == 0:
            return self

        # Lay the ratings out once: FPSGD blocks, users ascending within a block.
        nt = p["nt"]
        t0 = time.perf_counter()
        nb = self._block_count(nnz, n_items, k, dtype.itemsize, nt)
        _, layout = select("mf_block_layout", self.backend)
        rows, cols, values, block_ptr = layout(
            rows, cols, values, n_users, n_items, nb, int(rng.integers(2**63)), nt
        )
        self.history_["layout_seconds"] = time.perf_counter() - t0
        self.n_blocks_ = nb

        _, kernel = select("sgd_mf_epoch", self.backend)
        best = (np.inf, -1, None)
        lr = p["lr"]
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=p["epochs"], desc="MatrixFactorization", unit="epoch")
        try:
            for epoch in range(p["epochs"]):
                t = time.perf_counter()
                sse = kernel(
                    rows,
                    cols,
                    values,
                    self.user_factors_,
                    self.item_factors_,
                    self.user_bias_,
                    self.item_bias_,
                    ua,
                    ia,
                    None,
                    block_ptr,
                    nb,
                    learning_rate=lr,
                    regularization=p["reg"],
                    bias_regularization=p["breg"],
                    global_mean=self.global_mean_,
                    num_threads=nt,
                )
                try:
                    raise_if_diverged(
                        sse,
                        self.user_factors_,
                        self.item_factors_,
                        self.user_bias_,
                        self.item_bias_,
                        where=f" in epoch {epoch + 1} of {p['epochs']}",
                    )
                except DivergenceError as exc:
                    raise DivergenceError(f"{exc} (learning_rate={lr:g})") from None
                self.history_["seconds"].append(time.perf_counter() - t)
                self.history_["loss"].append(float(sse))
                self.history_["train_rmse"].append(math.sqrt(sse / nnz))
                if val is not None:
                    rmse = self._rmse(*val)
                    self.history_["val_rmse"].append(rmse)
                    if early_stopping is not None:
                        if rmse < best[0]:
                            best = (rmse, epoch, self._state())
                        elif epoch - best[1] >= early_stopping:
                            break
                if bar is not None:
                    post = {"loss": f"{sse / nnz:.4f}"}
                    if val is not None:
                        post["val_rmse"] = f"{self.history_['val_rmse'][-1]:.4f}"
                    bar.set_postfix(post)
                    bar.update(1)
                lr *= p["decay"]
        finally:
            if bar is not None:
                bar.close()
        if early_stopping is not None and best[2] is not None:
            self._set_state(best[2])
            self.history_["best_epoch"] = best[1] + 1
        return self

    def _state(self) -> tuple:
        return tuple(
            None if a is None else a.copy()
            for a in (self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_)
        )

    def _set_state(self, s: tuple) -> None:
        self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_ = s

    # -- use ------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise RuntimeError("this MatrixFactorization is not fitted yet; call fit() first")

    def _predict_idx(self, users: np.ndarray, items: np.ndarray, clip: bool) -> np.ndarray:
        U, V = self.user_factors_, self.item_factors_
        pred = np.einsum("ij,ij->i", U[users], V[items]) + U.dtype.type(self.global_mean_)
        if self.user_bias_ is not None:
            pred += self.user_bias_[users] + self.item_bias_[items]
        if clip:
            np.clip(pred, *self.rating_range_, out=pred)
        return pred

    def predict(self, users: Any, items: Any, *, clip: bool = True) -> np.ndarray:
        """Predicted ratings for the pairs ``(users[j], items[j])``, shape ``(n,)``.

        ``clip`` limits predictions to the range of the training ratings.
        """
        self._check_fitted()
        users = check.index_array("users", np.atleast_1d(users), self.user_factors_.shape[0])
        items = check.index_array("items", np.atleast_1d(items), self.item_factors_.shape[0])
        if users.shape != items.shape:
            raise ValueError(
                f"users and items must have the same length, got {len(users)} and {len(items)}"
            )
        return self._predict_idx(users, items, clip)

    def _rmse(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> float:
        if len(values) == 0:
            return float("nan")
        err = self._predict_idx(rows, cols, True).astype(np.float64) - values
        return float(np.sqrt(np.mean(err * err)))

    def score(self, ratings: Any) -> float:
        """Root mean squared error of the (clipped) predictions on ``ratings``."""
        self._check_fitted()
        shape = (self.user_factors_.shape[0], self.item_factors_.shape[0])
        r, c, v, _ = self._triplet(ratings, "ratings", self.user_factors_.dtype, shape)
        return self._rmse(r, c, v)

    def recommend(
        self, users: Any, n: int = 10, exclude: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items for each user by predicted rating.

        Parameters
        ----------
        users : int or (m,) int
        exclude : scipy.sparse (n_users, n_items), optional
            Items to leave out per user (e.g. the training matrix: already-seen items).

        Returns
        -------
        items : (m, n) int64, best first (``-1`` when fewer than ``n`` are left)
        scores : (m, n) predicted ratings (unclipped; ``-inf`` beside ``-1``)
        """
        self._check_fitted()
        offset = np.full(self.user_factors_.shape[0], self.global_mean_, self.user_factors_.dtype)
        if self.user_bias_ is not None:
            offset += self.user_bias_
        return recommend_topk(
            self.user_factors_,
            self.item_factors_,
            users,
            n,
            item_bias=self.item_bias_,
            offset=offset,
            exclude=exclude,
        )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the fitted model to ``path`` (.npz, format version 1); :meth:`load` restores it."""
        self._check_fitted()
        arrays = {"user_factors": self.user_factors_, "item_factors": self.item_factors_}
        if self.user_bias_ is not None:
            arrays.update(user_bias=self.user_bias_, item_bias=self.item_bias_)
        meta = {
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "global_mean": self.global_mean_,
            "rating_range": list(self.rating_range_),
            "history": self.history_,
        }
        with open(path, "wb") as f:  # a file object: numpy would append ".npz" to a bare name
            np.savez(f, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)

    @classmethod
    def load(cls, path: str | Path) -> MatrixFactorization:
        """Load a model written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            if "meta" not in z.files:
                raise ValueError(f"{path} is not a recfast MatrixFactorization file")
            meta = json.loads(z["meta"].tobytes().decode())
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"{path} has format version {meta.get('format_version')}; this "
                    f"recfast reads version {FORMAT_VERSION}"
                )
            arrays = {k: z[k] for k in z.files if k != "meta"}
        params = meta["params"]
        params["dtype"] = np.dtype(params["dtype"]).type
        model = cls(**params)
        model.user_factors_ = arrays["user_factors"]
        model.item_factors_ = arrays["item_factors"]
        model.user_bias_ = arrays.get("user_bias")
        model.item_bias_ = arrays.get("item_bias")
        model.global_mean_ = float(meta["global_mean"])
        model.rating_range_ = tuple(meta["rating_range"])
        model.history_ = meta["history"]
        return model
