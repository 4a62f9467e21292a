"""Reference recurrent sequences (RNN, GRU, LSTM) and backpropagation through time, written
against the array API. Step by step, the textbook formulas, no fusion.

Inputs already validated (``recfast._kernel_args``). The cache arrays they fill are
part of the contract every backend shares: ``states`` (T + 1, N, H) holds h_0..h_T with each row
frozen from its sequence's end on, ``cells`` the LSTM's c the same way, ``gates`` (T, N, 4H) the
GRU's r, z, n, U_n h + b_hn or the LSTM's i, f, g, o (zero past the end).
"""

from __future__ import annotations

from recfast._backends.reference._xp import activate, activation_grad_from_output, copy, namespace
from recfast._kernel_args import RnnBackwardArgs, RnnForwardArgs


def _sigmoid(xp, z):
    return 1 / (1 + xp.exp(-z))


def _mask(xp, lengths, t, N, dtype):
    """(N, 1) 1.0 where step t is inside the sequence, else 0.0."""
    if lengths is None:
        return xp.ones((N, 1), dtype=dtype)
    return xp.reshape(xp.astype(lengths > t, dtype), (N, 1))


def rnn_forward(a: RnnForwardArgs):
    (cell, activation, xs, h0, c0, W, U, b_ih, b_hh, lengths, out, h_last, c_last, states, cells,
     gates, _) = a  # fmt: skip
    xp = namespace(xs)
    T, N, _ = xs.shape
    H = h0.shape[1]
    h = copy(xp, h0)
    c = copy(xp, c0) if cell == "lstm" else None
    if states is not None:
        states[0, ...] = h0
        if cell == "lstm":
            cells[0, ...] = c0
    for t in range(T):
        m = _mask(xp, lengths, t, N, xs.dtype)
        a = xs[t, ...] @ W.T
        if b_ih is not None:
            a = a + b_ih
        u = h @ U.T
        if b_hh is not None:
            u = u + b_hh
        g = None
        if cell == "rnn":
            h_new = activate(xp, activation, a + u)
        elif cell == "gru":
            r = _sigmoid(xp, a[:, :H] + u[:, :H])
            z = _sigmoid(xp, a[:, H : 2 * H] + u[:, H : 2 * H])
            n = xp.tanh(a[:, 2 * H :] + r * u[:, 2 * H :])
            h_new = (1 - z) * n + z * h
            g = xp.concat([r, z, n, u[:, 2 * H :]], axis=1)
        else:
            p = a + u
            i, f = _sigmoid(xp, p[:, :H]), _sigmoid(xp, p[:, H : 2 * H])
            gg, o = xp.tanh(p[:, 2 * H : 3 * H]), _sigmoid(xp, p[:, 3 * H :])
            c_new = f * c + i * gg
            h_new = o * xp.tanh(c_new)
            g = xp.concat([i, f, gg, o], axis=1)
            c = m * c_new + (1 - m) * c
        h = m * h_new + (1 - m) * h
        if out is not None:
            out[t, ...] = m * h_new
        if states is not None:
            states[t + 1, ...] = h
            if cell == "lstm":
                cells[t + 1, ...] = c
            if g is not None:
                gates[t, ...] = m * g
    h_last[...] = h
    if c_last is not None:
        c_last[...] = c
    return h_last


def rnn_backward(a: RnnBackwardArgs):
    (cell, activation, xs, W, U, lengths, states, cells, gates, grad_out, grad_h_last, grad_c_last,
     grad_xs, grad_h0, grad_c0, grad_W, grad_U, grad_b_ih, grad_b_hh, _) = a  # fmt: skip
    xp = namespace(xs)
    T, N, _ = xs.shape
    H = states.shape[2]
    dt = xs.dtype
    dh = xp.zeros((N, H), dtype=dt) if grad_h_last is None else copy(xp, grad_h_last)
    dc = None
    if cell == "lstm":
        dc = xp.zeros((N, H), dtype=dt) if grad_c_last is None else copy(xp, grad_c_last)
    dW, dU = xp.zeros_like(W), xp.zeros_like(U)
    db_ih, db_hh = xp.zeros((W.shape[0],), dtype=dt), xp.zeros((W.shape[0],), dtype=dt)
    dxs = xp.zeros_like(xs)
    for t in range(T - 1, -1, -1):
        m = _mask(xp, lengths, t, N, xs.dtype)
        h_prev, h = states[t, ...], states[t + 1, ...]
        d = dh + grad_out[t, ...] if grad_out is not None else dh
        if cell == "rnn":
            gx = d * activation_grad_from_output(xp, activation, h)
            gh, direct = gx, 0
        elif cell == "gru":
            r, z, n, hn = (gates[t, :, k * H : (k + 1) * H] for k in range(4))
            dn = d * (1 - z) * (1 - n * n)
            dz = d * (h_prev - n) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            gx = xp.concat([dr, dz, dn], axis=1)
            gh = xp.concat([dr, dz, dn * r], axis=1)
            direct = d * z
        else:
            i, f, gg, o = (gates[t, :, k * H : (k + 1) * H] for k in range(4))
            c_prev, c = cells[t, ...], cells[t + 1, ...]
            tc = xp.tanh(c)
            dct = dc + d * o * (1 - tc * tc)
            gx = xp.concat(
                [dct * gg * i * (1 - i), dct * c_prev * f * (1 - f), dct * i * (1 - gg * gg),
                 d * tc * o * (1 - o)], axis=1,
            )  # fmt: skip
            gh, direct = gx, 0
            dc = m * (dct * f) + (1 - m) * dc
        gx, gh = m * gx, m * gh  # no gradient from steps past the end
        dxs[t, ...] = gx @ W
        dW = dW + gx.T @ xs[t, ...]
        dU = dU + gh.T @ h_prev
        db_ih = db_ih + xp.sum(gx, axis=0)
        db_hh = db_hh + xp.sum(gh, axis=0)
        dh = m * (gh @ U + direct) + (1 - m) * dh
    for dst, src in (
        (grad_xs, dxs), (grad_h0, dh), (grad_c0, dc), (grad_W, dW), (grad_U, dU),
        (grad_b_ih, db_ih), (grad_b_hh, db_hh),
    ):  # fmt: skip
        if dst is not None:
            dst[...] = src
