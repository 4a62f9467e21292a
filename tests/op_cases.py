"""One small call of every public op, written once and run with any array kind.

``CASES`` maps a name to ``(make, call)``: ``make(rng, dtype)`` builds NumPy inputs (a dict),
``call(a, backend)`` runs the op on the dict's arrays (converted to a kind by the caller) and
returns a flat dict of results (arrays, or Python floats), including arrays updated in place.
Used by the array-kind tests (PyTorch tensors on the host backends) and the array-API tests
(array_api_strict on the reference).
"""

from __future__ import annotations

import numpy as np

import recfast
import recfast.implicit


def _f(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


# --- mf ---------------------------------------------------------------------------------------
def make_mf(rng, dtype):
    nu, ni, nnz, k = 6, 5, 40, 4
    return dict(
        rows=rng.integers(0, nu, nnz).astype(np.int64),
        cols=rng.integers(0, ni, nnz).astype(np.int64),
        values=rng.uniform(1, 5, nnz).astype(dtype),
        U=_f(rng, (nu, k), dtype, 0.1),
        V=_f(rng, (ni, k), dtype, 0.1),
        ub=_f(rng, nu, dtype, 0.1),
        ib=_f(rng, ni, dtype, 0.1),
    )


def call_sgd(a, backend):
    sse = recfast.sgd_mf_epoch(
        a["rows"], a["cols"], a["values"], a["U"], a["V"], user_bias=a["ub"], item_bias=a["ib"],
        global_mean=3.0, learning_rate=0.05, regularization=0.02, num_threads=1, backend=backend,
    )  # fmt: skip
    return dict(sse=sse, U=a["U"], V=a["V"], ub=a["ub"], ib=a["ib"])


def call_layout(a, backend):
    r, c, v, bp = recfast.mf_block_layout(
        a["rows"], a["cols"], a["values"], 6, 5, 2, seed=3, num_threads=1, backend=backend
    )
    return dict(rows=r, cols=c, values=v, block_ptr=bp)


# --- dense ------------------------------------------------------------------------------------
def make_dense(rng, dtype):
    x, W, b = _f(rng, (5, 7), dtype), _f(rng, (4, 7), dtype), _f(rng, 4, dtype)
    return dict(x=x, W=W, b=b, out=np.full((5, 4), np.nan, dtype), g=_f(rng, (5, 4), dtype))


def call_dense(a, backend):
    y = recfast.dense(a["x"], a["W"], a["b"], activation="relu", backend=backend)
    y2 = recfast.dense(a["x"], a["W"], a["b"], activation="tanh", out=a["out"], backend=backend)
    return dict(y=y, y_out=y2, out=a["out"])


def call_dense_backward(a, backend):
    y = recfast.dense(a["x"], a["W"], a["b"], activation="sigmoid", backend=backend)
    gx, gW, gb = recfast.dense_backward(
        a["g"], a["x"], a["W"], output=y, activation="sigmoid", backend=backend
    )
    return dict(gx=gx, gW=gW, gb=gb)


# --- rnn --------------------------------------------------------------------------------------
def make_rnn(rng, dtype):
    T, N, D, H = 4, 3, 5, 6
    return dict(
        x=_f(rng, (N, D), dtype), h=_f(rng, (N, H), dtype, 0.5), c=_f(rng, (N, H), dtype, 0.5),
        W1=_f(rng, (H, D), dtype, 0.4), U1=_f(rng, (H, H), dtype, 0.4), b1=_f(rng, H, dtype, 0.1),
        W3=_f(rng, (3 * H, D), dtype, 0.4), U3=_f(rng, (3 * H, H), dtype, 0.4),
        b3=_f(rng, 3 * H, dtype, 0.1), b3h=_f(rng, 3 * H, dtype, 0.1),
        W4=_f(rng, (4 * H, D), dtype, 0.4), U4=_f(rng, (4 * H, H), dtype, 0.4),
        b4=_f(rng, 4 * H, dtype, 0.1), V=_f(rng, (2, H), dtype), cv=_f(rng, 2, dtype),
        xs=_f(rng, (T, N, D), dtype), h0=_f(rng, (N, H), dtype, 0.5),
        lengths=np.array([4, 1, 3], np.int64), go=_f(rng, (T, N, H), dtype),
        gh=_f(rng, (N, H), dtype), out=np.full((N, H), np.nan, dtype),
        c_out=np.full((N, H), np.nan, dtype),
    )  # fmt: skip


def call_steps(a, backend):
    h1 = recfast.rnn_step(a["x"], a["h"], a["W1"], a["U1"], a["b1"], backend=backend)
    h3 = recfast.gru_step(a["x"], a["h"], a["W3"], a["U3"], a["b3"], a["b3h"], backend=backend)
    h4, c4 = recfast.lstm_step(
        a["x"], a["h"], a["c"], a["W4"], a["U4"], a["b4"], out=a["out"], c_out=a["c_out"],
        backend=backend,
    )  # fmt: skip
    y = recfast.rnn_output(a["h"], a["V"], a["cv"], activation="sigmoid", backend=backend)
    return dict(rnn=h1, gru=h3, lstm_h=h4, lstm_c=c4, out=a["out"], c_out=a["c_out"], y=y)


def call_sequences(a, backend):
    res = {}
    for cell, p in (
        ("gru", {"W": a["W3"], "U": a["U3"], "b_ih": a["b3"], "b_hh": a["b3h"]}),
        ("lstm", {"W": a["W4"], "U": a["U4"], "b": a["b4"]}),
        ("rnn", {"W": a["W1"], "U": a["U1"], "b": a["b1"]}),
    ):
        f = recfast.rnn_forward(
            a["xs"], a["h0"], p, cell=cell, lengths=a["lengths"], return_cache=True,
            backend=backend,
        )  # fmt: skip
        res[f"{cell}_out"], res[f"{cell}_h"] = f.outputs, f.h_last
        if f.c_last is not None:
            res[f"{cell}_c"] = f.c_last
        g = recfast.rnn_backward(a["go"], a["gh"], f.cache, p, backend=backend)
        for key, v in g.items():
            res[f"{cell}_d{key}"] = v
    return res


# --- conv2d -----------------------------------------------------------------------------------
def make_conv(rng, dtype):
    x, w, b = _f(rng, (2, 6, 5, 3), dtype), _f(rng, (3, 3, 3, 4), dtype), _f(rng, 4, dtype)
    return dict(x=x, w=w, b=b, g=_f(rng, (2, 6, 5, 4), dtype), gp=_f(rng, (2, 4, 2, 3), dtype))


def call_conv(a, backend):
    y = recfast.conv2d(a["x"], a["w"], a["b"], padding="same", activation="relu",
                       backend=backend)  # fmt: skip
    gx, gw, gb = recfast.conv2d_backward(
        a["g"], a["x"], a["w"], padding="same", activation="relu", output=y, backend=backend
    )
    return dict(y=y, gx=gx, gw=gw, gb=gb)


def call_pool(a, backend):
    out, idx = recfast.max_pool2d(a["x"], 2, padding=(1, 0), backend=backend)
    gx = recfast.max_pool2d_backward(a["gp"], idx, a["x"].shape, backend=backend)
    return dict(out=out, idx=idx, gx=gx)


# --- implicit (host-only ops: NumPy and PyTorch CPU) -------------------------------------------
def make_implicit(rng, dtype):
    n_users, n_items, k = 6, 9, 4
    dense = rng.random((n_users, n_items)) < 0.4
    dense[:, 0] = True  # every row has a positive
    indptr = np.concatenate([[0], np.cumsum(dense.sum(axis=1))]).astype(np.int64)
    indices = np.nonzero(dense)[1].astype(np.int64)
    return dict(
        indptr=indptr,
        indices=indices,
        conf=(1 + 2 * rng.random(len(indices))).astype(dtype),
        U=_f(rng, (n_users, k), dtype, 0.3),
        V=_f(rng, (n_items, k), dtype, 0.3),
        ib=_f(rng, n_items, dtype, 0.1),
    )


def call_topk(a, backend):
    ids, scores = recfast.implicit.topk(
        a["U"], a["V"], 3, item_bias=a["ib"], exclude=(a["indptr"], a["indices"]),
        backend=backend,
    )  # fmt: skip
    return dict(ids=ids, scores=scores)


def call_als(a, backend):
    recfast.implicit.als_half_sweep(
        a["indptr"], a["indices"], a["conf"], a["U"], a["V"], regularization=0.1, backend=backend
    )
    return dict(U=a["U"])


def call_bpr(a, backend):
    r = recfast.implicit.bpr_epoch(
        a["indptr"], a["indices"], a["U"], a["V"], item_bias=a["ib"], learning_rate=0.05,
        regularization=0.01, n_samples=50, seed=1, num_threads=1, backend=backend,
    )  # fmt: skip
    return dict(loss=r.loss, correct=r.correct, U=a["U"], V=a["V"], ib=a["ib"])


CASES = {
    "sgd_mf_epoch": (make_mf, call_sgd),
    "mf_block_layout": (make_mf, call_layout),
    "dense": (make_dense, call_dense),
    "dense_backward": (make_dense, call_dense_backward),
    "rnn steps": (make_rnn, call_steps),
    "rnn sequences": (make_rnn, call_sequences),
    "conv2d": (make_conv, call_conv),
    "max_pool2d": (make_conv, call_pool),
    "topk": (make_implicit, call_topk),
    "als_half_sweep": (make_implicit, call_als),
    "bpr_epoch": (make_implicit, call_bpr),
}

# The registry ops each case exercises (a test checks that every op is covered).
COVERS = {
    "sgd_mf_epoch": ("sgd_mf_epoch",),
    "mf_block_layout": ("mf_block_layout",),
    "dense": ("dense_forward",),
    "dense_backward": ("dense_forward", "dense_backward"),
    "rnn steps": ("rnn_forward", "dense_forward"),
    "rnn sequences": ("rnn_forward", "rnn_backward"),
    "conv2d": ("conv2d_forward", "conv2d_backward"),
    "max_pool2d": ("max_pool2d_forward", "max_pool2d_backward"),
    "topk": ("topk",),
    "als_half_sweep": ("als_half_sweep",),
    "bpr_epoch": ("bpr_epoch",),
}

# Ops that take host arrays only (NumPy, PyTorch CPU): the array-API tests skip them.
HOST_ONLY = {"topk", "als_half_sweep", "bpr_epoch"}
