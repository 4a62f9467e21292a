"""Recurrent cells and whole sequences: the Elman RNN step, GRU and LSTM, forward and
backpropagation through time, with variable-length sequences in one batch.

Layouts (one convention everywhere, PyTorch's):

* inputs ``x_t (N, D)``, states ``h (N, H)``, sequences ``xs (T, N, D)`` (time first);
* ``W (G H, D)`` and ``U (G H, H)`` with G = 1 (RNN), 3 (GRU: rows r, z, n) or 4 (LSTM: rows
  i, f, g, o), so the column-vector form ``h_t = f(W x_t + U h_{t-1} + b)`` is, batched,
  ``h_t = f(x_t W^T + h_{t-1} U^T + b)``;
* RNN and LSTM take one bias ``b (G H,)``; PyTorch's pair ``b_ih``, ``b_hh`` is accepted too and
  summed. The GRU needs both apart, because its reset gate multiplies ``U_n h + b_hn`` only:
  ``n = tanh(W_n x + b_in + r * (U_n h + b_hn))``, ``h' = (1 - z) n + z h``.

Parameters travel as a mapping: ``{"W": ..., "U": ..., "b": ...}`` (GRU: ``"b_ih"``, ``"b_hh"``);
:func:`from_torch` builds one from ``torch.nn.RNN/GRU/LSTM`` (or their cells).

Variable lengths: with ``lengths`` (N,), sequence n runs steps ``0 .. lengths[n] - 1``; its state
freezes after that (so ``h_last`` is the state at its last step), and its outputs there are zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast._backends import select
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs
from recfast._kinds import NUMPY, Array
from recfast._threads import resolve_num_threads
from recfast.dense import dense

__all__ = [
    "RNNCache",
    "RNNResult",
    "from_torch",
    "gru_step",
    "lstm_step",
    "rnn_backward",
    "rnn_forward",
    "rnn_output",
    "rnn_step",
    "to_torch_state_dict",
]


@dataclass(frozen=True)
class RNNCache:
    """What :func:`rnn_backward` needs from a forward pass (``rnn_forward(..., return_cache=True)``).

    ``states`` (T + 1, N, H): h_0..h_T, frozen past each sequence's end; ``cells`` the LSTM's c the
    same way; ``gates`` (T, N, 4H): GRU r, z, n, U_n h + b_hn, or LSTM i, f, g, o.

    ``xs`` is the caller's input array, not a copy (a copy would double the memory of long
    sequences): modifying it between forward and backward changes the weight gradients, as
    modifying a tensor saved for backward would in PyTorch (which raises; NumPy cannot tell).
    """

    cell: str
    activation: str | None
    xs: Array
    lengths: Array | None
    states: Array
    cells: Array | None
    gates: Array | None

    @property
    def h0(self) -> Array:
        return self.states[0]


class RNNResult(NamedTuple):
    """``outputs`` (T, N, H) or None (``return_sequences=False``); ``h_last`` (N, H); ``c_last``
    (N, H) for the LSTM, else None; ``cache`` with ``return_cache=True``, else None."""

    outputs: Array | None
    h_last: Array
    c_last: Array | None
    cache: RNNCache | None


def _params_tuple(params: Any) -> tuple[Any, ...]:
    if not hasattr(params, "get"):
        return ()
    return tuple(params.get(k) for k in ("W", "U", "b", "b_ih", "b_hh"))


_SEQ_NAMES = ("xs", "h0", "c0", "lengths", "params['W']", "params['U']", "params['b']",
              "params['b_ih']", "params['b_hh']")  # fmt: skip


def _sequence_inputs(xs, h0, c0, params, kind_, lengths, xp, unwrap):
    xs = check.float_array("xs", xs, xp, ndim=3)
    T, N, D = xs.shape
    h0 = check.float_array("h0", h0, xp, ndim=2, dtype=xs.dtype, first="xs")
    H = h0.shape[1]
    h0 = check.rnn_state("h0", h0, N, H, xs.dtype, "xs", xp)
    if kind_ == "lstm":
        c0 = xp.zeros((N, H), dtype=xs.dtype) if c0 is None else c0
        c0 = check.rnn_state("c0", c0, N, H, xs.dtype, "xs", xp)
    elif c0 is not None:
        raise ValueError(f"c0 is the LSTM's cell state; a {kind_!r} cell takes none")
    W, U, b_ih, b_hh = check.rnn_params(kind_, params, xs.dtype, D, H, xp, unwrap)
    lens = check.lengths(lengths, N, T, xp)
    return check.contiguous(xp, xs), h0, c0, W, U, b_ih, b_hh, lens


def rnn_forward(
    xs: Array,
    h0: Array,
    params: Mapping[str, Array],
    *,
    cell: str = "rnn",
    activation: str | None = "tanh",
    c0: Array | None = None,
    lengths: Array | None = None,
    return_sequences: bool = True,
    return_cache: bool = False,
    num_threads: int | None = None,
    backend: str | None = None,
) -> RNNResult:
    """Run a whole sequence in one native call (the time loop never returns to Python).

    Parameters
    ----------
    xs : (T, N, D) float32/float64, time first
    h0 : (N, H) initial state (zeros for a fresh start)
    params : mapping; see the module docstring for keys and shapes
    cell : "rnn", "gru" or "lstm"
    activation : the plain RNN's f: "tanh", "relu", "sigmoid" or "identity"/None (GRU/LSTM: ignored)
    c0 : (N, H) the LSTM's initial cell state (zeros when omitted)
    lengths : (N,) ints in [0, T] for variable-length sequences, or None (all T)
    return_sequences : also return every step's output (T, N, H)
    return_cache : keep what :func:`rnn_backward` needs

    Returns
    -------
    RNNResult(outputs, h_last, c_last, cache)
    """
    kind, (xs, h0, c0, lengths, *pvals) = kinds.inputs(
        (xs, h0, c0, lengths, *_params_tuple(params)), _SEQ_NAMES
    )
    _, kernel = select("rnn_forward", backend, kind)
    xp = kind.xp
    cell_ = check.cell(cell)
    act = check.activation("activation", activation) if cell_ == "rnn" else None
    xs, h0, c0, W, U, b_ih, b_hh, lens = _sequence_inputs(
        xs, h0, c0, params, cell_, lengths, xp, None if kind is NUMPY else pvals
    )
    T, N, _ = xs.shape
    H, dt = h0.shape[1], xs.dtype
    out = xp.empty((T, N, H), dtype=dt) if return_sequences else None
    h_last = xp.empty((N, H), dtype=dt)
    c_last = xp.empty((N, H), dtype=dt) if cell_ == "lstm" else None
    states = cells = gates = None
    if return_cache:
        states = xp.empty((T + 1, N, H), dtype=dt)
        cells = xp.empty((T + 1, N, H), dtype=dt) if cell_ == "lstm" else None
        gates = xp.empty((T, N, 4 * H), dtype=dt) if cell_ != "rnn" else None
    nt = resolve_num_threads(num_threads)
    kernel(RnnForwardArgs(cell_, act, xs, h0, c0, W, U, b_ih, b_hh, lens, out, h_last, c_last,
                          states, cells, gates, nt))  # fmt: skip
    cache = RNNCache(cell_, act, xs, lens, states, cells, gates) if return_cache else None
    res = RNNResult(out, h_last, c_last, cache)
    return res if kind is NUMPY else kind.wrap_all(res)


def rnn_backward(
    grad_outputs: Array | None,
    grad_h_last: Array | None,
    cache_or_inputs: RNNCache | Mapping[str, Any],
    params: Mapping[str, Array],
    *,
    grad_c_last: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> dict[str, Array]:
    """Backpropagation through time.

    Parameters
    ----------
    grad_outputs : (T, N, H) dL/d outputs, or None; entries past a sequence's end are ignored
        (those outputs are constant zeros)
    grad_h_last : (N, H) dL/d h_last, or None
    cache_or_inputs : the ``cache`` of ``rnn_forward(..., return_cache=True)`` run with the same
        ``params``; or a mapping ``{"xs", "h0", "c0", "lengths", "cell", "activation"}`` of the
        forward inputs, from which the forward pass is recomputed (memory for time)
    params : the forward's parameters
    grad_c_last : (N, H) dL/d c_last (LSTM), or None

    Returns
    -------
    dict with "xs" (T, N, D), "h0" (N, H), "c0" (LSTM), "W", "U" and one gradient per bias key
    given in ``params`` (for a summed pair b_ih / b_hh each gets the same gradient).
    """
    cache = cache_or_inputs
    if not isinstance(cache, RNNCache):
        if not isinstance(cache, Mapping) or "xs" not in cache or "h0" not in cache:
            raise TypeError(
                "cache_or_inputs must be an RNNCache (rnn_forward(..., return_cache=True)) or a "
                "mapping with at least 'xs' and 'h0'"
            )
        extra = set(cache) - {"xs", "h0", "c0", "lengths", "cell", "activation"}
        if extra:
            raise ValueError(f"cache_or_inputs has unknown keys {sorted(extra)}")
        cache = rnn_forward(
            cache["xs"], cache["h0"], params, cell=cache.get("cell", "rnn"),
            activation=cache.get("activation", "tanh"), c0=cache.get("c0"),
            lengths=cache.get("lengths"), return_sequences=False, return_cache=True,
            num_threads=num_threads, backend=backend,
        ).cache  # fmt: skip
        assert cache is not None
    c = cache
    kind, (grad_outputs, grad_h_last, grad_c_last, xs, states, cells, gates, lens, *pvals) = (
        kinds.inputs(
            (grad_outputs, grad_h_last, grad_c_last, c.xs, c.states, c.cells, c.gates, c.lengths,
             *_params_tuple(params)),
            ("grad_outputs", "grad_h_last", "grad_c_last", "cache.xs", "cache.states",
             "cache.cells", "cache.gates", "cache.lengths", *_SEQ_NAMES[4:]),
        )
    )  # fmt: skip
    _, kernel = select("rnn_backward", backend, kind)
    xp = kind.xp
    cell_, act, xs, states, cells, gates, lens = check.rnn_cache(
        c.cell, c.activation, xs, states, cells, gates, lens, xp
    )
    T, N, D = xs.shape
    H, dt = states.shape[2], xs.dtype
    W, U, b_ih, b_hh = check.rnn_params(cell_, params, dt, D, H, xp, pvals)
    go = None
    if grad_outputs is not None:
        go = check.same_shape(
            "grad_outputs", grad_outputs, (T, N, H), dt, "cache.xs", xp, "(T, N, H)"
        )
    gh = None
    if grad_h_last is not None:
        gh = check.rnn_state("grad_h_last", grad_h_last, N, H, dt, "cache.xs", xp)
    gc = None
    if grad_c_last is not None:
        if cell_ != "lstm":
            raise ValueError(f"grad_c_last belongs to the LSTM; this cache is a {cell_!r} cell")
        gc = check.rnn_state("grad_c_last", grad_c_last, N, H, dt, "cache.xs", xp)
    grads = {"xs": xp.empty((T, N, D), dtype=dt), "h0": xp.empty((N, H), dtype=dt),
             "W": xp.empty(W.shape, dtype=dt), "U": xp.empty(U.shape, dtype=dt)}  # fmt: skip
    if cell_ == "lstm":
        grads["c0"] = xp.empty((N, H), dtype=dt)
    g_bih = xp.empty((W.shape[0],), dtype=dt) if b_ih is not None else None
    g_bhh = xp.empty((W.shape[0],), dtype=dt) if b_hh is not None else None
    nt = resolve_num_threads(num_threads)
    kernel(RnnBackwardArgs(cell_, act, xs, W, U, lens, states, cells, gates, go, gh, gc,
                           grads["xs"], grads["h0"], grads.get("c0"), grads["W"], grads["U"],
                           g_bih, g_bhh, nt))  # fmt: skip
    for key in ("b", "b_ih", "b_hh"):
        if params.get(key) is not None:
            g = g_bhh if (cell_ == "gru" and key == "b_hh") else g_bih
            # A summed pair gets equal gradients, as separate arrays: in-place updates per key
            # (weight decay, clipping) must not hit one array twice.
            if any(g is v for v in grads.values()):
                g = g.copy() if xp is np else xp.asarray(g, copy=True)
            grads[key] = g
    return grads if kind is NUMPY else kind.wrap_all(grads)


# --------------------------------------------------------------------------- single steps
_STEP_NAMES = ("x_t", "h_prev", "c_prev", "W", "U", "b", "b_ih", "b_hh", "out", "c_out")


def _step(cell_, act, x_t, h_prev, c_prev, weights, out, c_out, num_threads, backend):
    kind, (x_t, h_prev, c_prev, *weights, out, c_out) = kinds.inputs(
        (x_t, h_prev, c_prev, *weights, out, c_out), _STEP_NAMES
    )
    _, kernel = select("rnn_forward", backend, kind)
    xp = kind.xp
    nd = x_t.ndim if hasattr(x_t, "ndim") and x_t.ndim in (1, 2) else 2
    x = check.float_array("x_t", x_t, xp, ndim=nd)
    vector = x.ndim == 1
    x2 = x[None, :] if vector else x
    h = check.float_array("h_prev", h_prev, xp, ndim=x.ndim, dtype=x.dtype, first="x_t")
    h2 = h[None, :] if vector else h
    N, D = x2.shape
    H = h2.shape[1]
    h2 = check.rnn_state("h_prev", h2, N, H, x.dtype, "x_t", xp)
    c2 = None
    if cell_ == "lstm":
        c = check.float_array("c_prev", c_prev, xp, ndim=x.ndim, dtype=x.dtype, first="x_t")
        c2 = check.rnn_state("c_prev", c[None, :] if vector else c, N, H, x.dtype, "x_t", xp)
    W, U, b_ih, b_hh = check.rnn_weights(cell_, *weights, x.dtype, D, H, "x_t", xp)
    shape = (H,) if vector else (N, H)
    given = out is not None or c_out is not None
    out = check.out_array("out", out, shape, x.dtype, xp)
    if cell_ == "lstm":
        c_out = check.out_array("c_out", c_out, shape, x.dtype, xp)
    if given:
        check.no_overlap(
            xp, {"out": out, "c_out": c_out},
            {"x_t": x2, "h_prev": h2, "c_prev": c2, "W": W, "U": U, "b": b_ih, "b_hh": b_hh},
        )  # fmt: skip
    nt = resolve_num_threads(num_threads)
    x2 = check.contiguous(xp, x2)
    if xp is np:  # the method: np.reshape's dispatch costs ~0.7 us, a third of this function
        xs = x2.reshape(1, N, D)
        h_out = out if not vector else out.reshape(N, H)
        cc = None if c_out is None else (c_out if not vector else c_out.reshape(N, H))
    else:
        xs = xp.reshape(x2, (1, N, D))
        h_out = out if not vector else xp.reshape(out, (N, H))
        cc = None if c_out is None else (c_out if not vector else xp.reshape(c_out, (N, H)))
    kernel(RnnForwardArgs(cell_, act, xs, h2, c2, W, U, b_ih, b_hh, None, None, h_out, cc,
                          None, None, None, nt))  # fmt: skip
    if kind is not NUMPY:
        return kind.wrap(out), kind.wrap(c_out)
    return out, c_out


def rnn_step(
    x_t: Array,
    h_prev: Array,
    W: Array,
    U: Array,
    b: Array | None = None,
    *,
    activation: str | None = "tanh",
    out: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> Array:
    """The Elman step ``h_t = f(W x_t + U h_{t-1} + b)``, batched: ``f(x_t W^T + h U^T + b)``.

    x_t (N, D) or (D,); h_prev (N, H) or (H,); W (H, D); U (H, H); b (H,). Returns h_t like h_prev.
    """
    act = check.activation("activation", activation)
    weights = (W, U, b, None, None)
    return _step("rnn", act, x_t, h_prev, None, weights, out, None, num_threads, backend)[0]


def rnn_output(
    h_t: Array,
    V: Array,
    c: Array | None = None,
    *,
    activation: str | None = None,
    out: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> Array:
    """The Elman output ``y_t = g(V h_t + c)``: h_t (N, H) or (H,), V (O, H), c (O,); a
    :func:`recfast.dense` layer."""
    return dense(h_t, V, c, activation=activation, out=out, num_threads=num_threads,
                 backend=backend)  # fmt: skip


def gru_step(
    x_t: Array,
    h_prev: Array,
    W: Array,
    U: Array,
    b_ih: Array | None = None,
    b_hh: Array | None = None,
    *,
    out: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> Array:
    """One GRU step (PyTorch's ``GRUCell``): W (3H, D), U (3H, H), b_ih, b_hh (3H,), gates r, z, n.

    x_t (N, D) or (D,); h_prev (N, H) or (H,). Returns h_t like h_prev.
    """
    weights = (W, U, None, b_ih, b_hh)
    return _step("gru", None, x_t, h_prev, None, weights, out, None, num_threads, backend)[0]


def lstm_step(
    x_t: Array,
    h_prev: Array,
    c_prev: Array,
    W: Array,
    U: Array,
    b: Array | None = None,
    *,
    out: Array | None = None,
    c_out: Array | None = None,
    num_threads: int | None = None,
    backend: str | None = None,
) -> tuple[Array, Array]:
    """One LSTM step (PyTorch's ``LSTMCell`` with ``b = b_ih + b_hh``): W (4H, D), U (4H, H),
    b (4H,), gates i, f, g, o. Returns ``(h_t, c_t)``, each shaped like h_prev."""
    weights = (W, U, b, None, None)
    h, c = _step("lstm", None, x_t, h_prev, c_prev, weights, out, c_out, num_threads, backend)
    return h, c


# --------------------------------------------------------------------------- PyTorch interop
_TORCH_CELLS = {"RNN": "rnn", "RNNCell": "rnn", "GRU": "gru", "GRUCell": "gru", "LSTM": "lstm",
                "LSTMCell": "lstm"}  # fmt: skip


def from_torch(module: Any, *, dtype: Any = None) -> tuple[str, str | None, dict[str, Array]]:
    """``(cell, activation, params)`` from a ``torch.nn.RNN/GRU/LSTM`` (one layer, unidirectional,
    no projection) or ``RNNCell/GRUCell/LSTMCell``. Arrays are NumPy copies (``dtype``: keep
    torch's when None). PyTorch's two biases are kept as ``b_ih`` / ``b_hh``."""
    name = type(module).__name__
    if name not in _TORCH_CELLS:
        raise TypeError(f"module must be a torch.nn RNN/GRU/LSTM or its cell, got {name}")
    kind = _TORCH_CELLS[name]
    if not name.endswith("Cell"):
        if module.num_layers != 1 or module.bidirectional or getattr(module, "proj_size", 0):
            raise ValueError("only one-layer, unidirectional modules without proj_size convert")
        if module.batch_first:
            raise ValueError("batch_first modules do not convert: recfast sequences are (T, N, D)")
    suffix = "" if name.endswith("Cell") else "_l0"
    act = None
    if kind == "rnn":
        act = module.nonlinearity

    def arr(t):
        a = t.detach().cpu().numpy()
        return np.array(a, dtype=dtype if dtype is not None else a.dtype)

    params = {"W": arr(getattr(module, "weight_ih" + suffix)),
              "U": arr(getattr(module, "weight_hh" + suffix))}  # fmt: skip
    if module.bias:
        params["b_ih"] = arr(getattr(module, "bias_ih" + suffix))
        params["b_hh"] = arr(getattr(module, "bias_hh" + suffix))
    return kind, act, params


def to_torch_state_dict(
    params: Mapping[str, Array], *, cell: str = "rnn", layer_suffix: str = "_l0"
) -> dict[str, Any]:
    """A ``state_dict`` for ``torch.nn.RNN/GRU/LSTM`` (``layer_suffix="_l0"``) or their cells
    (``layer_suffix=""``), from recfast params. A single ``b`` becomes ``bias_ih`` with a zero
    ``bias_hh``."""
    import torch

    kind = check.cell(cell)
    W = np.asarray(params["W"])
    out = {f"weight_ih{layer_suffix}": torch.from_numpy(np.array(W)),
           f"weight_hh{layer_suffix}": torch.from_numpy(np.array(params["U"]))}  # fmt: skip
    b_ih, b_hh = params.get("b_ih"), params.get("b_hh")
    if params.get("b") is not None:
        if kind == "gru":
            raise ValueError("a GRU has b_ih and b_hh, not b")
        b_ih, b_hh = params["b"], np.zeros_like(params["b"])
    if b_ih is not None or b_hh is not None:
        zeros = np.zeros(W.shape[0], W.dtype)
        out[f"bias_ih{layer_suffix}"] = torch.from_numpy(np.array(zeros if b_ih is None else b_ih))
        out[f"bias_hh{layer_suffix}"] = torch.from_numpy(np.array(zeros if b_hh is None else b_hh))
    return out
