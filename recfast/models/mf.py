"""``MatrixFactorization``: biased matrix factorization ("SVD", Funk/Koren) trained with SGD.

Recipe (the defaults; mean test RMSE 0.9096 over ml-100k u1..u5, see BENCHMARKS.md): mean-centred
ratings, user/item biases, 64 factors initialised N(0, 0.05^2), LIBMF's row-wise AdaGrad
(``solver="adagrad"``) with learning rate 0.1 decayed by 0.95 per epoch, L2 0.1 on factors and
biases, 30 epochs, predictions clipped to the training ratings' range. The ratings are laid out once per
fit in FPSGD blocks (``recfast.mf_block_layout``) and then streamed every epoch: the schedule is
parallel, cache-friendly and deterministic for a given ``random_state`` whatever the thread count.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import select
from recfast._kinds import NUMPY
from recfast._threads import resolve_num_threads
from recfast.mf import DivergenceError, mf_block_layout, prepare_sgd_mf_epoch, recommend_topk
from recfast.models import _io
from recfast.models._kinded import Kinded, host_copy, kinded

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
        r, c, v = (host_copy(x) for x in ratings)
        return np.asarray(r), np.asarray(c), np.asarray(v), None
    raise TypeError(
        f"{name} must be a scipy.sparse matrix, a recfast.datasets.Ratings or a (rows, cols, values) "
        f"tuple, got {type(ratings).__name__}"
    )


class MatrixFactorization(Kinded):
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
        The arithmetic's dtype (and the biases').
    factor_dtype : None or float16
        Storage of the factor matrices: None keeps ``dtype``; float16 (with float32 ``dtype``)
        halves their memory, every update widening the two rows to float32 and rounding them
        back (backends cpu, cuda, cupy, reference; predictions are computed in float32).
    show_progress : bool
        Draw a tqdm progress bar with the current loss.

    Attributes (after fit) are in the array kind of the ratings: NumPy arrays for scipy.sparse or
    NumPy input, PyTorch tensors (sharing memory with the model) for a triplet of tensors.
    """

    user_factors_ = kinded("user_factors", "(n_users, k) user factors")
    item_factors_ = kinded("item_factors", "(n_items, k) item factors")
    user_bias_ = kinded("user_bias", "(n_users,) user biases, or None")
    item_bias_ = kinded("item_bias", "(n_items,) item biases, or None")

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
        factor_dtype: Any = None,
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
        self.factor_dtype = factor_dtype
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
        p["factor_dtype"] = None if self.factor_dtype is None else np.dtype(self.factor_dtype).name
        return p

    def _checked_params(self) -> dict[str, Any]:
        dtype = np.dtype(self.dtype)
        if dtype not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if self.solver not in _SOLVERS:
            raise ValueError(f"solver must be one of {_SOLVERS}, got {self.solver!r}")
        lr = _DEFAULT_LR[self.solver] if self.learning_rate is None else self.learning_rate
        reg = check.scalar("regularization", self.regularization, low=0.0)
        fdt = dtype
        if self.factor_dtype is not None:
            try:
                fdt = np.dtype(self.factor_dtype)
            except TypeError:
                raise TypeError(
                    f"factor_dtype must be None or float16, got {self.factor_dtype!r}"
                ) from None
            if fdt != dtype and (fdt != np.float16 or dtype != np.float32):
                raise TypeError(
                    f"factor_dtype must be None or float16 (with dtype float32), got {fdt} "
                    f"with dtype {dtype}"
                )
        return dict(
            dtype=dtype,
            factor_dtype=fdt,
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
        r, c, v = (host_copy(x) for x in (r, c, v))
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
        r, c, v = check.ratings_triplet(r, c, v, shape[0], shape[1])
        return r, c, v, shape

    # -- fit ------------------------------------------------------------------------------
    def fit(
        self,
        ratings: Any,
        validation: Any = None,
        early_stopping: int | None = None,
        *,
        client: Any = None,
        columns: tuple[str, str, str] = ("user", "item", "rating"),
        checkpoint_dir: str | Path | None = None,
        timeout: float | None = None,
    ) -> MatrixFactorization:
        """Train on ``ratings``.

        Parameters
        ----------
        ratings : scipy.sparse (n_users, n_items), recfast.datasets.Ratings, or
            ``(rows, cols, values)``; every stored entry is a rating. A tuple of CuPy arrays or
            PyTorch CUDA tensors trains on the device (Hogwild epochs over ratings shuffled on
            the device once; validation must then be device arrays of the same kind), and the
            fitted attributes come back as arrays on that device.
        validation : same forms, optional
            Ratings for the per-epoch validation RMSE in ``history_["val_rmse"]``.
        early_stopping : int, optional
            With ``validation``: stop after this many epochs without a better validation RMSE
            and keep the best epoch's model.
        client : dask.distributed.Client, optional
            Fit by DSGD on the client's cluster (``recfast.distributed``); ``ratings`` may then
            also be a ``dask.dataframe`` with integer id columns named by ``columns``
            ``(user, item, rating)``. ``checkpoint_dir`` (shared storage) keeps the factors of
            every epoch and resumes an interrupted fit; ``timeout`` bounds each epoch's wait in
            seconds. Validation and early stopping are single-machine only.

        Sets ``user_factors_ (n_users, k)``, ``item_factors_ (n_items, k)``, ``user_bias_``,
        ``item_bias_``, ``global_mean_`` and ``history_`` (per-epoch ``loss`` = training sum of
        squared errors, ``train_rmse``, ``val_rmse``, ``seconds``; ``layout_seconds``). The
        progress bar shows the epoch's mean squared error, ``loss / nnz``, as ``mse``.
        A fit that raises leaves the estimator as it was.
        """
        if client is not None:
            if validation is not None or early_stopping is not None:
                raise ValueError("validation and early_stopping are not supported with client=")
            if self._checked_params()["factor_dtype"] != np.dtype(self.dtype):
                raise ValueError("factor_dtype=float16 is not supported with client= yet")
            from recfast.distributed import fit_dsgd

            return fit_dsgd(self, ratings, client, columns=columns,
                            checkpoint_dir=checkpoint_dir, timeout=timeout)  # fmt: skip
        if checkpoint_dir is not None or timeout is not None:
            raise ValueError("checkpoint_dir and timeout apply to a distributed fit (client=)")
        if type(ratings).__module__.startswith(("dask.dataframe", "dask_expr")):
            raise TypeError("a dask dataframe of ratings needs client= (a dask.distributed.Client)")
        kind = _ratings_kind(ratings)
        if not kind.host:
            select("sgd_mf_epoch", self.backend, kind)  # says which GPU backend is missing
            from recfast.models import _mf_device

            st, history = _mf_device.fit(self, ratings, kind, validation, early_stopping)
            dev = _mf_device._device_of(st.U)
            self._commit(st.to_host(kind), kind)
            self._device = dev
            self.history_ = history
            self.__dict__.pop("n_blocks_", None)
            return self
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
        for what, rows_ in (("user", n_users), ("item", n_items)):
            check.allocation(
                f"the {what} factors", (rows_, k), p["factor_dtype"].itemsize,
                f"ratings has {what} ids up to {rows_ - 1}",
            )  # fmt: skip
        if nnz == 0:
            raise ValueError("ratings is empty: fit needs at least one rating")
        # Everything is built in locals and assigned at the end: a fit that raises (bad input,
        # divergence, KeyboardInterrupt) leaves the estimator as it was before the call.
        rng = np.random.default_rng(self.random_state)
        st = _State(
            (rng.standard_normal((n_users, k)) * p["init_std"]).astype(p["factor_dtype"]),
            (rng.standard_normal((n_items, k)) * p["init_std"]).astype(p["factor_dtype"]),
            np.zeros(n_users, dtype) if self.biases else None,
            np.zeros(n_items, dtype) if self.biases else None,
            float(values.mean(dtype=np.float64)),
            (float(values.min()), float(values.max())),
        )
        ada = p["lr"] if self.solver == "adagrad" else None
        ua = np.ones(n_users, dtype) if ada else None
        ia = np.ones(n_items, dtype) if ada else None
        history: dict[str, Any] = {
            "loss": [],
            "train_rmse": [],
            "val_rmse": [],
            "seconds": [],
            "layout_seconds": 0.0,
        }
        nb = None
        if p["epochs"]:
            nb = self._train(st, rows, cols, values, val, ua, ia, p, history, early_stopping, rng)
        self._commit(st, kind)
        self.history_ = history
        if nb is not None:
            self.n_blocks_ = nb
        return self

    def _train(self, st, rows, cols, values, val, ua, ia, p, history, early_stopping, rng):
        """The epochs, on ``st``'s arrays in place; returns the block count."""
        n_users, n_items = st.U.shape[0], st.V.shape[0]
        k, dtype, nnz = st.U.shape[1], st.U.dtype, len(values)  # the storage's itemsize counts
        # Lay the ratings out once: FPSGD blocks, users ascending within a block.
        nt = p["nt"]
        t0 = time.perf_counter()
        nb = self._block_count(nnz, n_items, k, dtype.itemsize, nt)
        # The layout's parallel pass gains ~1 ms below ~0.5M ratings, and with another process
        # on a core a second thread made it 3x slower (ml-100k: 15 vs 5 ms): one thread there.
        rows, cols, values, block_ptr = mf_block_layout(
            rows, cols, values, n_users, n_items, nb, seed=int(rng.integers(2**63)),
            num_threads=nt if nnz >= 1 << 19 else 1, backend=self.backend,
        )  # fmt: skip
        history["layout_seconds"] = time.perf_counter() - t0
        epoch_fn = prepare_sgd_mf_epoch(
            rows, cols, values, st.U, st.V, user_bias=st.ub, item_bias=st.ib,
            global_mean=st.mu, learning_rate=p["lr"], regularization=p["reg"],
            bias_regularization=p["breg"], user_accum=ua, item_accum=ia, block_ptr=block_ptr,
            n_blocks=nb, num_threads=nt, backend=self.backend,
        )  # fmt: skip
        self._run_epochs(epoch_fn, st, val, p, history, early_stopping, nnz, np)
        return nb

    def _run_epochs(self, epoch_fn, st, val, p, history, early_stopping, nnz, xp) -> None:
        """The epochs of a fit (host or device): ``epoch_fn`` updates ``st``'s arrays in place;
        per-epoch loss, RMSE and seconds go to ``history``; with ``early_stopping`` the best
        epoch's arrays are put back at the end."""
        best: tuple[float, int, _State | None] = (np.inf, -1, None)
        lr = p["lr"]
        bar = None
        if self.show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=p["epochs"], desc="MatrixFactorization", unit="epoch")
        try:
            for epoch in range(p["epochs"]):
                t = time.perf_counter()
                try:
                    sse = epoch_fn(lr, where=f" in epoch {epoch + 1} of {p['epochs']}")
                except DivergenceError as exc:
                    raise DivergenceError(f"{exc} (learning_rate={lr:g})") from None
                history["seconds"].append(time.perf_counter() - t)
                history["loss"].append(float(sse))
                history["train_rmse"].append(math.sqrt(sse / nnz))
                if val is not None:
                    rmse = _rmse(st, *val, xp=xp)
                    history["val_rmse"].append(rmse)
                    if early_stopping is not None:
                        if rmse < best[0]:
                            best = (rmse, epoch, st.copy(xp))
                        elif epoch - best[1] >= early_stopping:
                            break
                if bar is not None:
                    post = {"mse": f"{sse / nnz:.4f}"}
                    if val is not None:
                        post["val_rmse"] = f"{history['val_rmse'][-1]:.4f}"
                    bar.set_postfix(post)
                    bar.update(1)
                lr *= p["decay"]
        finally:
            if bar is not None:
                bar.close()
        if early_stopping is not None and best[2] is not None:
            b = best[2]
            st.U[...], st.V[...] = b.U, b.V
            if st.ub is not None:
                st.ub[...], st.ib[...] = b.ub, b.ib
            history["best_epoch"] = best[1] + 1

    def _commit(self, st: _State, kind: Any) -> None:
        self._kind = kind
        self.__dict__.pop("_device", None)
        self.user_factors_, self.item_factors_ = st.U, st.V
        self.user_bias_, self.item_bias_ = st.ub, st.ib
        self.global_mean_ = st.mu
        self.rating_range_ = st.rating_range

    def _fitted(self) -> _State:
        if "_arrays" not in self.__dict__ or "user_factors" not in self._arrays:
            raise RuntimeError("this MatrixFactorization is not fitted yet; call fit() first")
        a = self._arrays
        return _State(a["user_factors"], a["item_factors"], a.get("user_bias"),
                      a.get("item_bias"), self.global_mean_, self.rating_range_)  # fmt: skip

    def _check_fitted(self) -> None:
        self._fitted()

    # -- use ------------------------------------------------------------------------------
    def predict(
        self, users: Any, items: Any, *, clip: bool = True, unknown: str = "baseline"
    ) -> Any:
        """Predicted ratings for the pairs ``(users[j], items[j])``, shape ``(n,)``, in the
        fitted kind (NumPy or PyTorch).

        ``clip`` limits predictions to the range of the training ratings. A user or item id
        beyond the fitted ones (never seen in training) gets the baseline, as LIBMF and Surprise
        do: the global mean plus the known side's bias (the mean alone when both are unknown);
        ``unknown="raise"`` raises ``ValueError`` for such ids instead. Negative ids always
        raise.
        """
        st = self._fitted()
        if unknown not in ("baseline", "raise"):
            raise ValueError(f"unknown must be 'baseline' or 'raise', got {unknown!r}")
        cap = (2**62, 2**62) if unknown == "baseline" else (st.U.shape[0], st.V.shape[0])
        users = check.index_array("users", np.atleast_1d(host_copy(users)), cap[0])
        items = check.index_array("items", np.atleast_1d(host_copy(items)), cap[1])
        if users.shape != items.shape:
            raise ValueError(
                f"users and items must have the same length, got {len(users)} and {len(items)}"
            )
        ku, ki = users < st.U.shape[0], items < st.V.shape[0]
        if ku.all() and ki.all():
            return self._show(_predict_idx(st, users, items, clip))
        # The baseline for pairs with an unseen side; the full model for the others.
        both = ku & ki
        pred = np.full(users.shape, st.mu, _compute_dtype(st.U))
        if both.any():
            pred[both] = _predict_idx(st, users[both], items[both], False)
        if st.ub is not None:
            only_u, only_i = ku & ~ki, ki & ~ku
            pred[only_u] += st.ub[users[only_u]]
            pred[only_i] += st.ib[items[only_i]]
        if clip:
            np.clip(pred, *st.rating_range, out=pred)
        return self._show(pred)

    def partial_fit_users(self, userids: Any, ratings: Any) -> None:
        """Fold in new or changed users in real time, the items fixed: for each user, the exact
        regularized least-squares factors and bias ``(p_u, b_u)`` minimising
        ``sum_i (r_ui - mu - b_i - b_u - p_u . q_i)^2 + reg |p_u|^2 + bias_reg b_u^2`` over the
        user's ratings. ``ratings``: scipy.sparse (len(userids), n_items), row ``j`` the
        ratings of ``userids[j]``. Ids beyond the fitted users grow the model (rows in between
        get zero factors and biases, i.e. the baseline).
        """
        import scipy.sparse as sp

        st = self._fitted()
        users = check._as_int64(
            np, check.index_array("userids", np.atleast_1d(host_copy(userids)), 2**31)
        )
        if not sp.issparse(ratings):
            raise TypeError(f"ratings must be a scipy.sparse matrix, got {type(ratings).__name__}")
        if ratings.shape != (len(users), st.V.shape[0]):
            raise ValueError(
                f"ratings must have one row per user in userids and one column per item: shape "
                f"{(len(users), st.V.shape[0])}, got {ratings.shape}"
            )
        R = sp.csr_matrix(ratings, dtype=np.float64, copy=True)
        R.sum_duplicates()
        if R.nnz and not np.isfinite(R.data).all():
            raise ValueError("ratings must be finite")
        p = self._checked_params()
        k, biased = st.V.shape[1], st.ub is not None
        V = st.V.astype(np.float64)
        reg = np.full(k + biased, p["reg"])
        if biased:
            reg[-1] = p["breg"]
        out = np.zeros((len(users), k + biased))
        for j in range(len(users)):
            js = R.indices[R.indptr[j] : R.indptr[j + 1]]
            if len(js) == 0:
                continue
            F = V[js] if not biased else np.hstack([V[js], np.ones((len(js), 1))])
            t = R.data[R.indptr[j] : R.indptr[j + 1]] - st.mu
            if biased:
                t = t - st.ib[js]
            out[j] = np.linalg.solve(F.T @ F + np.diag(reg), F.T @ t)
        n = max(st.U.shape[0], int(users.max()) + 1) if len(users) else st.U.shape[0]
        grow = n - st.U.shape[0]
        U = np.concatenate([st.U, np.zeros((grow, k), st.U.dtype)])
        ub = None if st.ub is None else np.concatenate([st.ub, np.zeros(grow, st.U.dtype)])
        U[users] = out[:, :k]
        if biased:
            ub[users] = out[:, k]
        self.user_factors_, self.user_bias_ = U, ub

    def score(self, ratings: Any) -> float:
        """Root mean squared error of the (clipped) predictions on ``ratings``."""
        st = self._fitted()
        shape = (st.U.shape[0], st.V.shape[0])
        r, c, v, _ = self._triplet(ratings, "ratings", _compute_dtype(st.U), shape)
        return _rmse(st, r, c, v)

    def recommend(self, users: Any, n: int = 10, exclude: Any = None) -> tuple[Any, Any]:
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
        st = self._fitted()
        offset = np.full(st.U.shape[0], st.mu, _compute_dtype(st.U))
        if st.ub is not None:
            offset += st.ub
        U, V = st.U, st.V
        if U.dtype == np.float16:  # the top-k kernel scores in float32: widened copies
            U, V = U.astype(np.float32), V.astype(np.float32)
        items, scores = recommend_topk(
            U, V, host_copy(users), n, item_bias=st.ib, offset=offset, exclude=exclude
        )
        return self._show(items), self._show(scores)

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save the fitted model to ``path`` (.npz, format version 1, NumPy arrays whatever the
        fitted kind); :meth:`load` restores it. The file is written to a temporary name and
        renamed over ``path`` when complete: a failed save leaves an existing file intact."""
        st = self._fitted()
        arrays = {"user_factors": st.U, "item_factors": st.V}
        if st.ub is not None:
            arrays.update(user_bias=st.ub, item_bias=st.ib)
        meta = {
            "model": "MatrixFactorization",
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "global_mean": st.mu,
            "rating_range": list(st.rating_range),
            "history": self.history_,
        }
        _io.save_npz(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path, *, array_kind: str = "numpy") -> MatrixFactorization:
        """Load a model written by :meth:`save`; ``array_kind`` ("numpy" or "torch") is the kind
        its fitted attributes are shown in. Every field is checked (shapes, dtypes, finiteness):
        a foreign, truncated or crafted file raises ``ValueError`` naming the file and field."""
        target = kinds.kind_named(array_kind)
        if not target.host:
            raise ValueError(f"array_kind={array_kind!r}: MatrixFactorization lives on the host")
        meta, arrays = _io.load_npz(path, "MatrixFactorization", FORMAT_VERSION)
        params = _io.meta_value(path, meta, "params", (dict,))
        try:
            params = dict(params)
            params["dtype"] = np.dtype(params.get("dtype", "float32")).type
            model = cls(**params)
            model._checked_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'params' is not valid ({exc})") from None
        dtype = np.dtype(model.dtype)
        fdt = model._checked_params()["factor_dtype"]
        U = _io.field(path, arrays, "user_factors", (None, None), dtype=fdt)
        V = _io.field(path, arrays, "item_factors", (None, U.shape[1]), dtype=fdt)
        if U.shape[1] != model.factors:
            raise ValueError(
                f"{path}: field 'user_factors' has {U.shape[1]} factors but params say "
                f"factors={model.factors}"
            )
        ub = _io.field(path, arrays, "user_bias", (U.shape[0],), dtype=dtype, required=False)
        ib = _io.field(path, arrays, "item_bias", (V.shape[0],), dtype=dtype, required=False)
        if (ub is None) != (ib is None) or (ub is None) == bool(model.biases):
            raise ValueError(f"{path}: the bias fields do not match params (biases={model.biases})")
        mu = float(_io.meta_value(path, meta, "global_mean", (int, float)))
        rr = _io.meta_value(path, meta, "rating_range", (list,))
        if len(rr) != 2 or not all(isinstance(v, (int, float)) for v in rr) or rr[0] > rr[1]:
            raise ValueError(f"{path}: meta field 'rating_range' must be [low, high]")
        if not np.isfinite(mu):
            raise ValueError(f"{path}: meta field 'global_mean' is not finite")
        model._commit(_State(U, V, ub, ib, mu, (float(rr[0]), float(rr[1]))), target)
        model.history_ = meta.get("history", {})
        return model


class _State:
    """The fitted arrays of a MatrixFactorization (NumPy), built apart and assigned at once."""

    __slots__ = ("U", "V", "ub", "ib", "mu", "rating_range")

    def __init__(self, U, V, ub, ib, mu, rating_range):
        self.U, self.V, self.ub, self.ib, self.mu = U, V, ub, ib, mu
        self.rating_range = rating_range

    def copy(self, xp: Any = np) -> _State:
        def cp(a: Any) -> Any:
            return a.copy() if xp is np else xp.asarray(a, copy=True)

        c = [None if a is None else cp(a) for a in (self.U, self.V, self.ub, self.ib)]
        return _State(*c, self.mu, self.rating_range)

    def to_host(self, kind: Any) -> _State:
        """The same state with NumPy arrays (copied from a device fit's arrays)."""
        c = [None if a is None else kind.to_numpy(a) for a in (self.U, self.V, self.ub, self.ib)]
        return _State(*c, self.mu, self.rating_range)


def _compute_dtype(U: Any) -> Any:
    """The arithmetic's dtype for factors stored as ``U.dtype`` (float32 for float16)."""
    return np.dtype(np.float32) if U.dtype == np.float16 else U.dtype


def _predict_idx(st: _State, users: np.ndarray, items: np.ndarray, clip: bool) -> np.ndarray:
    ct = _compute_dtype(st.U)
    Uu, Vi = st.U[users].astype(ct, copy=False), st.V[items].astype(ct, copy=False)
    pred = np.einsum("ij,ij->i", Uu, Vi) + ct.type(st.mu)
    if st.ub is not None:
        pred += st.ub[users] + st.ib[items]
    if clip:
        np.clip(pred, *st.rating_range, out=pred)
    return pred


def _rmse(st: _State, rows: Any, cols: Any, values: Any, xp: Any = np) -> float:
    if values.shape[0] == 0:
        return float("nan")
    if xp is np:
        err = _predict_idx(st, rows, cols, True).astype(np.float64) - values
        return float(np.sqrt(np.mean(err * err)))
    # A device fit's validation, on the device (one scalar comes back).
    Uu = xp.astype(xp.take(st.U, rows, axis=0), values.dtype)  # float16 storage: widened
    Vi = xp.astype(xp.take(st.V, cols, axis=0), values.dtype)
    pred = xp.sum(Uu * Vi, axis=1) + st.mu
    if st.ub is not None:
        pred = pred + xp.take(st.ub, rows, axis=0) + xp.take(st.ib, cols, axis=0)
    pred = xp.clip(pred, st.rating_range[0], st.rating_range[1])
    err = xp.astype(pred, xp.float64) - xp.astype(values, xp.float64)
    return float(xp.sqrt(xp.mean(err * err)))


def _ratings_kind(ratings: Any) -> Any:
    """The array kind of ``ratings`` (scipy.sparse and Ratings: NumPy)."""
    if isinstance(ratings, tuple) and len(ratings) == 3:
        return kinds.of(ratings, ("rows", "cols", "values"))
    return NUMPY
