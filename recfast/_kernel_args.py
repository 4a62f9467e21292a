"""One named argument structure per op: what the public function hands every backend, after
validation. Each mirrors the C++ structure of ``csrc/include/recfast/<family>.hpp`` (field for
field where the C++ has one), so a backend is ``def op(a: OpArgs)`` and the positional order of
a kernel's 10-20 arguments is written out once, in its binding.

Arrays are in the kind's kernel form (NumPy for the host backends), already checked: dtypes agree,
shapes match, outputs are C-contiguous and writable, index arrays lie in range.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Array = Any  # an array of the call's namespace


# --- mf: csrc/include/recfast/mf.hpp (SgdMfArgs + SgdMfParams, LayoutArgs) -------------------
class SgdMfArgs(NamedTuple):
    rows: Array  # (nnz,) int32/int64
    cols: Array  # (nnz,) same dtype as rows
    values: Array  # (nnz,) float
    user_factors: Array  # (n_users, k), updated in place
    item_factors: Array  # (n_items, k), updated in place
    user_bias: Array | None  # (n_users,) or None, updated in place
    item_bias: Array | None
    user_accum: Array | None  # (n_users,) AdaGrad accumulators or None, updated in place
    item_accum: Array | None
    order: Array | None  # (n_order,) int64 indices into the ratings, or None
    block_ptr: Array | None  # (n_blocks**2 + 1,) int64 (mf_block_layout), or None
    n_blocks: int
    learning_rate: float
    regularization: float
    bias_regularization: float
    global_mean: float
    num_threads: int


class BlockLayoutArgs(NamedTuple):
    rows: Array
    cols: Array
    values: Array
    n_users: int
    n_items: int
    n_blocks: int
    seed: int | None  # None: keep each user's input order within a block
    num_threads: int


# --- dense: csrc/include/recfast/activation.hpp (the fused bias + activation epilogue) -------
class DenseArgs(NamedTuple):
    x: Array  # (N, D)
    W: Array  # (H, D)
    b: Array | None  # (H,)
    activation: str | None
    out: Array  # (N, H), written
    num_threads: int


class DenseBackwardArgs(NamedTuple):
    grad_out: Array  # (N, H)
    x: Array  # (N, D)
    W: Array  # (H, D)
    output: Array | None  # (N, H) the forward result, when activation is not None
    activation: str | None
    needs: tuple[str, ...]  # of "x", "W", "b"
    num_threads: int


# --- rnn: csrc/include/recfast/rnn.hpp (RnnShape + RnnForwardArgs / RnnBackwardArgs) --------
class RnnForwardArgs(NamedTuple):
    cell: str  # "rnn", "gru", "lstm"
    activation: str | None  # the plain RNN's f
    xs: Array  # (T, N, D)
    h0: Array  # (N, H)
    c0: Array | None  # (N, H), LSTM
    W: Array  # (G H, D)
    U: Array  # (G H, H)
    b_ih: Array | None  # (G H,)
    b_hh: Array | None  # (G H,), GRU
    lengths: Array | None  # (N,) int64 in [0, T]
    out: Array | None  # (T, N, H), written
    h_last: Array  # (N, H), written
    c_last: Array | None
    states: Array | None  # BPTT cache (T + 1, N, H), all three or none
    cells: Array | None
    gates: Array | None  # (T, N, 4H) (GRU, LSTM)
    num_threads: int


class RnnBackwardArgs(NamedTuple):
    cell: str
    activation: str | None
    xs: Array
    W: Array
    U: Array
    lengths: Array | None
    states: Array
    cells: Array | None
    gates: Array | None
    grad_out: Array | None
    grad_h_last: Array | None
    grad_c_last: Array | None
    grad_xs: Array | None  # outputs, each written when given
    grad_h0: Array | None
    grad_c0: Array | None
    grad_W: Array | None
    grad_U: Array | None
    grad_b_ih: Array | None
    grad_b_hh: Array | None
    num_threads: int


# --- conv2d: csrc/include/recfast/conv2d.hpp (Conv2dShape, Pool2dShape) ----------------------
class Conv2dGeometry(NamedTuple):
    """Strides, dilations, the four paddings and the output's spatial size."""

    sh: int
    sw: int
    dh: int
    dw: int
    pt: int
    pb: int
    pl: int
    pr: int
    oh: int
    ow: int


class Pool2dGeometry(NamedTuple):
    """Window, stride, padding (symmetric) and output size of a 2-D pooling."""

    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    oh: int
    ow: int


class Conv2dArgs(NamedTuple):
    x: Array  # (N, H, W, C)
    w: Array  # (KH, KW, C, C_out)
    bias: Array | None  # (C_out,)
    geom: Conv2dGeometry
    activation: str | None
    out: Array  # (N, OH, OW, C_out), written
    num_threads: int


class Conv2dBackwardArgs(NamedTuple):
    grad_out: Array  # (N, OH, OW, C_out)
    x: Array
    w: Array
    output: Array | None  # the forward result, when activation is not None
    activation: str | None
    geom: Conv2dGeometry
    needs: tuple[str, ...]  # of "x", "w", "bias"
    num_threads: int


class Pool2dArgs(NamedTuple):
    x: Array  # (N, H, W, C)
    geom: Pool2dGeometry
    out: Array  # (N, OH, OW, C), written
    indices: Array  # (N, OH, OW, C) int64, written
    num_threads: int


class Pool2dBackwardArgs(NamedTuple):
    grad_out: Array  # (N, OH, OW, C)
    indices: Array  # (N, OH, OW, C) int64 in [0, H * W)
    grad_x: Array  # (N, H, W, C), written
    num_threads: int


# --- implicit: csrc/include/recfast/implicit.hpp (TopkArgs, AlsArgs, BprArgs) -----------------
class TopkArgs(NamedTuple):
    user_factors: Array  # (m, k) the query rows (already gathered)
    item_factors: Array  # (n_items, k)
    item_bias: Array | None  # (n_items,)
    items: Array | None  # (n_candidates,) int64 whitelist, or None: every item
    banned: Array | None  # (n_items,) uint8 mask, or None
    exclude_indptr: Array | None  # (m + 1,) int64 CSR of items excluded per query row
    exclude_indices: Array | None  # int32/int64 item ids
    n: int
    out_items: Array  # (m, n) int64, written
    out_scores: Array  # (m, n), written
    num_threads: int


class AlsArgs(NamedTuple):
    indptr: Array  # (n_rows + 1,) int64
    indices: Array  # (nnz,) int32/int64 rows of Y
    confidence: Array  # (nnz,) c_ui > 0
    X: Array  # (n_rows, k), updated in place
    Y: Array  # (n_cols, k)
    gram: Array | None  # (k, k) Y^T Y when cached, or None: computed
    rows: Array | None  # (n_solve,) int64 rows of X to solve, or None: all
    regularization: float
    cg_steps: int  # 0: exact Cholesky
    num_threads: int


class BprArgs(NamedTuple):
    indptr: Array  # (n_users + 1,) int64
    indices: Array  # (nnz,) int32/int64, sorted within each row
    row_of: Array  # (nnz,) same dtype: each entry's row
    user_factors: Array  # (n_users, k), updated in place
    item_factors: Array  # (n_items, k), updated in place
    item_bias: Array | None  # (n_items,), updated in place
    n_samples: int
    learning_rate: float
    regularization: float
    seed: int  # uint64
    popularity: bool  # negatives by popularity (implicit's sampler) instead of uniformly
    num_threads: int
