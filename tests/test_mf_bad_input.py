"""Bad input to sgd_mf_epoch / mf_block_layout: a clear TypeError or ValueError naming the argument,
on every backend, and nothing modified (issue #2, section 5)."""

import numpy as np
import pytest
from conftest import MF_BACKENDS

import recfast
from recfast.testing import random_mf_problem


def base_args():
    p = random_mf_problem(6, 5, 20, 3, dtype=np.float32, seed=0)
    return dict(
        rows=p.rows,
        cols=p.cols,
        values=p.values,
        user_factors=p.user_factors,
        item_factors=p.item_factors,
        user_bias=p.user_bias,
        item_bias=p.item_bias,
        learning_rate=0.1,
        regularization=0.1,
    )


CASES = [
    # (id, mutation of the argument dict, exception, message fragment)
    ("values-object", lambda a: {**a, "values": a["values"].astype(object)}, TypeError, "values"),
    ("values-int", lambda a: {**a, "values": a["values"].astype(np.int64)}, TypeError, "values"),
    (
        "values-float16",
        lambda a: {**a, "values": a["values"].astype(np.float16)},
        TypeError,
        "values",
    ),
    (
        "values-float64-vs-float32",
        lambda a: {**a, "values": a["values"].astype(np.float64)},
        TypeError,
        "values",
    ),
    (
        "factors-float16",
        lambda a: {**a, "user_factors": a["user_factors"].astype(np.float16)},
        TypeError,
        "user_factors",
    ),
    (
        "factors-int",
        lambda a: {**a, "item_factors": a["item_factors"].astype(np.int32)},
        TypeError,
        "item_factors",
    ),
    (
        "factors-list",
        lambda a: {**a, "user_factors": a["user_factors"].tolist()},
        TypeError,
        "user_factors",
    ),
    (
        "factors-rank",
        lambda a: {**a, "user_factors": a["user_factors"].ravel()},
        ValueError,
        "user_factors",
    ),
    ("values-rank", lambda a: {**a, "values": a["values"][:, None]}, ValueError, "values"),
    ("rows-rank", lambda a: {**a, "rows": a["rows"][:, None]}, ValueError, "rows"),
    ("rows-float", lambda a: {**a, "rows": a["rows"].astype(np.float64)}, TypeError, "rows"),
    ("length-mismatch", lambda a: {**a, "cols": a["cols"][:-1]}, ValueError, "same length"),
    (
        "rows-negative",
        lambda a: {**a, "rows": np.where(np.arange(20) == 3, -1, a["rows"])},
        ValueError,
        "rows",
    ),
    (
        "rows-too-large",
        lambda a: {**a, "rows": np.where(np.arange(20) == 3, 6, a["rows"])},
        ValueError,
        "rows",
    ),
    ("cols-too-large", lambda a: {**a, "cols": np.full(20, 2**40, np.int64)}, ValueError, "cols"),
    (
        "k-mismatch",
        lambda a: {**a, "item_factors": np.zeros((5, 4), np.float32)},
        ValueError,
        "same number of factors",
    ),
    (
        "non-contiguous",
        lambda a: {**a, "user_factors": np.zeros((6, 6), np.float32)[:, ::2]},
        ValueError,
        "C-contiguous",
    ),
    (
        "fortran",
        lambda a: {**a, "user_factors": np.asfortranarray(np.zeros((6, 3), np.float32))},
        ValueError,
        "C-contiguous",
    ),
    (
        "read-only",
        lambda a: {**a, "item_factors": readonly(a["item_factors"])},
        ValueError,
        "read-only",
    ),
    (
        "nan-rating",
        lambda a: {
            **a,
            "values": np.where(np.arange(20) == 5, np.nan, a["values"]).astype(np.float32),
        },
        ValueError,
        "finite",
    ),
    (
        "inf-rating",
        lambda a: {
            **a,
            "values": np.where(np.arange(20) == 5, np.inf, a["values"]).astype(np.float32),
        },
        ValueError,
        "finite",
    ),
    ("bias-length", lambda a: {**a, "user_bias": np.zeros(5, np.float32)}, ValueError, "user_bias"),
    ("bias-one-only", lambda a: {**a, "item_bias": None}, ValueError, "user_bias"),
    ("bias-dtype", lambda a: {**a, "item_bias": np.zeros(5)}, TypeError, "item_bias"),
    ("lr-zero", lambda a: {**a, "learning_rate": 0.0}, ValueError, "learning_rate"),
    ("lr-nan", lambda a: {**a, "learning_rate": float("nan")}, ValueError, "learning_rate"),
    ("lr-str", lambda a: {**a, "learning_rate": "0.1"}, TypeError, "learning_rate"),
    ("reg-negative", lambda a: {**a, "regularization": -1.0}, ValueError, "regularization"),
    ("order-out-of-range", lambda a: {**a, "order": np.array([0, 20])}, ValueError, "order"),
    ("num-threads-zero", lambda a: {**a, "num_threads": 0}, ValueError, "num_threads"),
    (
        "accum-nonpositive",
        lambda a: {
            **a,
            "user_accum": np.zeros(6, np.float32),
            "item_accum": np.ones(5, np.float32),
        },
        ValueError,
        "accum",
    ),
    (
        "block-ptr-bad",
        lambda a: {**a, "block_ptr": np.array([0, 5]), "n_blocks": 1},
        ValueError,
        "block_ptr",
    ),
    ("same-memory", lambda a: {**a, "item_factors": a["user_factors"]}, ValueError, "share memory"),
]


def readonly(x):
    x = x.copy()
    x.flags.writeable = False
    return x


@pytest.mark.parametrize("backend", MF_BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_and_modifies_nothing(backend, case):
    _, change, exc, fragment = case
    args = change(base_args())
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    with pytest.raises(exc, match=fragment):
        recfast.sgd_mf_epoch(backend=backend, **args)
    for k, v in before.items():
        np.testing.assert_array_equal(args[k], v, err_msg=f"{k} was modified")


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        recfast.sgd_mf_epoch(backend="tpu", **base_args())


def test_layout_bad_input():
    p = random_mf_problem(6, 5, 20, 3, seed=0)
    with pytest.raises(ValueError, match="rows"):
        recfast.mf_block_layout(p.rows + 6, p.cols, p.values, 6, 5, 2)
    with pytest.raises(ValueError, match="n_blocks"):
        recfast.mf_block_layout(p.rows, p.cols, p.values, 6, 5, 0)
    with pytest.raises(ValueError, match="seed"):
        recfast.mf_block_layout(p.rows, p.cols, p.values, 6, 5, 2, seed=-1)


def test_native_binding_checks_ranges_itself():
    """recfast._cpu can be imported directly: it must reject a bad index rather than crash."""
    cpu = pytest.importorskip("recfast._cpu")
    a = base_args()
    rows = a["rows"].copy()
    rows[0] = 1000
    with pytest.raises(ValueError, match="rows"):
        cpu.sgd_mf_epoch(
            rows,
            a["cols"],
            a["values"],
            a["user_factors"],
            a["item_factors"],
            learning_rate=0.1,
            regularization=0.1,
            bias_regularization=0.1,
            global_mean=0.0,
        )
    with pytest.raises(TypeError):  # int64 rows with int32 cols: no silent conversion
        cpu.sgd_mf_epoch(
            a["rows"].astype(np.int64),
            a["cols"],
            a["values"],
            a["user_factors"],
            a["item_factors"],
            learning_rate=0.1,
            regularization=0.1,
            bias_regularization=0.1,
            global_mean=0.0,
        )
