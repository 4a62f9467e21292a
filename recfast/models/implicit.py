"""Implicit-feedback recommenders: ``ImplicitALS`` (Hu, Koren & Volinsky 2008, conjugate-gradient
solver of Takacs et al. 2011) and ``BPR`` (Rendle et al. 2009), on recfast's native kernels.

The API follows benfred/implicit 0.7 where it is good (``fit(user_items)``, ``recommend``,
``similar_items``, ``similar_users``, ``explain``, ``partial_fit_users``/``partial_fit_items``,
``user_factors``/``item_factors``), so code switches by changing an import, with these fixes:

* ``recommend`` takes either the whole user x item matrix or one row per requested user, and
  says which was expected when neither fits (implicit's most reported error);
* bad input (dense matrices, negative/NaN/inf strengths, ids out of range, ``N <= 0``) raises
  ``TypeError``/``ValueError`` naming the argument, before anything changes;
* a diverging fit raises ``FloatingPointError`` naming the iteration instead of leaving NaN
  factors; a fit that raises leaves the estimator as it was;
* BPR has a fold-in (``partial_fit_users``, ``recommend(recalculate_user=True)``);
* models save to versioned ``.npz`` files (``allow_pickle=False``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast._backends import select
from recfast._kernel_args import AlsArgs, BprArgs, TopkArgs
from recfast._kinds import NUMPY
from recfast._threads import resolve_num_threads
from recfast.implicit import BprEpochResult, prepare_als_half_sweep, prepare_bpr_epoch
from recfast.models import _io
from recfast.models._interactions import as_user_items, checked_rows, requested_rows
from recfast.models._kinded import Kinded, kinded

FORMAT_VERSION = 1
_CONFIDENCES = ("hu", "implicit")


def _ids(name: str, ids: Any, upper: int | None) -> tuple[np.ndarray, bool]:
    """``(ids as int64 1-D, was a scalar)``, range-checked against ``upper``."""
    scalar = np.ndim(ids) == 0
    if scalar and (isinstance(ids, bool) or not isinstance(ids, (int, np.integer))):
        raise TypeError(f"{name} must be an int or an array of ints, got {type(ids).__name__}")
    # New ids (fold-in) may lie beyond the model, never below 0.
    a = check.index_array(name, np.atleast_1d(np.asarray(ids)), 2**31 if upper is None else upper)
    return check._as_int64(np, a), scalar


class _FactorRecommender(Kinded):
    """What ALS and BPR share: factors, top-k, similarity, fold-in plumbing, files."""

    user_factors_ = kinded("user_factors", "(n_users, k) user factors")
    item_factors_ = kinded("item_factors", "(n_items, k) item factors")
    _MODEL = ""
    _PARAMS: tuple[str, ...] = ()

    # implicit's attribute names, so evaluation code written for implicit runs unchanged
    @property
    def user_factors(self) -> Any:
        return self.user_factors_

    @property
    def item_factors(self) -> Any:
        return self.item_factors_

    @property
    def item_bias_(self) -> Any:
        return self._show(self._arrays.get("item_bias")) if "_arrays" in self.__dict__ else None

    def get_params(self) -> dict[str, Any]:
        p = {k: getattr(self, k) for k in self._PARAMS}
        p["dtype"] = np.dtype(self.dtype).name
        return p

    def _dtype(self) -> np.dtype:
        dt = np.dtype(self.dtype)
        if dt not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        return dt

    def _fitted(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        a = self.__dict__.get("_arrays", {})
        if "user_factors" not in a:
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet; call fit() first")
        return a["user_factors"], a["item_factors"], a.get("item_bias")

    def _set(self, U: np.ndarray, V: np.ndarray, b: np.ndarray | None) -> None:
        self.user_factors_, self.item_factors_ = U, V
        self._arrays["item_bias"] = b
        self._cache: dict[str, Any] = {}

    def _cached(self, key: str, make: Callable[[], Any]) -> Any:
        c = self.__dict__.setdefault("_cache", {})
        if key not in c:
            c[key] = make()
        return c[key]

    @property
    def _topk_kernel(self) -> Any:
        return self._cached("topk", lambda: select("topk", self.backend, NUMPY)[1])

    def _progress(self, total: int, show: bool | None) -> Any:
        if not (self.show_progress if show is None else show):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=type(self).__name__, unit="it")

    # -- rows of user_items for the requested users ----------------------------------------
    def _rows(self, users: np.ndarray, user_items: Any, n_rows_model: int, n_items: int,
              name: str = "user_items") -> Any:  # fmt: skip
        return requested_rows(users, user_items, n_rows_model, n_items, name)

    # -- recommend ----------------------------------------------------------------------------
    def recommend(
        self,
        userid: Any,
        user_items: Any = None,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: Any = None,
        recalculate_user: bool = False,
        items: Any = None,
    ) -> tuple[Any, Any]:
        """The ``N`` best items for one user or an array of users.

        Parameters
        ----------
        userid : int or (m,) int
        user_items : scipy.sparse, optional
            The users' interactions: one row per requested user (implicit's convention), or the
            whole user x item matrix (rows indexed by user id). Needed to filter liked items
            and to recalculate users; may be omitted otherwise.
        N : int >= 1
        filter_already_liked_items : bool
            Never return items stored in the user's row of ``user_items``.
        filter_items : (b,) int, optional
            Items never returned (blacklist).
        recalculate_user : bool
            Fold the user in from ``user_items`` first (new or changed users; their ids may be
            beyond the fitted users), without storing the result.
        items : (c,) int, optional
            Rank only these items (whitelist).

        Returns
        -------
        ids, scores
            For one user: 1-D arrays of at most ``N`` entries (fewer when filtering leaves
            fewer items). For an array of users: ``(m, N)`` arrays, best first, padded with id
            ``-1`` and score ``-inf`` where fewer than ``N`` items are left.
        """
        U, V, b = self._fitted()
        n_items = V.shape[0]
        users, single = _ids("userid", userid, None if recalculate_user else U.shape[0])
        N = check.positive_int("N", N)
        if (filter_already_liked_items or recalculate_user) and user_items is None:
            raise ValueError(
                "user_items is needed with filter_already_liked_items=True or "
                "recalculate_user=True (pass the users' rows or the whole matrix)"
            )
        rows = None if user_items is None else self._rows(users, user_items, U.shape[0], n_items)
        Q = self._fold_in(rows) if recalculate_user else U[users]
        ids, scores = self._topk(Q, N, items, filter_items, rows if filter_already_liked_items
                                 else None)  # fmt: skip
        if single:
            keep = ids[0] >= 0
            return self._show(ids[0][keep]), self._show(scores[0][keep])
        return self._show(ids), self._show(scores)

    def _topk(self, Q: np.ndarray, N: int, items: Any, banned: Any, exclude: Any,
              V: np.ndarray | None = None, bias: bool = True) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The native top-k, called with arrays this class built (only the user's id lists
        are checked here): the hot path of recommend, kept to microseconds of Python."""
        _, V0, b = self._fitted()
        V = V0 if V is None else V
        n_items = V.shape[0]
        cand = None
        if items is not None:
            cand = np.unique(check._as_int64(np, check.index_array("items", np.asarray(items),
                                                                   n_items)))  # fmt: skip
        mask = None
        if banned is not None:
            mask = np.zeros(n_items, np.uint8)
            mask[check.index_array("filter_items", np.asarray(banned), n_items)] = 1
        ex_ptr = ex_idx = None
        if exclude is not None:
            ex_ptr, ex_idx = exclude.indptr.astype(np.int64), exclude.indices
        Q = np.ascontiguousarray(Q, V.dtype)
        out_ids = np.empty((Q.shape[0], N), np.int64)
        out_s = np.empty((Q.shape[0], N), V.dtype)
        nt = resolve_num_threads(self.num_threads) if Q.shape[0] > 32 else 1
        self._topk_kernel(TopkArgs(Q, V, b if bias else None, cand, mask, ex_ptr, ex_idx, N,
                                   out_ids, out_s, nt))  # fmt: skip
        return out_ids, out_s

    # -- similarity ---------------------------------------------------------------------------
    def _normalized(self, which: str) -> np.ndarray:
        def make() -> np.ndarray:
            U, V, _ = self._fitted()
            F = U if which == "users" else V
            norms = np.linalg.norm(F, axis=1, keepdims=True)
            return np.ascontiguousarray(F / np.where(norms > 0, norms, 1)).astype(F.dtype)

        return self._cached("norm_" + which, make)

    def similar_items(
        self, itemid: Any, N: int = 10, filter_items: Any = None, items: Any = None
    ) -> tuple[Any, Any]:
        """The ``N`` items most similar to ``itemid`` (int or (m,) ints) by the cosine of their
        factors, the item itself included (it scores 1); batched, on the native top-k.
        Returns 1-D ``(ids, scores)`` for one item, ``(m, N)`` arrays for several."""
        return self._similar("items", "itemid", itemid, N, filter_items, items)

    def similar_users(
        self, userid: Any, N: int = 10, filter_users: Any = None, users: Any = None
    ) -> tuple[Any, Any]:
        """The ``N`` users most similar to ``userid`` by cosine (see :meth:`similar_items`)."""
        return self._similar("users", "userid", userid, N, filter_users, users)

    def _similar(self, which, name, ids, N, banned, cand):
        F = self._normalized(which)
        q, single = _ids(name, ids, F.shape[0])
        N = check.positive_int("N", N)
        out_ids, out_s = self._topk(F[q], N, cand, banned, None, V=F, bias=False)
        if single:
            keep = out_ids[0] >= 0
            return self._show(out_ids[0][keep]), self._show(out_s[0][keep])
        return self._show(out_ids), self._show(out_s)

    # -- fold-in ------------------------------------------------------------------------------
    def partial_fit_users(self, userids: Any, user_items: Any) -> None:
        """Fold in new or changed users with the item factors fixed: row ``j`` of
        ``user_items`` (len(userids) x n_items) holds the interactions of ``userids[j]``. Ids
        beyond the fitted users grow the user factors (rows in between start at zero)."""
        U, V, b = self._fitted()
        users, _ = _ids("userids", userids, None)
        rows = checked_rows(user_items, "user_items")
        if rows.shape != (len(users), V.shape[0]):
            raise ValueError(
                f"user_items must have one row per user in userids and one column per item: "
                f"shape {(len(users), V.shape[0])}, got {rows.shape}"
            )
        X = self._fold_in(rows)
        n = max(U.shape[0], int(users.max()) + 1)
        if n > U.shape[0]:
            U = np.concatenate([U, np.zeros((n - U.shape[0], U.shape[1]), U.dtype)])
            U[users] = X
            self.user_factors_ = U
        else:
            U[users] = X  # in place: the item side and its cached Gram matrix stay valid
        self.__dict__.setdefault("_cache", {}).pop("norm_users", None)

    def partial_fit_items(self, itemids: Any, item_users: Any) -> None:
        """Fold in new or changed items with the user factors fixed: row ``j`` of
        ``item_users`` (len(itemids) x n_users) holds the users of ``itemids[j]``. Ids beyond
        the fitted items grow the item factors."""
        U, V, b = self._fitted()
        items, _ = _ids("itemids", itemids, None)
        rows = checked_rows(item_users, "item_users")
        if rows.shape != (len(items), U.shape[0]):
            raise ValueError(
                f"item_users must have one row per item in itemids and one column per user: "
                f"shape {(len(items), U.shape[0])}, got {rows.shape}"
            )
        n = max(V.shape[0], int(items.max()) + 1)
        if n > V.shape[0]:
            V = np.concatenate([V, np.zeros((n - V.shape[0], V.shape[1]), V.dtype)])
            if b is not None:
                b = np.concatenate([b, np.zeros(n - b.shape[0], b.dtype)])
        Xi, bi = self._fold_in_items(items, rows, U, V, b)
        V[items] = Xi
        if b is not None:
            b[items] = bi
        self._set(U, V, b)

    # -- files ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Save to ``path`` (.npz, format version 1, written atomically); :meth:`load`
        restores it exactly."""
        U, V, b = self._fitted()
        arrays = {"user_factors": U, "item_factors": V}
        if b is not None:
            arrays["item_bias"] = b
        meta = {"model": self._MODEL, "format_version": FORMAT_VERSION,
                "params": self.get_params(), "history": getattr(self, "history_", {})}  # fmt: skip
        _io.save_npz(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Load a model written by :meth:`save`; a foreign, truncated or crafted file, or one
        of another format version, raises ``ValueError`` naming the file and field."""
        meta, arrays = _io.load_npz(path, cls._MODEL, FORMAT_VERSION)
        params = _io.meta_value(path, meta, "params", (dict,))
        try:
            params = dict(params)
            params["dtype"] = np.dtype(params.get("dtype", "float32")).type
            model = cls(**params)
            model._check_params()
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'params' is not valid ({exc})") from None
        dt = np.dtype(model.dtype)
        U = _io.field(path, arrays, "user_factors", (None, model.factors), dtype=dt)
        V = _io.field(path, arrays, "item_factors", (None, model.factors), dtype=dt)
        b = _io.field(path, arrays, "item_bias", (V.shape[0],), dtype=dt, required=False)
        if (b is not None) != model._has_bias():
            raise ValueError(f"{path}: the item_bias field does not match params")
        model._kind = NUMPY
        model._arrays = {}
        model._set(U, V, b)
        model.history_ = meta.get("history", {})
        return model

    def _has_bias(self) -> bool:
        return False


class ImplicitALS(_FactorRecommender):
    """Implicit alternating least squares (Hu, Koren & Volinsky 2008), implicit's
    ``AlternatingLeastSquares`` on recfast's kernels.

    Minimises ``sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + regularization (|X|^2 + |Y|^2)`` over all
    user x item pairs, ``p_ui = 1`` for stored entries (0 elsewhere). The confidence is
    ``c_ui = 1 + alpha * r_ui`` (``confidence="hu"``, the paper's) or ``alpha * r_ui``
    (``confidence="implicit"``, what benfred/implicit uses: with ``alpha=1`` and binary data a
    positive then carries no extra weight). Each iteration solves every user, then every item
    (:func:`recfast.implicit.als_half_sweep`: ``cg_steps`` conjugate-gradient steps warm-started
    from the current factors, or the exact Cholesky solve with ``use_cg=False``).

    The defaults are implicit 0.7's (factors 100, regularization 0.01, alpha 1, 15 iterations,
    3 CG steps, factors initialised uniform in [0, 0.01)), except the confidence rule. Recipe
    that beats implicit's defaults on ml-100k (per-user 80/20, see BENCHMARKS.md):
    ``ImplicitALS(factors=64, regularization=0.05, alpha=2.0, iterations=15)``.

    Parameters
    ----------
    factors, regularization, alpha, iterations, cg_steps, use_cg : the model and solver
    confidence : {"hu", "implicit"}
    random_state : int, optional; num_threads : int, optional; backend : str, optional
    dtype : float32 (fast path) or float64
    show_progress : bool (tqdm bar)

    Attributes after fit: ``user_factors`` / ``user_factors_`` (n_users, k), ``item_factors``
    (n_items, k), ``history_`` (per-iteration seconds).
    """

    _MODEL = "ImplicitALS"
    _PARAMS = ("factors", "regularization", "alpha", "iterations", "cg_steps", "use_cg",
               "confidence", "random_state", "num_threads", "backend", "show_progress")  # fmt: skip

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        cg_steps: int = 3,
        use_cg: bool = True,
        confidence: str = "hu",
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        dtype: Any = np.float32,
        show_progress: bool = False,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.cg_steps = cg_steps
        self.use_cg = use_cg
        self.confidence = confidence
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.dtype = dtype
        self.show_progress = show_progress

    def _check_params(self) -> dict[str, Any]:
        if self.confidence not in _CONFIDENCES:
            raise ValueError(f"confidence must be one of {_CONFIDENCES}, got {self.confidence!r}")
        steps = self.cg_steps
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"cg_steps must be an int >= 1, got {steps!r}")
        return dict(
            k=check.positive_int("factors", self.factors),
            reg=check.scalar("regularization", self.regularization, low=0.0),
            alpha=check.scalar("alpha", self.alpha, low=0.0, low_open=True),
            iters=check.positive_int("iterations", self.iterations),
            steps=int(steps) if self.use_cg else 0,
            dtype=self._dtype(),
            nt=resolve_num_threads(self.num_threads),
        )

    def _conf(self, data: np.ndarray, dtype: np.dtype) -> np.ndarray:
        c = self.alpha * data
        if self.confidence == "hu":
            c += 1.0
        return c.astype(dtype)

    def fit(
        self,
        user_items: Any,
        show_progress: bool | None = None,
        callback: Callable[[int, float], Any] | None = None,
    ) -> ImplicitALS:
        """Factorize ``user_items`` (scipy.sparse users x items of interaction strengths >= 0;
        duplicates summed, unsorted indices accepted). ``callback(iteration, elapsed_seconds)``
        runs after each iteration. A fit that raises leaves the estimator as it was."""
        p = self._check_params()
        Cui = as_user_items(user_items)
        if Cui.nnz == 0:
            raise ValueError("user_items is empty: fit needs at least one interaction")
        dt, k = p["dtype"], p["k"]
        n_users, n_items = Cui.shape
        for what, n in (("user", n_users), ("item", n_items)):
            check.allocation(f"the {what} factors", (n, k), dt.itemsize, f"{n} {what}s")
        Ciu = Cui.T.tocsr()
        rng = np.random.default_rng(self.random_state)
        U = (rng.random((n_users, k), dtype=np.float64) * 0.01).astype(dt)
        V = (rng.random((n_items, k), dtype=np.float64) * 0.01).astype(dt)
        common = dict(regularization=p["reg"], cg_steps=p["steps"], num_threads=p["nt"],
                      backend=self.backend)  # fmt: skip
        users = prepare_als_half_sweep(Cui.indptr, Cui.indices, self._conf(Cui.data, dt), U, V,
                                       **common)  # fmt: skip
        items = prepare_als_half_sweep(Ciu.indptr, Ciu.indices, self._conf(Ciu.data, dt), V, U,
                                       **common)  # fmt: skip
        history: dict[str, list] = {"seconds": []}
        bar = self._progress(p["iters"], show_progress)
        try:
            for it in range(p["iters"]):
                t = time.perf_counter()
                where = f" in iteration {it + 1} of {p['iters']}"
                users(where=where + " (users)")
                items(where=where + " (items)")
                history["seconds"].append(time.perf_counter() - t)
                if bar is not None:
                    bar.update(1)
                if callback is not None:
                    callback(it, history["seconds"][-1])
        finally:
            if bar is not None:
                bar.close()
        self._kind = NUMPY
        self.__dict__["_arrays"] = {}
        self._set(U, V, None)
        self.history_ = history
        return self

    def _gram(self) -> np.ndarray:
        def make() -> np.ndarray:
            V = self._fitted()[1]
            return np.ascontiguousarray(V.T @ V)

        return self._cached("gram", make)

    def _solve(self, rows: Any, Y: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
        """Exact least-squares factors of the CSR ``rows`` against the fixed ``Y``."""
        dt = Y.dtype
        X = np.zeros((rows.shape[0], Y.shape[1]), dt)
        if rows.shape[0] == 0:
            return X
        kernel = self._cached("als", lambda: select("als_half_sweep", self.backend, NUMPY)[1])
        nt = resolve_num_threads(self.num_threads) if rows.shape[0] > 64 else 1
        args = AlsArgs(rows.indptr.astype(np.int64), rows.indices, self._conf(rows.data, dt), X,
                       Y, gram, None, float(self.regularization), 0, nt)  # fmt: skip
        if kernel(args):
            raise FloatingPointError(
                "the fold-in system is singular for some rows; use regularization > 0"
            )
        return X

    def _fold_in(self, rows: Any) -> np.ndarray:
        return self._solve(rows, self._fitted()[1], self._gram())

    def _fold_in_items(self, items, rows, U, V, b):
        return self._solve(rows, U, None), None

    def recalculate_user(self, userid: Any, user_items: Any) -> Any:
        """The factors of the given users folded in from ``user_items`` (implicit's API)."""
        U, V, _ = self._fitted()
        users, single = _ids("userid", userid, None)
        X = self._fold_in(self._rows(users, user_items, U.shape[0], V.shape[0]))
        return self._show(X[0] if single else X)

    def explain(
        self, userid: int, user_items: Any, itemid: int, user_weights: Any = None, N: int = 10
    ) -> tuple[float, list[tuple[int, float]], Any]:
        """Why ``itemid`` scores as it does for ``userid`` (Hu et al. section 5): the score
        ``y_i^T W_u sum_j c_uj y_j`` split into the contributions ``c_uj y_i^T W_u y_j`` of the
        user's own items ``j``, with ``W_u = (Y^T C_u Y + regularization I)^-1``.

        ``user_items``: the user's row, or the whole matrix (indexed by ``userid``).

        Returns ``(score, top N [(itemid, contribution)] largest first, user_weights)``;
        ``user_weights`` (the Cholesky factor of ``W_u^-1``) makes repeated calls for the same
        user cheap when passed back, as in implicit.
        """
        import scipy.linalg

        U, V, _ = self._fitted()
        users, _ = _ids("userid", userid, None)
        (item,), _ = _ids("itemid", itemid, V.shape[0])
        N = check.positive_int("N", N)
        row = self._rows(users[:1], user_items, U.shape[0], V.shape[0])
        js, c = row.indices, self._conf(row.data, np.dtype(np.float64))
        Y = V.astype(np.float64)
        if user_weights is None:
            A = self._gram().astype(np.float64) + self.regularization * np.eye(V.shape[1])
            Yj = Y[js]
            A += (Yj * (c - 1)[:, None]).T @ Yj
            user_weights = scipy.linalg.cho_factor(A)
        w = scipy.linalg.cho_solve(user_weights, Y[item])
        contrib = (Y[js] @ w) * c
        order = np.lexsort((js, -contrib))[:N]
        top = [(int(js[o]), float(contrib[o])) for o in order]
        return float(contrib.sum()), top, user_weights


class BPR(_FactorRecommender):
    """Bayesian personalized ranking (Rendle et al. 2009) by Hogwild SGD with item biases,
    implicit's ``BayesianPersonalizedRanking`` on recfast's kernel
    (:func:`recfast.implicit.bpr_epoch`).

    Each iteration draws ``nnz`` (user, positive, negative) triples; a negative that is a
    positive of the user is skipped (implicit's ``verify_negative_samples=True``). Negatives
    are drawn uniformly (``negatives="uniform"``, the default, Rendle et al.'s sampler) or in
    proportion to item popularity (``"popularity"``: implicit's sampler, which reproduces its
    results). Other defaults are implicit 0.7's (factors 100, learning rate 0.01, regularization
    0.01, 100 iterations); initial factors ``(U[0,1) - 0.5) / factors``, item biases 0, items
    without interactions start at 0. Recipe that beats implicit's defaults on ml-100k (per-user
    80/20, see BENCHMARKS.md): the defaults, i.e. ``BPR(negatives="uniform")``: NDCG@10 0.37
    against implicit's 0.29 at 64 factors.

    ``partial_fit_users`` / ``recommend(recalculate_user=True)`` fold users in by
    ``fold_in_epochs`` SGD passes over their rows with the item side fixed.
    """

    _MODEL = "BPR"
    _PARAMS = ("factors", "learning_rate", "regularization", "iterations", "item_bias",
               "negatives", "fold_in_epochs", "random_state", "num_threads", "backend",
               "show_progress")  # fmt: skip

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        item_bias: bool = True,
        negatives: str = "uniform",
        fold_in_epochs: int = 50,
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        dtype: Any = np.float32,
        show_progress: bool = False,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.item_bias = item_bias
        self.negatives = negatives
        self.fold_in_epochs = fold_in_epochs
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.dtype = dtype
        self.show_progress = show_progress

    def _has_bias(self) -> bool:
        return bool(self.item_bias)

    def _check_params(self) -> dict[str, Any]:
        if self.negatives not in ("uniform", "popularity"):
            raise ValueError(f"negatives must be 'uniform' or 'popularity', got {self.negatives!r}")
        return dict(
            k=check.positive_int("factors", self.factors),
            lr=check.scalar("learning_rate", self.learning_rate, low=0.0, low_open=True),
            reg=check.scalar("regularization", self.regularization, low=0.0),
            iters=check.positive_int("iterations", self.iterations),
            fold=check.positive_int("fold_in_epochs", self.fold_in_epochs),
            dtype=self._dtype(),
            nt=resolve_num_threads(self.num_threads),
        )

    def fit(
        self,
        user_items: Any,
        show_progress: bool | None = None,
        callback: Callable[[int, float], Any] | None = None,
    ) -> BPR:
        """Train on ``user_items`` (scipy.sparse users x items; every stored entry with a
        strength > 0 is a positive). ``history_`` holds per-iteration ``loss`` (mean -log
        sigmoid), ``correct`` (fraction of sampled pairs ordered right), ``skipped`` and
        ``seconds``. Raises ``FloatingPointError`` naming the iteration when SGD diverges."""
        p = self._check_params()
        R = as_user_items(user_items)
        if R.nnz == 0:
            raise ValueError("user_items is empty: fit needs at least one interaction")
        dt, k = p["dtype"], p["k"]
        n_users, n_items = R.shape
        rng = np.random.default_rng(self.random_state)
        U = ((rng.random((n_users, k)) - 0.5) / k).astype(dt)
        V = ((rng.random((n_items, k)) - 0.5) / k).astype(dt)
        V[np.bincount(R.indices, minlength=n_items) == 0] = 0
        b = np.zeros(n_items, dt) if self.item_bias else None
        epoch = prepare_bpr_epoch(R.indptr, R.indices, U, V, item_bias=b, learning_rate=p["lr"],
                                  regularization=p["reg"], negatives=self.negatives,
                                  num_threads=p["nt"], backend=self.backend)  # fmt: skip
        history: dict[str, list] = {"loss": [], "correct": [], "skipped": [], "seconds": []}
        bar = self._progress(p["iters"], show_progress)
        try:
            for it in range(p["iters"]):
                t = time.perf_counter()
                r: BprEpochResult = epoch(int(rng.integers(2**63)),
                                          where=f" in iteration {it + 1} of {p['iters']}")  # fmt: skip
                history["seconds"].append(time.perf_counter() - t)
                history["loss"].append(r.loss)
                history["correct"].append(r.correct)
                history["skipped"].append(r.skipped)
                if bar is not None:
                    bar.set_postfix({"correct": f"{r.correct:.3f}"})
                    bar.update(1)
                if callback is not None:
                    callback(it, history["seconds"][-1])
        finally:
            if bar is not None:
                bar.close()
        self._kind = NUMPY
        self.__dict__["_arrays"] = {}
        self._set(U, V, b)
        self.history_ = history
        return self

    def _sgd(self, R: Any, U: np.ndarray, V: np.ndarray, b: np.ndarray | None, seed: int) -> None:
        """``fold_in_epochs`` BPR passes over the CSR ``R`` on the given (scratch) arrays."""
        if R.nnz == 0:
            return
        R = R.copy()
        R.sort_indices()
        kernel = self._cached("bpr", lambda: select("bpr_epoch", self.backend, NUMPY)[1])
        indices = R.indices
        row_of = np.repeat(np.arange(R.shape[0], dtype=indices.dtype), np.diff(R.indptr))
        args = BprArgs(R.indptr.astype(np.int64), indices, row_of, U, V, b,
                       int(R.nnz) * int(self.fold_in_epochs), float(self.learning_rate),
                       float(self.regularization), seed, self.negatives == "popularity",
                       1)  # fmt: skip
        loss = kernel(args)[0]
        if not np.isfinite(loss) or not np.isfinite(U).all():
            raise FloatingPointError("BPR fold-in diverged; lower learning_rate")

    def _fold_in(self, rows: Any) -> np.ndarray:
        """Users from their rows, the items fixed (the SGD runs on scratch copies of them)."""
        _, V, b = self._fitted()
        k = V.shape[1]
        rng = np.random.default_rng(0)
        X = ((rng.random((rows.shape[0], k)) - 0.5) / k).astype(V.dtype)
        self._sgd(rows, X, V.copy(), None if b is None else b.copy(), 0)
        return X

    def _fold_in_items(self, items, rows, U, V, b):
        """Items from their users (``rows``: items x users), the users fixed: the SGD runs on
        a user x item matrix of these interactions, scratch user factors, and keeps only the
        rows of ``items``."""
        import scipy.sparse as sp

        k = V.shape[1]
        rng = np.random.default_rng(0)
        V[items] = ((rng.random((len(items), k)) - 0.5) / k).astype(V.dtype)
        coo = rows.tocoo()
        R = sp.csr_matrix((coo.data, (coo.col, items[coo.row])), shape=(U.shape[0], V.shape[0]))
        R.sum_duplicates()
        Vs, bs = V.copy(), None if b is None else b.copy()
        self._sgd(R, U.copy(), Vs, bs, 0)
        return Vs[items], None if bs is None else bs[items]
