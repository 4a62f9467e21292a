"""The tasks DSGD runs on the Dask workers: pure functions of their inputs.

Nothing here mutates an argument: a task that Dask re-runs (after a worker died, or because a
result was lost) gets the same inputs and returns the same output, which is what makes the fit
deterministic and recoverable. Factor blocks come in, new factor blocks go out.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

import numpy as np

# Block b of n rows is the rows r with r * p // n == b (the ranges mf_block_layout uses).


def bounds(n: int, p: int, b: int) -> tuple[int, int]:
    """``[lo, hi)`` of block ``b`` when ``n`` rows are cut into ``p`` blocks."""
    return -(-b * n // p), -(-(b + 1) * n // p)


def block_of(ids: np.ndarray, n: int, p: int) -> np.ndarray:
    """The block of each id (int64 arithmetic: ``ids * p`` overflows int32 at scale)."""
    return ids.astype(np.int64) * p // n


class Factors(NamedTuple):
    """One block of one side: ``factors (rows, k)``, ``bias``/``accum`` ``(rows,)`` or None."""

    factors: np.ndarray
    bias: np.ndarray | None
    accum: np.ndarray | None


class UserState(NamedTuple):
    """A user block and what its updates of this epoch add up: the training loss (sum of
    squared errors) and the seconds spent in the kernel."""

    block: Factors
    sse: float
    kernel_seconds: float


class Updated(NamedTuple):
    """The output of one block update: the new user state and the new item block."""

    user: UserState
    item: Factors


class RatingBlock(NamedTuple):
    """The ratings of one user block, sorted by item block: item block ``j`` spans
    ``[ptr[j], ptr[j+1])`` and is itself laid out by :func:`recfast.mf_block_layout` in
    ``sub[j]`` x ``sub[j]`` FPSGD sub-blocks (``sub_ptr[j]``, relative to ``ptr[j]``), so the
    kernel streams it as the single-machine fit streams its blocks. ``rows`` and ``cols`` are
    local to the user and item block."""

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    ptr: np.ndarray
    sub: tuple[int, ...]
    sub_ptr: tuple[np.ndarray, ...]


def sub_blocks(nnz: int, n_rows: int, n_cols: int, k: int, itemsize: int) -> int:
    """Sub-blocks per side for one (user block, item block): an item sub-block's factor rows
    fit in L2 (~256 KiB), a sub-block keeps a few hundred ratings (the single-machine rule on
    one thread)."""
    q = math.ceil(n_cols * k * itemsize / (256 * 1024))
    return int(max(1, min(q, math.isqrt(max(nnz // 256, 1)), n_rows, n_cols, 4096)))


class Hyper(NamedTuple):
    reg: float
    breg: float
    mu: float
    backend: str | None
    num_threads: int = 1  # threads of one block update (the sub-block schedule: same result)


def init_block(
    seed: int, side: int, b: int, rows: int, k: int, std: float, dtype: str, biases: bool,
    adagrad: bool,
) -> Factors:  # fmt: skip
    """Initial factors of block ``b`` (``side`` 0: users, 1: items), seeded by the block alone,
    so that any worker, at any time, draws the same block."""
    rng = np.random.default_rng([seed, side, b])
    dt = np.dtype(dtype)
    f = (rng.standard_normal((rows, k)) * std).astype(dt)
    bias = np.zeros(rows, dt) if biases else None
    accum = np.ones(rows, dt) if adagrad else None
    return Factors(f, bias, accum)


def split_partition(
    part: Any, columns: tuple[str, str, str], p: int, n_users: int, dtype: str
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Cut one dataframe partition into the ratings of each user block."""
    u = np.asarray(part[columns[0]].to_numpy(), dtype=np.int64)
    i = np.asarray(part[columns[1]].to_numpy(), dtype=np.int64)
    r = np.asarray(part[columns[2]].to_numpy(), dtype=np.dtype(dtype))
    blk = block_of(u, n_users, p)
    order = np.argsort(blk, kind="stable")
    cuts = np.searchsorted(blk[order], np.arange(p + 1))
    return [
        (u[order[cuts[b] : cuts[b + 1]]], i[order[cuts[b] : cuts[b + 1]]],
         r[order[cuts[b] : cuts[b + 1]]])
        for b in range(p)
    ]  # fmt: skip


def piece(split: list[Any], b: int) -> Any:
    return split[b]


def layout(
    b: int, p: int, n_users: int, n_items: int, seed: int, k: int, *pieces: tuple[Any, Any, Any]
) -> RatingBlock:
    """Lay user block ``b``'s ratings out once per fit, on the worker that owns the block: by
    item block, then each (b, j) block in FPSGD sub-blocks (users ascending, one user's
    ratings in a seeded random order)."""
    from recfast.mf import mf_block_layout

    if pieces:
        u = np.concatenate([pc[0] for pc in pieces]).astype(np.int64, copy=False)
        i = np.concatenate([pc[1] for pc in pieces]).astype(np.int64, copy=False)
        v = np.concatenate([pc[2] for pc in pieces])
    else:
        u = i = np.zeros(0, np.int64)
        v = np.zeros(0, np.float32)
    ulo, uhi = bounds(n_users, p, b)
    jb = block_of(i, n_items, p)
    order = np.argsort(jb, kind="stable")
    jb = jb[order]
    ilo = np.array([bounds(n_items, p, j)[0] for j in range(p)], np.int64)
    rows = (u[order] - ulo).astype(np.int32)
    cols = (i[order] - ilo[jb]).astype(np.int32)
    v = np.ascontiguousarray(v[order])
    ptr = np.searchsorted(jb, np.arange(p + 1)).astype(np.int64)
    subs, sub_ptrs = [], []
    for j in range(p):
        s, e = int(ptr[j]), int(ptr[j + 1])
        n_cols = int(bounds(n_items, p, j)[1] - ilo[j])
        q = sub_blocks(e - s, uhi - ulo, n_cols, k, v.dtype.itemsize)
        if e > s:
            sj = int(np.random.default_rng([seed, 3, b, j]).integers(2**63))
            rows[s:e], cols[s:e], v[s:e], bp = mf_block_layout(
                rows[s:e], cols[s:e], v[s:e], uhi - ulo, n_cols, q, seed=sj, num_threads=1
            )
        else:
            bp = np.zeros(q * q + 1, np.int64)
        subs.append(q)
        sub_ptrs.append(bp)
    return RatingBlock(rows, cols, v, ptr, tuple(subs), tuple(sub_ptrs))


def update(
    user: Factors | Updated, item: Factors | Updated, ratings: RatingBlock, j: int,
    lr: float, hp: Hyper, first: bool,
) -> Updated:  # fmt: skip
    """One DSGD block update: the native ``sgd_mf_epoch`` over the ratings of (user block, item
    block ``j``) in their FPSGD sub-block layout (deterministic for any thread count), on copies
    of the blocks.
    ``first``: the epoch's first update of this user block (its loss starts at 0)."""
    from recfast.mf import sgd_mf_epoch

    if isinstance(user, Updated):
        user = user.user
    if first or isinstance(user, Factors):
        user = UserState(user if isinstance(user, Factors) else user.block, 0.0, 0.0)
    if isinstance(item, Updated):
        item = item.item
    ub, ib = user.block, item
    U, V = ub.factors.copy(), ib.factors.copy()
    bu, bi = (None, None) if ub.bias is None else (ub.bias.copy(), ib.bias.copy())
    au, ai = (None, None) if ub.accum is None else (ub.accum.copy(), ib.accum.copy())
    s, e = int(ratings.ptr[j]), int(ratings.ptr[j + 1])
    sse, t = 0.0, time.perf_counter()
    if e > s:
        sse = sgd_mf_epoch(
            ratings.rows[s:e], ratings.cols[s:e], ratings.values[s:e], U, V, user_bias=bu,
            item_bias=bi, global_mean=hp.mu, learning_rate=lr, regularization=hp.reg,
            bias_regularization=hp.breg, user_accum=au, item_accum=ai,
            block_ptr=ratings.sub_ptr[j], n_blocks=ratings.sub[j], num_threads=hp.num_threads,
            backend=hp.backend,
        )  # fmt: skip
    dt = time.perf_counter() - t
    return Updated(
        UserState(Factors(U, bu, au), user.sse + sse, user.kernel_seconds + dt),
        Factors(V, bi, ai),
    )


def item_of(out: Updated) -> Factors:
    return out.item


def user_of(out: Updated | Factors) -> Factors:
    return out.user.block if isinstance(out, Updated) else out


def loss_of(out: Updated | UserState) -> tuple[float, float]:
    st = out.user if isinstance(out, Updated) else out
    return st.sse, st.kernel_seconds


def save_block(block: Factors | Updated, path: str) -> str:
    """Write one factor block atomically (a crash mid-write leaves the previous file)."""
    from recfast.models import _io

    if isinstance(block, Updated):
        block = block.user.block

    arrays = {"factors": block.factors}
    if block.bias is not None:
        arrays["bias"] = block.bias
    if block.accum is not None:
        arrays["accum"] = block.accum
    _io.save_npz(path, {"model": "DSGDBlock", "format_version": 1}, arrays)
    return path


def load_block(path: str, rows: int, k: int, dtype: str, biases: bool, adagrad: bool) -> Factors:
    """Read a block written by :func:`save_block`, checking its shapes and dtype."""
    from recfast.models import _io

    _, arrays = _io.load_npz(path, "DSGDBlock", 1)
    dt = np.dtype(dtype)
    f = _io.field(path, arrays, "factors", (rows, k), dtype=dt)
    bias = _io.field(path, arrays, "bias", (rows,), dtype=dt) if biases else None
    accum = _io.field(path, arrays, "accum", (rows,), dtype=dt) if adagrad else None
    return Factors(np.array(f), None if bias is None else np.array(bias),
                   None if accum is None else np.array(accum))  # fmt: skip
