"""The bad-input table (issue #9): for every public op and model, inputs a hostile or careless user
passes, with the exception each must raise and a fragment of its message (the argument it names).
``expect=None`` marks an edge case that must succeed (empty and size-1 dimensions, views).

Every case also checks that the caller's arrays are left as they were. ``tests/test_bad_inputs.py``
runs the table in a child process (``python bad_inputs.py --serve``) that it restarts whenever a
case crashes it, so a segfault fails one case instead of the whole run.
"""

from __future__ import annotations

import json
import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

F32, F64 = np.float32, np.float64


@dataclass
class Case:
    id: str
    ops: tuple[str, ...]  # registry ops it runs (the backends that implement them run it)
    call: Callable[[str, dict], Any]  # (backend, inputs) -> result
    make: Callable[[], dict]  # the inputs, NumPy arrays and scalars
    expect: type | None  # the exception type, or None: must succeed
    match: str = ""  # a fragment of the message (usually the argument's name)
    modifies: bool = False  # the op may have written before raising (divergence, documented)


CASES: list[Case] = []


def case(id, ops, make, call, expect, match="", modifies=False):
    CASES.append(Case(id, tuple(ops), call, make, expect, match, modifies))


def rng():
    return np.random.default_rng(0)


def ro(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


# --- dense ------------------------------------------------------------------------------------
def dense_in(n=4, d=5, h=3, dt=F32):
    r = rng()
    return dict(x=r.standard_normal((n, d)).astype(dt), W=r.standard_normal((h, d)).astype(dt),
                b=r.standard_normal(h).astype(dt))  # fmt: skip


def dense_call(**over):
    def call(be, a):
        import recfast

        kw = {**{k: a[k] for k in ("x", "W", "b")}, **over}
        return recfast.dense(kw.pop("x"), kw.pop("W"), kw.pop("b"), backend=be, **kw)

    return call


def with_(make, **changes):
    def m():
        a = make()
        for k, f in changes.items():
            a[k] = f(a) if callable(f) else f
        return a

    return m


D = ("dense_forward",)
case("dense list x", D, with_(dense_in, x=lambda a: a["x"].tolist()), dense_call(), TypeError,
     "x must be an array")  # fmt: skip
case("dense int x", D, with_(dense_in, x=lambda a: a["x"].astype(np.int64)), dense_call(),
     TypeError, "x must have dtype")  # fmt: skip
case("dense float16 W", D, with_(dense_in, W=lambda a: a["W"].astype(np.float16)), dense_call(),
     TypeError, "W")  # fmt: skip
case("dense mixed dtype W", D, with_(dense_in, W=lambda a: a["W"].astype(F64)), dense_call(),
     TypeError, "convert W")  # fmt: skip
case("dense 3-D x", D, with_(dense_in, x=lambda a: a["x"][None]), dense_call(), ValueError, "x")
case("dense W wrong D", D, with_(dense_in, W=lambda a: a["W"][:, :4]), dense_call(), ValueError,
     "W")  # fmt: skip
case("dense b wrong length", D, with_(dense_in, b=lambda a: a["b"][:2]), dense_call(), ValueError,
     "b must have shape")  # fmt: skip
case("dense empty batch", D, lambda: dense_in(n=0), dense_call(), None)
case("dense size-1", D, lambda: dense_in(n=1, d=1, h=1), dense_call(), None)
case("dense non-contiguous x", D, with_(dense_in, x=lambda a: np.asfortranarray(a["x"])),
     dense_call(), None)  # fmt: skip
case("dense negative-stride x", D, with_(dense_in, x=lambda a: a["x"][::-1]), dense_call(), None)
case("dense read-only inputs", D, with_(dense_in, x=lambda a: ro(a["x"])), dense_call(), None)
case("dense out aliases b", D, dense_in,
     lambda be, a: __import__("recfast").dense(a["x"], a["W"], a["b"], out=a["b"].reshape(1, -1),
                                               backend=be),
     ValueError, "out")  # fmt: skip
case("dense out aliases x", D, lambda: dense_in(d=3),
     lambda be, a: __import__("recfast").dense(a["x"][:, :3], a["W"][:, :3], None,
                                               out=a["x"][:, :3], backend=be),
     ValueError, "share memory")  # fmt: skip
case("dense out read-only", D, dense_in,
     lambda be, a: __import__("recfast").dense(a["x"], a["W"], out=ro(np.zeros((4, 3), F32)),
                                               backend=be),
     ValueError, "read-only")  # fmt: skip
case("dense out wrong shape", D, dense_in,
     lambda be, a: __import__("recfast").dense(a["x"], a["W"], out=np.zeros((3, 4), F32),
                                               backend=be),
     ValueError, "out must have shape")  # fmt: skip
case("dense bad activation", D, dense_in, dense_call(activation="softmax"), ValueError,
     "activation")  # fmt: skip
case("dense num_threads 0", D, dense_in, dense_call(num_threads=0), ValueError, "num_threads")
case("dense num_threads float", D, dense_in, dense_call(num_threads=2.0), TypeError,
     "num_threads")  # fmt: skip
case("dense num_threads huge", D, dense_in, dense_call(num_threads=10**6), None)
case("dense num_threads 2**31-1", D, dense_in, dense_call(num_threads=2**31 - 1), None)
case("dense NaN and inf pass through", D,
     with_(dense_in, x=lambda a: np.where(a["x"] > 1, np.nan, np.where(a["x"] < -1, -np.inf,
                                                                       a["x"])).astype(F32)),
     dense_call(activation="relu"), None)  # fmt: skip


def dbwd_call(**over):
    def call(be, a):
        import recfast

        y = recfast.dense(a["x"], a["W"], a["b"], activation="sigmoid", backend=be)
        g = a.get("g", np.ones_like(y))
        kw = dict(output=a.get("output", y), activation="sigmoid", backend=be)
        kw.update(over)
        return recfast.dense_backward(g, a["x"], a["W"], **kw)

    return call


DB = ("dense_forward", "dense_backward")
case("dense_backward grad of transposed shape", DB,
     lambda: {**dense_in(n=4, h=3), "g": np.ones((3, 4), F32)}, dbwd_call(), ValueError,
     "grad_out must have shape")  # fmt: skip
case("dense_backward output of transposed shape", DB,
     lambda: {**dense_in(n=4, h=3), "output": np.ones((3, 4), F32)}, dbwd_call(), ValueError,
     "output must have shape")  # fmt: skip
case("dense_backward missing output", DB, dense_in, dbwd_call(output=None), ValueError, "output")
case("dense_backward bad needs", DB, dense_in, dbwd_call(needs=("x", "q")), ValueError, "needs")


# --- rnn --------------------------------------------------------------------------------------
def rnn_in(T=3, N=2, D=4, H=5, G=3, dt=F32):
    r = rng()
    return dict(
        xs=r.standard_normal((T, N, D)).astype(dt), h0=np.zeros((N, H), dt),
        x=r.standard_normal((N, D)).astype(dt), h=r.standard_normal((N, H)).astype(dt),
        c=r.standard_normal((N, H)).astype(dt),
        W=(0.3 * r.standard_normal((G * H, D))).astype(dt),
        U=(0.3 * r.standard_normal((G * H, H))).astype(dt),
        b=np.zeros(G * H, dt), b2=np.zeros(G * H, dt),
    )  # fmt: skip


def gru_fwd(**over):
    def call(be, a):
        import recfast

        p = {"W": a["W"], "U": a["U"], "b_ih": a["b"], "b_hh": a["b2"]}
        p.update(a.get("p", {}))
        kw = dict(cell="gru", backend=be)
        kw.update(over)
        return recfast.rnn_forward(a["xs"], a["h0"], p, **kw)

    return call


RF = ("rnn_forward",)
case("rnn_forward xs 2-D", RF, with_(rnn_in, xs=lambda a: a["xs"][0]), gru_fwd(), ValueError,
     "xs must be 3-D")  # fmt: skip
case("rnn_forward h0 wrong N", RF, with_(rnn_in, h0=lambda a: a["h0"][:1]), gru_fwd(),
     ValueError, "h0")  # fmt: skip
case("rnn_forward W wrong gates", RF, with_(rnn_in, W=lambda a: a["W"][:5]), gru_fwd(),
     ValueError, "params['W']")  # fmt: skip
case("rnn_forward unknown param", RF, with_(rnn_in, p={"V": np.zeros(3, F32)}), gru_fwd(),
     ValueError, "V")  # fmt: skip
case("rnn_forward lengths too long", RF, rnn_in, gru_fwd(lengths=np.array([4, 1])), ValueError,
     "lengths")  # fmt: skip
case("rnn_forward lengths negative", RF, rnn_in, gru_fwd(lengths=np.array([-1, 1])), ValueError,
     "lengths")  # fmt: skip
case("rnn_forward lengths float", RF, rnn_in, gru_fwd(lengths=np.array([1.0, 2.0])), TypeError,
     "lengths")  # fmt: skip
case("rnn_forward T=0", RF, with_(rnn_in, xs=lambda a: a["xs"][:0]), gru_fwd(), None)
case("rnn_forward N=0", RF, lambda: rnn_in(N=0), gru_fwd(), None)
case("rnn_forward bad cell", RF, rnn_in, gru_fwd(cell="transformer"), ValueError, "cell")
case("rnn_forward num_threads -1", RF, rnn_in, gru_fwd(num_threads=-1), ValueError,
     "num_threads")  # fmt: skip


def lstm_step_call(alias):
    def call(be, a):
        import recfast

        buf = np.empty_like(a["h"])
        kw = dict(out=buf, c_out=buf) if alias == "out" else dict(out=a["h"])
        return recfast.lstm_step(a["x"], a["h"], a["c"], a["W"], a["U"], a["b"], backend=be, **kw)

    return call


case("lstm_step out is c_out", RF, lambda: rnn_in(G=4), lstm_step_call("out"), ValueError,
     "share memory")  # fmt: skip
case("lstm_step out is h_prev", RF, lambda: rnn_in(G=4), lstm_step_call("h"), ValueError,
     "share memory")  # fmt: skip
case("gru_step 1-D vectors", RF, rnn_in,
     lambda be, a: __import__("recfast").gru_step(a["x"][0], a["h"][0], a["W"], a["U"], a["b"],
                                                  a["b2"], backend=be),
     None)  # fmt: skip
case("rnn_step mismatched vector ranks", RF, lambda: rnn_in(G=1),
     lambda be, a: __import__("recfast").rnn_step(a["x"][0], a["h"], a["W"], a["U"], a["b"],
                                                  backend=be),
     ValueError, "h_prev")  # fmt: skip


def bwd_with(modify):
    def call(be, a):
        import dataclasses

        import recfast

        p = {"W": a["W"], "U": a["U"], "b_ih": a["b"], "b_hh": a["b2"]}
        res = recfast.rnn_forward(a["xs"], a["h0"], p, cell="gru", lengths=np.array([3, 1]),
                                  return_cache=True, backend=be)  # fmt: skip
        cache = dataclasses.replace(res.cache, **modify(res.cache))
        return recfast.rnn_backward(np.ones_like(res.outputs), None, cache, p, backend=be)

    return call


RB = ("rnn_forward", "rnn_backward")
case("rnn_backward cache short gates", RB, rnn_in,
     bwd_with(lambda c: {"gates": c.gates[:, :, :4]}), ValueError, "cache.gates")  # fmt: skip
case("rnn_backward cache wrong lengths", RB, rnn_in,
     bwd_with(lambda c: {"lengths": np.array([9, 1])}), ValueError, "lengths")  # fmt: skip
case("rnn_backward cache wrong cell", RB, rnn_in, bwd_with(lambda c: {"cell": "lstm"}),
     ValueError, "cache")  # fmt: skip
case("rnn_backward cache short states", RB, rnn_in,
     bwd_with(lambda c: {"states": c.states[:2]}), ValueError, "cache.states")  # fmt: skip
case("rnn_backward cache gates None", RB, rnn_in, bwd_with(lambda c: {"gates": None}),
     ValueError, "cache.gates")  # fmt: skip


# --- conv2d and pooling -----------------------------------------------------------------------
def conv_in(n=2, h=6, w=5, c=2, co=3, k=3, dt=F32):
    r = rng()
    return dict(x=r.standard_normal((n, h, w, c)).astype(dt),
                w=r.standard_normal((k, k, c, co)).astype(dt), b=np.zeros(co, dt))  # fmt: skip


def conv_call(**over):
    def call(be, a):
        import recfast

        return recfast.conv2d(a["x"], a["w"], a["b"], backend=be, **over)

    return call


C = ("conv2d_forward",)
case("conv2d channels mismatch", C, with_(conv_in, w=lambda a: a["w"][:, :, :1]), conv_call(),
     ValueError, "channels")  # fmt: skip
case("conv2d kernel larger than image", C, lambda: conv_in(h=2, w=2), conv_call(), ValueError,
     "kernel larger")  # fmt: skip
case("conv2d padding 10**9", C, conv_in, conv_call(padding=10**9), ValueError, "padding")
case("conv2d negative padding", C, conv_in, conv_call(padding=-1), ValueError, "padding")
case("conv2d stride 0", C, conv_in, conv_call(stride=0), ValueError, "stride")
case("conv2d empty image", C, lambda: conv_in(h=0), conv_call(), ValueError, "non-empty")
case("conv2d empty batch", C, lambda: conv_in(n=0), conv_call(), None)
case("conv2d out aliases x", C, lambda: conv_in(c=3, k=1),
     lambda be, a: __import__("recfast").conv2d(a["x"], a["w"], out=a["x"], backend=be),
     ValueError, "share memory")  # fmt: skip
case("conv2d NCHW wrong rank w", C, conv_in, conv_call(layout="NCHW"), ValueError, "w")
case("conv2d negative-stride x", C, with_(conv_in, x=lambda a: a["x"][:, ::-1]), conv_call(),
     None)  # fmt: skip


def pool_in(n=1, h=4, w=4, c=3):
    return dict(x=rng().standard_normal((n, h, w, c)).astype(F32))


P = ("max_pool2d_forward",)
case("max_pool2d empty image, big C", P, lambda: pool_in(h=0, c=10**6),
     lambda be, a: __import__("recfast").max_pool2d(a["x"], 2, padding=1, backend=be),
     ValueError, "non-empty")  # fmt: skip
case("max_pool2d empty image", P, lambda: pool_in(h=0),
     lambda be, a: __import__("recfast").max_pool2d(a["x"], 2, padding=1, backend=be),
     ValueError, "non-empty")  # fmt: skip
case("max_pool2d padding over half", P, pool_in,
     lambda be, a: __import__("recfast").max_pool2d(a["x"], 2, padding=2, backend=be),
     ValueError, "padding")  # fmt: skip
case("max_pool2d zero channels", P, lambda: pool_in(c=0),
     lambda be, a: __import__("recfast").max_pool2d(a["x"], 2, backend=be), None)  # fmt: skip


def pool_bwd(idx):
    def call(be, a):
        import recfast

        out, ind = recfast.max_pool2d(a["x"], 2, backend=be)
        return recfast.max_pool2d_backward(np.ones_like(out), idx(ind), a["x"].shape, backend=be)

    return call


PB = ("max_pool2d_forward", "max_pool2d_backward")
case("max_pool2d_backward index out of range", PB, pool_in, pool_bwd(lambda i: i + 100),
     ValueError, "indices")  # fmt: skip
case("max_pool2d_backward negative index", PB, pool_in, pool_bwd(lambda i: i - 100), ValueError,
     "indices")  # fmt: skip
case("max_pool2d_backward float indices", PB, pool_in, pool_bwd(lambda i: i.astype(F32)),
     TypeError, "indices")  # fmt: skip
case("max_pool2d_backward indices shape", PB, pool_in, pool_bwd(lambda i: i[:, :1]), ValueError,
     "indices")  # fmt: skip


# --- matrix factorization ---------------------------------------------------------------------
def mf_in(nu=6, ni=5, nnz=20, k=3):
    r = rng()
    return dict(
        rows=r.integers(0, nu, nnz), cols=r.integers(0, ni, nnz),
        values=r.uniform(1, 5, nnz).astype(F32),
        U=(0.1 * r.standard_normal((nu, k))).astype(F32),
        V=(0.1 * r.standard_normal((ni, k))).astype(F32),
    )  # fmt: skip


def sgd_call(**over):
    def call(be, a):
        import recfast

        kw = dict(learning_rate=0.05, regularization=0.01, backend=be)
        kw.update(over)
        return recfast.sgd_mf_epoch(a["rows"], a["cols"], a["values"], a["U"], a["V"], **kw)

    return call


M = ("sgd_mf_epoch",)
case("sgd rows out of range", M, with_(mf_in, rows=lambda a: a["rows"] + 6), sgd_call(),
     ValueError, "rows")  # fmt: skip
case("sgd negative cols", M, with_(mf_in, cols=lambda a: a["cols"] - 5), sgd_call(), ValueError,
     "cols")  # fmt: skip
case("sgd int64 id 2**40", M, with_(mf_in, rows=lambda a: a["rows"] + 2**40), sgd_call(),
     ValueError, "rows")  # fmt: skip
case("sgd uint64 above int64", M,
     with_(mf_in, rows=lambda a: np.full(20, 2**63 + 5, np.uint64)), sgd_call(), ValueError,
     "rows")  # fmt: skip
case("sgd float rows", M, with_(mf_in, rows=lambda a: a["rows"].astype(F64)), sgd_call(),
     TypeError, "rows")  # fmt: skip
case("sgd float64 user_factors", M, with_(mf_in, U=lambda a: a["U"].astype(F64)), sgd_call(),
     TypeError, "user_factors has dtype float64 but values")  # fmt: skip
case("sgd Fortran factors", M, with_(mf_in, U=lambda a: np.asfortranarray(a["U"])), sgd_call(),
     ValueError, "C-contiguous")  # fmt: skip
case("sgd read-only factors", M, with_(mf_in, V=lambda a: ro(a["V"])), sgd_call(), ValueError,
     "read-only")  # fmt: skip
case("sgd factors alias", M, with_(mf_in, V=lambda a: a["U"][:5]), sgd_call(), ValueError,
     "share memory")  # fmt: skip
case("sgd NaN rating", M, with_(mf_in, values=lambda a: np.where(a["values"] > 4, np.nan,
                                                                 a["values"]).astype(F32)),
     sgd_call(), ValueError, "finite")  # fmt: skip
case("sgd length mismatch", M, with_(mf_in, cols=lambda a: a["cols"][:5]), sgd_call(),
     ValueError, "same length")  # fmt: skip
case("sgd empty", M, lambda: mf_in(nnz=0), sgd_call(), None)
case("sgd k=0 biases only", M, lambda: mf_in(k=0),
     lambda be, a: __import__("recfast").sgd_mf_epoch(
         a["rows"], a["cols"], a["values"], a["U"], a["V"], user_bias=np.zeros(6, F32),
         item_bias=np.zeros(5, F32), learning_rate=0.1, regularization=0.0, backend=be),
     None)  # fmt: skip
case("sgd num_threads huge", M, mf_in, sgd_call(num_threads=10**6), None)
case("sgd lr inf", M, mf_in, sgd_call(learning_rate=float("inf")), ValueError, "learning_rate")
case(
    "sgd diverges",
    M,
    mf_in,
    sgd_call(learning_rate=1e30),
    FloatingPointError,
    "diverged",
    modifies=True,
)  # documented: the factors are left as the diverged pass wrote them


def layout_call(**over):
    def call(be, a):
        import recfast

        kw = dict(backend=be)
        kw.update(over)
        return recfast.mf_block_layout(a["rows"], a["cols"], a["values"], kw.pop("n_users", 6), 5,
                                       kw.pop("n_blocks", 2), **kw)  # fmt: skip

    return call


L = ("mf_block_layout",)
case("layout rows beyond n_users", L, mf_in, layout_call(n_users=3), ValueError, "rows")
case("layout n_blocks 0", L, mf_in, layout_call(n_blocks=0), ValueError, "n_blocks")
case("layout n_blocks huge", L, mf_in, layout_call(n_blocks=10**6), ValueError, "n_blocks")
case("layout num_threads huge", L, mf_in, layout_call(num_threads=10**6), None)


# --- models -----------------------------------------------------------------------------------
def mf_model(**params):
    def call(be, a):
        import recfast

        m = recfast.MatrixFactorization(**{"factors": 3, "epochs": 2, "backend": be, **params})
        return m.fit((a["rows"], a["cols"], a["values"]))

    return call


MM = ("sgd_mf_epoch", "mf_block_layout")
case("MF factors 0", MM, mf_in, mf_model(factors=0), ValueError, "factors")
case("MF negative lr", MM, mf_in, mf_model(learning_rate=-1.0), ValueError, "learning_rate")
case("MF diverges", MM, mf_in, mf_model(learning_rate=1e30, solver="sgd"), FloatingPointError,
     "epoch 1")  # fmt: skip
case("MF num_threads huge", MM, mf_in, mf_model(num_threads=10**6), None)
case("MF id 10**12", MM, with_(mf_in, rows=lambda a: np.full(20, 10**12)), mf_model(),
     ValueError, "ids up to")  # fmt: skip
case("MF empty", MM, lambda: mf_in(nnz=0), mf_model(), ValueError, "empty")
case("MF numpy-int hyperparameters", MM, mf_in, mf_model(epochs=np.int64(2)), None)


def convnet(**params):
    def call(be, a):
        import recfast

        X = rng().standard_normal((6, 8, 8, 1)).astype(F32)
        y = np.arange(6) % 2
        kw = dict(n_classes=2, channels=(2, 2), hidden=4, epochs=1, batch_size=3, backend=be)
        kw.update(params)
        return recfast.models.ConvNet(**kw).fit(X, y)

    return call


CN = ("conv2d_forward", "conv2d_backward", "max_pool2d_forward", "dense_forward")
case("ConvNet epochs -1", CN, dict, convnet(epochs=-1), ValueError, "epochs")
case("ConvNet negative lr", CN, dict, convnet(lr=-0.1), ValueError, "lr")
case("ConvNet huge lr diverges", CN, dict, convnet(lr=1e30, epochs=3), FloatingPointError,
     "diverged")  # fmt: skip


def gru4rec(**params):
    def call(be, a):
        import recfast

        seqs = [np.arange(i % 5, i % 5 + 4) for i in range(12)]
        kw = dict(hidden=4, embedding=3, epochs=2, batch_size=4, backend=be)
        kw.update(params)
        return recfast.GRU4Rec(**kw).fit(seqs, n_items=10)

    return call


GR = ("rnn_forward", "rnn_backward", "dense_forward", "dense_backward")
case("GRU4Rec huge lr diverges", GR, dict, gru4rec(learning_rate=1e30), FloatingPointError,
     "diverged")  # fmt: skip
case("GRU4Rec hidden 0", GR, dict, gru4rec(hidden=0), ValueError, "hidden")
case("GRU4Rec item out of range", GR, dict,
     lambda be, a: __import__("recfast").GRU4Rec(backend=be).fit([np.array([1, 12])], n_items=10),
     ValueError, "outside")  # fmt: skip


# --- the child process ------------------------------------------------------------------------
def run_case(cid: str, backend: str) -> dict:
    c = next(x for x in CASES if x.id == cid)
    a = c.make()
    before = {k: np.array(v, copy=True) for k, v in a.items() if isinstance(v, np.ndarray)}
    try:
        c.call(backend, a)
    except Exception as exc:
        err = (type(exc).__name__, str(exc))
        if c.expect is None or not isinstance(exc, c.expect):
            return dict(status="fail", why=f"raised {err[0]}: {err[1]}",
                        tb=traceback.format_exc(limit=6))  # fmt: skip
        if c.match and c.match not in err[1]:
            return dict(status="fail", why=f"message {err[1]!r} does not name {c.match!r}")
        changed = [k for k, v in before.items() if not np.array_equal(a[k], v, equal_nan=True)]
        if changed and not c.modifies:
            return dict(status="fail", why=f"raised, but modified the caller's {changed}")
        return dict(status="ok")
    if c.expect is not None:
        return dict(status="fail", why=f"did not raise {c.expect.__name__}")
    return dict(status="ok")


# --- implicit feedback (issue 14): top-k, iALS, BPR and their estimators ----------------------
def implicit_in(n_users=6, n_items=5, k=3):
    rng = np.random.default_rng(0)
    dense = rng.random((n_users, n_items)) < 0.5
    dense[:, 0] = True
    return dict(
        indptr=np.concatenate([[0], np.cumsum(dense.sum(1))]).astype(np.int64),
        indices=np.nonzero(dense)[1].astype(np.int32),
        conf=np.full(int(dense.sum()), 2.0, F32),
        U=rng.standard_normal((n_users, k)).astype(F32),
        V=rng.standard_normal((n_items, k)).astype(F32),
    )


def topk_call(**over):
    def call(be, a):
        from recfast.implicit import topk

        kw = dict(n=2, exclude=(a["indptr"], a["indices"]), backend=be)
        kw.update(over)
        return topk(a["U"], a["V"], **kw)

    return call


def als_call(**over):
    def call(be, a):
        from recfast.implicit import als_half_sweep

        kw = dict(regularization=0.1, backend=be)
        kw.update(over)
        return als_half_sweep(a["indptr"], a["indices"], a["conf"], a["U"], a["V"], **kw)

    return call


def bpr_call(**over):
    def call(be, a):
        from recfast.implicit import bpr_epoch

        kw = dict(learning_rate=0.05, regularization=0.01, backend=be)
        kw.update(over)
        return bpr_epoch(a["indptr"], a["indices"], a["U"], a["V"], **kw)

    return call


T, A, B = ("topk",), ("als_half_sweep",), ("bpr_epoch",)
case("topk n=0", T, implicit_in, topk_call(n=0), ValueError, "n must be >= 1")
case("topk whitelist out of range", T, implicit_in, topk_call(items=[7]), ValueError, "items")
case("topk blacklist int64 2**40", T, implicit_in, topk_call(banned=np.array([2**40])),
     ValueError, "banned")  # fmt: skip
case("topk exclude out of range", T, with_(implicit_in, indices=lambda a: a["indices"] + 9),
     topk_call(), ValueError, "exclude_indices")  # fmt: skip
case("topk float64 items", T, with_(implicit_in, V=lambda a: a["V"].astype(F64)), topk_call(),
     TypeError, "item_factors has dtype float64")  # fmt: skip
case("topk n huge", T, implicit_in, topk_call(n=2**40), ValueError, "")
case("als indices out of range", A, with_(implicit_in, indices=lambda a: a["indices"] + 5),
     als_call(), ValueError, "indices")  # fmt: skip
case("als indptr decreasing", A, with_(implicit_in, indptr=lambda a: a["indptr"][::-1].copy()),
     als_call(), ValueError, "indptr")  # fmt: skip
case("als zero confidence", A, with_(implicit_in, conf=lambda a: a["conf"] * 0), als_call(),
     ValueError, "confidence")  # fmt: skip
case("als read-only X", A, with_(implicit_in, U=lambda a: ro(a["U"])), als_call(), ValueError,
     "read-only")  # fmt: skip
case("als singular", A, with_(implicit_in, V=lambda a: np.ones((5, 3), F32)),
     als_call(regularization=0.0, cg_steps=0), FloatingPointError, "singular")  # fmt: skip
case("bpr row_of mismatch", B, with_(implicit_in, indices=lambda a: a["indices"] - 1), bpr_call(),
     ValueError, "indices")  # fmt: skip
case("bpr num_threads huge", B, implicit_in, bpr_call(num_threads=10**6), None)
case("bpr diverges", B, with_(implicit_in, U=lambda a: a["U"] * 1e30, V=lambda a: a["V"] * 1e30),
     bpr_call(learning_rate=1e30, n_samples=1000), FloatingPointError, "BPR diverged",
     modifies=True)  # fmt: skip


def _implicit_model(cls, data_over=None, **kw):
    def call(be, a):
        import scipy.sparse as sp

        import recfast

        R = sp.csr_matrix((a["conf"], a["indices"], a["indptr"]), shape=(6, 5))
        if data_over is not None:
            R = data_over(R)
        return getattr(recfast, cls)(factors=3, iterations=2, backend=be, **kw).fit(R)

    return call


case("ImplicitALS dense input", A, implicit_in, _implicit_model("ImplicitALS", lambda R: R.toarray()),
     TypeError, "user_items must be a scipy.sparse")  # fmt: skip
case("ImplicitALS negative strength", A, implicit_in,
     _implicit_model("ImplicitALS", lambda R: -R), ValueError, "strengths >= 0")  # fmt: skip
case("BPR inf strength", B, implicit_in, _implicit_model("BPR", lambda R: R * np.inf),
     ValueError, "strengths")  # fmt: skip


def serve() -> None:
    import warnings

    warnings.simplefilter("ignore")  # the reference fall-back warning is not a failure here
    for line in sys.stdin:
        cid, backend = line.rstrip("\n").split("\t")
        res = run_case(cid, backend)
        sys.stdout.write(json.dumps(res) + "\n")
        sys.stdout.flush()


if __name__ == "__main__" and "--serve" in sys.argv:
    serve()
