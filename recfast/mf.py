"""Sparse SGD matrix factorization kernels: ``R ~ mu + b_u + b_i + U V^T``.

The public functions validate once (``recfast._validate``), pick a backend once
(``recfast._backends``) and call it; the arrays passed in are updated in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import BackendUnavailableError, select
from recfast._kernel_args import BlockLayoutArgs, SgdMfArgs
from recfast._kinds import NUMPY, Array, ArrayKind
from recfast._threads import resolve_num_threads, threads_for_load

__all__ = [
    "DivergenceError",
    "SgdMfEpoch",
    "mf_block_layout",
    "prepare_sgd_mf_epoch",
    "recommend_topk",
    "sgd_mf_epoch",
]


class DivergenceError(FloatingPointError):
    """SGD diverged (the loss or the factors became inf/NaN); lower the learning rate."""


_MF_NAMES = ("rows", "cols", "values", "user_factors", "item_factors", "user_bias", "item_bias",
             "user_accum", "item_accum", "order", "block_ptr")  # fmt: skip


class _ThreadGovernor:
    """Thread count of the next block-scheduled epoch, from how well the last one was served.

    With another process on one of the cores, the thread that shares it runs at half speed and
    the blocks that depend on its own wait for it: on 2 cores an ml-100k fit took 1.6x as long on
    2 threads as on 1. The kernel reports the least share of a core that any of its threads got
    while it had work (``sgd_mf_last_core_share``); below ``SHARE`` the next epochs run on one
    thread, and after ``PROBE`` of them (doubling while the load lasts, up to ``PROBE_MAX``) one
    epoch tries every thread again. A quiet machine keeps every thread and pays nothing: the
    schedule gives the same result on any thread count, so switching changes no number.
    """

    SHARE, PROBE, PROBE_MAX = 0.8, 4, 32
    __slots__ = ("most", "threads", "_wait", "_period", "_share")

    def __init__(self, most: int, share: Any) -> None:
        self.most, self.threads, self._wait, self._period = most, most, 0, self.PROBE
        self._share = share

    def observe(self) -> None:
        if self.threads == self.most:
            if self._share() < self.SHARE:
                self.threads, self._wait = 1, self._period
                self._period = min(2 * self._period, self.PROBE_MAX)
            else:
                self._period = self.PROBE
        else:
            self._wait -= 1
            if self._wait <= 0:
                self.threads = self.most  # probe


class SgdMfEpoch:
    """A validated SGD pass over one rating list, ready to run again and again.

    :func:`prepare_sgd_mf_epoch` builds it (validation and backend choice happen once);
    ``epoch()`` runs one pass in place and returns the sum of squared errors, and
    ``epoch(learning_rate=lr)`` runs it with another step size (a decaying schedule). Estimators
    use this instead of calling a backend's kernel themselves.
    """

    __slots__ = ("args", "backend", "kernel", "kind", "_empty", "_governor", "_dynamic")

    def __init__(self, args: SgdMfArgs, backend: str, kernel: Any, kind: ArrayKind) -> None:
        self.args, self.backend, self.kernel, self.kind = args, backend, kernel, kind
        n = args.values.shape[0] if args.order is None else args.order.shape[0]
        # Nothing for a kernel to update: no ratings, or k = 0 without biases (the loss is then
        # that of the global mean alone, computed here).
        self._empty = n == 0 or (args.user_factors.shape[1] == 0 and args.user_bias is None)
        # The cpu kernel's block schedule gives the same result on any thread count, so the
        # count may follow the machine's load from one epoch to the next.
        # Both cpu schedules (blocks: the same result; Hogwild: racy whatever the count) may
        # also run on fewer threads while another process holds a core (the run queue, read
        # before each epoch: ~50 us).
        self._dynamic = backend == "cpu" and args.num_threads > 1
        self._governor = None
        if self._dynamic and args.block_ptr is not None:
            from recfast._backends.cpu._native import cpu

            self._governor = _ThreadGovernor(args.num_threads, cpu.sgd_mf_last_core_share)

    def __call__(self, learning_rate: float | None = None, *, where: str = "") -> float:
        a = self.args
        if learning_rate is not None:
            lr = check.scalar("learning_rate", learning_rate, low=0.0, low_open=True)
            a = a._replace(learning_rate=lr)
        if self._empty:
            xp = self.kind.xp
            v = a.values if a.order is None else xp.take(a.values, a.order)
            e = xp.astype(v, xp.float64) - a.global_mean if xp is not np else v - a.global_mean
            return float(xp.sum(e * e)) if v.shape[0] else 0.0
        if not self._dynamic:
            sse = self.kernel(a)
        else:
            free = threads_for_load(a.num_threads)
            gov = self._governor
            if gov is not None and gov.threads <= free:
                sse = self.kernel(a._replace(num_threads=gov.threads))
                gov.observe()
            else:  # fewer cores free than the governor would use: its share reading is moot
                sse = self.kernel(a._replace(num_threads=free))
        raise_if_diverged(
            sse, a.user_factors, a.item_factors, a.user_bias, a.item_bias, xp=self.kind.xp,
            where=where,
        )  # fmt: skip
        return float(sse)


def prepare_sgd_mf_epoch(
    rows: Any,
    cols: Any,
    values: Any,
    user_factors: Any,
    item_factors: Any,
    *,
    user_bias: Any = None,
    item_bias: Any = None,
    global_mean: float = 0.0,
    learning_rate: float,
    regularization: float,
    bias_regularization: float | None = None,
    user_accum: Any = None,
    item_accum: Any = None,
    order: Any = None,
    block_ptr: Any = None,
    n_blocks: int | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> SgdMfEpoch:
    """Validate the arguments of :func:`sgd_mf_epoch` once and return the pass as a callable."""
    arrays = (rows, cols, values, user_factors, item_factors, user_bias, item_bias, user_accum,
              item_accum, order, block_ptr)  # fmt: skip
    kind, arrays = kinds.inputs(arrays, _MF_NAMES)
    rows, cols, values, user_factors, item_factors, user_bias, item_bias = arrays[:7]
    user_accum, item_accum, order, block_ptr = arrays[7:]
    name, kernel = select("sgd_mf_epoch", backend, kind)
    xp = kind.xp
    values = check.float_array("values", values, xp, ndim=1)
    U, V = check.factor_pair(user_factors, item_factors, values.dtype, xp)
    if check.is_half(U) and name == "numba":
        raise TypeError(
            "float16 factors run on the cpu (recfast._cpu), cuda and cupy backends; the Numba "
            "fallback has no float16 (pass backend='reference' for the slow array-API one, or "
            "float32 factors)"
        )
    rows, cols, values = check.ratings_triplet(rows, cols, values, U.shape[0], V.shape[0], xp)
    n = (U.shape[0], V.shape[0])
    ub, ib = check.row_vector_pair(
        ("user_bias", "item_bias"), user_bias, item_bias, n, values.dtype, xp
    )
    ua, ia = check.row_vector_pair(
        ("user_accum", "item_accum"), user_accum, item_accum, n, values.dtype, xp
    )
    if ua is not None:
        check.positive_accumulators(ua, ia, xp)
    check.no_overlap(
        xp,
        {"user_factors": U, "item_factors": V, "user_bias": ub, "item_bias": ib,
         "user_accum": ua, "item_accum": ia},
        {"rows": rows, "cols": cols, "values": values},
    )  # fmt: skip
    lr = check.scalar("learning_rate", learning_rate, low=0.0, low_open=True)
    reg = check.scalar("regularization", regularization, low=0.0)
    breg = (
        reg
        if bias_regularization is None
        else check.scalar("bias_regularization", bias_regularization, low=0.0)
    )
    mu = check.scalar("global_mean", global_mean)
    nnz = values.shape[0]
    if order is not None and block_ptr is not None:
        raise ValueError("order and block_ptr are exclusive: a block layout fixes the order")
    if order is not None:
        order = check._as_int64(xp, check.index_array("order", order, nnz, xp))
    nb = 0
    if block_ptr is not None:
        block_ptr, nb = check.block_ptr(block_ptr, n_blocks, nnz, xp)
    elif n_blocks is not None:
        raise ValueError("n_blocks is only meaningful with block_ptr")
    nt = resolve_num_threads(num_threads)
    args = SgdMfArgs(rows, cols, values, U, V, ub, ib, ua, ia, order, block_ptr, nb, lr, reg,
                     breg, mu, nt)  # fmt: skip
    return SgdMfEpoch(args, name, kernel, kind)


def sgd_mf_epoch(
    rows: Any,
    cols: Any,
    values: Any,
    user_factors: Any,
    item_factors: Any,
    *,
    user_bias: Any = None,
    item_bias: Any = None,
    global_mean: float = 0.0,
    learning_rate: float,
    regularization: float,
    bias_regularization: float | None = None,
    user_accum: Any = None,
    item_accum: Any = None,
    order: Any = None,
    block_ptr: Any = None,
    n_blocks: int | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> float:
    """One pass of stochastic gradient descent over the given ratings, in place.

    For each rating ``(u, i, r)``: ``e = r - (global_mean + b_u + b_i + U[u] @ V[i])``, then
    ``U[u] += lr (e V[i] - reg U[u])``, ``V[i] += lr (e U[u] - reg V[i])`` (both from the old
    values) and ``b_u += lr (e - bias_reg b_u)``, ``b_i`` likewise.

    Parameters
    ----------
    rows, cols : (nnz,) int32 or int64
        User and item index of each rating; range-checked against the factor shapes.
    values : (nnz,) float, same dtype as the factors
        The ratings; must be finite.
    user_factors : (n_users, k) float32 or float64 (the dtype of ``values``), C-contiguous,
        writable: a NumPy array, a PyTorch CPU tensor (updated in place, zero-copy) or a CuPy
        array (GPU backends)
    item_factors : (n_items, k) same dtype and kind. Both may instead be float16 with float32
        values: half-precision storage with float32 arithmetic (each update widens the two rows,
        updates them and rounds them back to nearest even); biases and accumulators stay
        float32. Backends ``cpu``, ``cuda``, ``cupy`` and ``reference``.
    user_bias, item_bias : (n_users,), (n_items,) optional, both or neither
    global_mean : float
        ``mu``, added to every prediction (not updated).
    learning_rate, regularization : float
        Step size (> 0) and L2 weight on the factors (>= 0).
    bias_regularization : float, optional
        L2 weight on the biases; defaults to ``regularization``.
    user_accum, item_accum : (n_users,), (n_items,) optional, > 0
        When given, LIBMF's row-wise AdaGrad: each row's step is ``learning_rate / sqrt(G_row)``
        where ``G_row`` (updated in place) accumulates the mean squared gradient of the row's
        coordinates. Start them at 1.
    order : (n,) int, optional
        Process ratings ``order[0], order[1], ...`` (repeats allowed) instead of storage order.
    block_ptr, n_blocks : optional
        The ratings are laid out by :func:`mf_block_layout`; run the FPSGD block schedule, whose
        result equals the sequential pass in storage order for any thread count.
    num_threads : int, optional
        Threads for the ``cpu``/``numba`` backends (default :func:`recfast.get_num_threads`).
        Without ``block_ptr`` several threads run lock-free Hogwild over contiguous slices of the
        order (not reproducible bit for bit); one thread is exactly sequential.
    backend : str, optional
        ``"cpu"``, ``"numba"`` or ``"reference"``; default: the fastest live one.

    Returns
    -------
    float
        The epoch's training loss: the sum of squared errors ``sum e**2``, each taken before its
        own update (regularization not included). Divide by ``len(values)`` for the MSE.

    Raises
    ------
    TypeError, ValueError
        Bad input, before anything is modified.
    FloatingPointError
        (:class:`DivergenceError`) the loss or the factors became non-finite: the learning rate
        is too large. The factors are then left as the diverged pass wrote them.
    """
    return prepare_sgd_mf_epoch(
        rows, cols, values, user_factors, item_factors, user_bias=user_bias, item_bias=item_bias,
        global_mean=global_mean, learning_rate=learning_rate, regularization=regularization,
        bias_regularization=bias_regularization, user_accum=user_accum, item_accum=item_accum,
        order=order, block_ptr=block_ptr, n_blocks=n_blocks, num_threads=num_threads,
        backend=backend,
    )()  # fmt: skip


def raise_if_diverged(sse: float, *arrays: Any, where: str = "", xp: Any = np) -> None:
    """Raise :class:`DivergenceError` when the loss or any array is not finite."""

    # A sum is inf/NaN when any entry is (or, harmlessly, when it overflows: diverged anyway);
    # summing in the array's own dtype keeps this check ~1 ms per epoch for 3M factors.
    def total(a: Any) -> float:  # float16 factors summed in float32: no overflow to inf
        return float(xp.sum(a, dtype=xp.float32) if check.is_half(a) else xp.sum(a))

    bad = not np.isfinite(float(sse)) or any(
        a is not None and a.shape[0] and not np.isfinite(total(a)) for a in arrays
    )
    if bad:
        raise DivergenceError(
            f"SGD diverged{where}: the training loss is {sse} and the factors hold inf/NaN; "
            "lower learning_rate"
        )


def mf_block_layout(
    rows: Any,
    cols: Any,
    values: Any,
    n_users: int,
    n_items: int,
    n_blocks: int,
    *,
    seed: int | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Array, Array, Array, Array]:
    """Lay ratings out for the blocked (FPSGD) schedule of :func:`sgd_mf_epoch`.

    Users are cut into ``n_blocks`` contiguous ranges (user block ``u * n_blocks // n_users``) and
    so are items; the ``n_blocks**2`` blocks are grouped in strata (stratum ``s`` holds the blocks
    whose item block minus user block is ``s`` mod ``n_blocks``), and the blocks of one stratum
    share no user and no item, so they can be updated in parallel. Blocks are stored
    stratum-major; users ascend within a block, so user rows stream through memory. One user's
    ratings inside a block keep their input order, or are shuffled when ``seed`` is given.

    Returns
    -------
    rows, cols, values : (nnz,) the ratings in the new order (new arrays, same dtypes)
    block_ptr : (n_blocks**2 + 1,) int64
        Block ``b`` spans ``[block_ptr[b], block_ptr[b+1])``; pass it with ``n_blocks`` to
        :func:`sgd_mf_epoch`.
    """
    kind, (rows, cols, values) = kinds.inputs((rows, cols, values), _MF_NAMES[:3])
    name, kernel = select("mf_block_layout", backend, kind)
    n_users = check.positive_int("n_users", n_users)
    n_items = check.positive_int("n_items", n_items)
    nb = check.positive_int("n_blocks", n_blocks)
    if nb > 4096:
        raise ValueError(f"n_blocks must be <= 4096, got {nb}")
    rows, cols, values = check.ratings_triplet(rows, cols, values, n_users, n_items, kind.xp)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        seed = int(seed) % 2**64
    nt = resolve_num_threads(num_threads)
    out = kernel(BlockLayoutArgs(rows, cols, values, n_users, n_items, nb, seed, nt))
    return out if kind is NUMPY else kind.wrap_all(out)


def recommend_topk(
    user_factors: Array,
    item_factors: Array,
    users: Any,
    n: int = 10,
    *,
    item_bias: Array | None = None,
    offset: Array | None = None,
    exclude: Any = None,
    batch_size: int = 1024,
) -> tuple[Array, Array]:
    """Top-``n`` items (ties to the lower id) by score ``U[u] @ V.T + item_bias (+ offset[u])`` for each user.

    Parameters
    ----------
    user_factors : (n_users, k); item_factors : (n_items, k) same dtype
    users : (m,) int
        User indices to recommend for.
    item_bias : (n_items,), optional; offset : (n_users,), optional
        Added to the scores (the offset, e.g. ``mu + b_u``, does not change the ranking).
    exclude : scipy.sparse matrix (n_users, n_items), optional
        Stored entries of row ``u`` (e.g. already-rated items) are never recommended to ``u``.
    batch_size : int
        Unused (kept for compatibility): the native top-k (:func:`recfast.implicit.topk`) tiles
        the users and items itself.

    Returns
    -------
    items : (m, n) int64, best first; ``-1`` where fewer than ``n`` items are left.
    scores : (m, n) same dtype as the factors; ``-inf`` where ``items`` is ``-1``.
    """
    kind = kinds.of((user_factors, item_factors, users, item_bias, offset),
                    ("user_factors", "item_factors", "users", "item_bias", "offset"))  # fmt: skip
    if not kind.host:
        raise BackendUnavailableError(
            f"recommend_topk runs on the host; {kind.name} arrays need a GPU top-k, which this "
            "build does not have"
        )
    if kind is not NUMPY:
        user_factors, item_factors, users, item_bias, offset = kind.unwrap(
            (user_factors, item_factors, users, item_bias, offset)
        )
    U = check.float_array("user_factors", user_factors, ndim=2)
    V = check.float_array("item_factors", item_factors, ndim=2, dtype=U.dtype, first="user_factors")
    if U.shape[1] != V.shape[1]:
        raise ValueError(
            f"user_factors and item_factors must have the same k, got {U.shape[1]} and {V.shape[1]}"
        )
    users = check.index_array("users", np.atleast_1d(users), U.shape[0])
    n = check.positive_int("n", n)
    n_items = V.shape[0]
    if item_bias is not None:
        item_bias = check.float_array(
            "item_bias", item_bias, ndim=1, dtype=U.dtype, first="user_factors"
        )
        if item_bias.shape != (n_items,):
            raise ValueError(f"item_bias must have shape ({n_items},), got {item_bias.shape}")
    if offset is not None:
        offset = check.float_array("offset", offset, ndim=1, dtype=U.dtype, first="user_factors")
        if offset.shape != (U.shape[0],):
            raise ValueError(f"offset must have shape ({U.shape[0]},), got {offset.shape}")
    if exclude is not None:
        import scipy.sparse as sp

        if not sp.issparse(exclude):
            raise TypeError(f"exclude must be a scipy.sparse matrix, got {type(exclude).__name__}")
        if exclude.shape != (U.shape[0], n_items):
            raise ValueError(
                f"exclude must have shape {(U.shape[0], n_items)}, got {exclude.shape}"
            )
        exclude = exclude.tocsr()
    from recfast.implicit import topk

    # The native top-k (tiled GEMM + per-row heaps, seen items excluded in the same pass); the
    # per-user offset does not change the ranking, so it is added to the selected scores only.
    items_out, scores_out = topk(
        np.ascontiguousarray(U[users]), np.ascontiguousarray(V), n, item_bias=item_bias,
        exclude=None if exclude is None else exclude[users],
    )  # fmt: skip
    if offset is not None:
        scores_out += offset[users][:, None]  # -inf padding stays -inf
    if kind is not NUMPY:
        return kind.wrap(items_out), kind.wrap(scores_out)
    return items_out, scores_out
