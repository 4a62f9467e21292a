"""recfast._cpu can be imported directly, so its bindings check every array again (shared helpers
in csrc/bindings/bind_helpers.hpp): exact dtype (never a silent cast), C-contiguity, rank, shape,
writeable outputs, index ranges and enum codes. Wrong dtype or layout is a TypeError, wrong shape
or value a ValueError, and the message names the argument (issue "Array kinds and one registry",
section 3)."""

import numpy as np
import pytest

cpu = pytest.importorskip("recfast._cpu")

F32 = np.float32


def rnn_args(dtype=F32, T=2, N=3, D=4, H=5):
    z = lambda *s: np.zeros(s, dtype)  # noqa: E731
    # cell, act, xs, h0, c0, W, U, b_ih, b_hh, lengths, out, h_last, c_last, states, cells, gates
    return [0, 3, z(T, N, D), z(N, H), None, z(H, D), z(H, H), z(H), None, None, None, z(N, H),
            None, None, None, None, 1]  # fmt: skip


def test_rnn_forward_accepts_valid_arrays_of_both_dtypes():
    for dtype in (np.float32, np.float64):
        args = rnn_args(dtype)
        args[11] = np.full((3, 5), np.nan, dtype)
        cpu.rnn_forward(*args)
        assert np.all(args[11] == 0)  # tanh(0) from zero inputs


@pytest.mark.parametrize(
    ("index", "value", "error", "match"),
    [
        (5, np.zeros((5, 4)), TypeError, "W must have dtype float32, got float64"),
        (7, np.zeros(5, np.float16), TypeError, "b_ih must have dtype float32, got float16"),
        (7, np.zeros(5, ">f4"), TypeError, "b_ih must have dtype float32"),  # byte-swapped
        (6, np.zeros((5, 10), F32)[:, ::2], TypeError, "U must be C-contiguous"),
        (6, np.asfortranarray(np.zeros((5, 4), F32)), TypeError, "U must"),
        (6, np.zeros((4, 5), F32), ValueError, r"U must have shape \(5, 5\), got shape \(4, 5\)"),
        (3, np.zeros((2, 5), F32), ValueError, r"h0 must have shape \(3, 5\)"),
        (2, np.zeros((2, 3), F32), ValueError, r"xs must be 3-D \(T, N, D\)"),
        (9, np.zeros(3, np.int32), TypeError, "lengths must have dtype int64, got int32"),
        (9, np.array([0, 3, 1]), ValueError, r"lengths must lie in \[0, T\], got 3 at position 1"),
        (9, np.array([0.0, 1.0, 1.0]), TypeError, "lengths must have dtype int64"),
        (0, 3, ValueError, "cell code must be one of 0 rnn, 1 gru, 2 lstm; got 3"),
        (1, 4, ValueError, "activation code must be one of 0 identity, .*3 tanh; got 4"),
        (1, -1, ValueError, "activation code"),
        (5, [[0.0] * 4] * 5, TypeError, None),  # a list is not an ndarray: never converted
    ],
)
def test_rnn_forward_rejects(index, value, error, match):
    args = rnn_args()
    args[index] = value
    with pytest.raises(error, match=match):
        cpu.rnn_forward(*args)


def test_rnn_forward_rejects_read_only_output():
    args = rnn_args()
    args[11].flags.writeable = False
    with pytest.raises(ValueError, match="h_last must be writeable"):
        cpu.rnn_forward(*args)


def test_rnn_forward_first_array_picks_the_dtype():
    with pytest.raises(TypeError, match="xs must have dtype float32 or float64, got int32"):
        args = rnn_args()
        args[2] = np.zeros((2, 3, 4), np.int32)
        cpu.rnn_forward(*args)


def test_bias_activation_checks():
    y = np.full((2, 3), -1.0, F32)
    cpu.bias_activation(y, np.ones(3, F32), 1)
    assert np.all(y == 0)
    with pytest.raises(TypeError, match="bias must have dtype float32, got float64"):
        cpu.bias_activation(y, np.ones(3), 1)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\), got shape \(2,\)"):
        cpu.bias_activation(y, np.ones(2, F32), 1)
    with pytest.raises(ValueError, match=r"y must be 2-D"):
        cpu.bias_activation(np.ones(3, F32))
    with pytest.raises(TypeError, match="y must be C-contiguous"):
        cpu.bias_activation(np.ones((3, 4), F32).T)
    with pytest.raises(ValueError, match="activation code"):
        cpu.bias_activation(y, None, 7)


def test_activation_backward_checks():
    y = np.ones((2, 3))
    g = np.empty_like(y)
    gb = np.empty(3)
    cpu.activation_backward(y, y, g, gb, 0)
    np.testing.assert_array_equal(gb, [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=r"grad_pre must have shape \(2, 3\)"):
        cpu.activation_backward(y, y, np.empty((3, 2)), None, 0)
    with pytest.raises(TypeError, match="grad_bias must have dtype float64"):
        cpu.activation_backward(y, y, g, np.empty(3, F32), 0)


def test_index_arrays_are_never_converted():
    rows = np.array([0, 1], np.int32)
    values = np.ones(2, F32)
    U, V = np.zeros((2, 3), F32), np.zeros((2, 3), F32)
    kw = dict(learning_rate=0.1, regularization=0.0, bias_regularization=0.0, global_mean=0.0)
    cpu.sgd_mf_epoch(rows, rows, values, U, V, **kw)
    with pytest.raises(TypeError, match="cols must have dtype int32, got int64"):
        cpu.sgd_mf_epoch(rows, rows.astype(np.int64), values, U, V, **kw)
    with pytest.raises(TypeError, match="rows must have dtype int32 or int64, got float32"):
        cpu.sgd_mf_epoch(values, rows, values, U, V, **kw)
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 2\), got 2 at position 1"):
        cpu.sgd_mf_epoch(np.array([0, 2], np.int32), rows, values, U, V, **kw)
    with pytest.raises(TypeError, match="order must have dtype int64"):
        cpu.sgd_mf_epoch(rows, rows, values, U, V, order=rows, **kw)
    with pytest.raises(TypeError, match="indices must have dtype int64, got int32"):
        g = np.ones((1, 2, 2, 1))
        cpu.max_pool2d_backward(g, np.zeros((1, 2, 2, 1), np.int32), np.empty((1, 4, 4, 1)))


def test_conv2d_checks():
    x, w, y = np.zeros((1, 4, 4, 2), F32), np.zeros((3, 3, 2, 5), F32), np.empty((1, 2, 2, 5), F32)
    cpu.conv2d_forward(x, w, None, y, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"out must have shape \(1, 2, 2, 5\)"):
        cpu.conv2d_forward(x, w, None, np.empty((1, 2, 2, 4), F32), 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"out must be 4-D"):
        cpu.conv2d_forward(x, w, None, np.empty((2, 2, 5), F32), 1, 1, 1, 1, 0, 0)
    with pytest.raises(TypeError, match="w must have dtype float32, got float64"):
        cpu.conv2d_forward(x, w.astype(np.float64), None, y, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match=r"bias must have shape \(5,\)"):
        cpu.conv2d_forward(x, w, np.zeros(4, F32), y, 1, 1, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="activation code"):
        cpu.conv2d_forward(x, w, None, y, 1, 1, 1, 1, 0, 0, 9)


def test_fuzz_findings_are_python_errors_or_no_ops():
    """Regressions from tests/fuzz (issue #9): each crashed the process before."""
    cpu = pytest.importorskip("recfast._cpu")
    f32 = np.float32
    # num_threads = 2**31 - 1 made libgomp abort allocating ~481 GB of thread stacks.
    y = np.zeros((2, 3), f32)
    cpu.bias_activation(y, None, 1, 2**31 - 1)
    with pytest.raises(ValueError, match="num_threads"):
        cpu.bias_activation(y, None, 1, 0)
    # An empty batch in the pooling backward pass divided by zero (SIGFPE).
    cpu.max_pool2d_backward(np.zeros((0, 0, 4, 0), f32), np.zeros((0, 0, 4, 0), np.int64),
                            np.zeros((0, 0, 0, 0), f32), 1)  # fmt: skip
    # So did a convolution backward pass with an empty output.
    x, w = np.zeros((1, 3, 3, 1), f32), np.zeros((3, 3, 1, 1), f32)
    g = np.zeros((1, 0, 0, 1), f32)
    try:
        cpu.conv2d_backward(g, x, w, np.zeros_like(x), np.zeros_like(w), 1, 1, 1, 1, 0, 0, 1)
    except ValueError:
        pass  # refusing the geometry is fine too; crashing is not
