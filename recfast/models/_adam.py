"""Adam (Kingma & Ba 2015) over a list of NumPy parameter arrays, updated in place; shared by the
autoencoder models.

The update is one fused pass per parameter (a Numba loop): written as NumPy expressions it made
ten passes with temporaries over every weight and was 40% of an AutoRec epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numba
import numpy as np


@numba.njit(cache=True, fastmath=True, nogil=True, error_model="numpy")
def _adam_update(a, g, m, v, step, b1, c1, b2, c2, eps, decay):  # pragma: no cover - compiled
    # Every constant in the parameters' dtype (c1 = 1 - b1, c2 = 1 - b2): a float64 literal or
    # math.sqrt here would widen the float32 loop and halve its vector width.
    for j in range(a.size):
        gj = g[j] + decay * a[j]
        mj = b1 * m[j] + c1 * gj
        vj = b2 * v[j] + c2 * gj * gj
        m[j] = mj
        v[j] = vj
        a[j] -= step * mj / (np.sqrt(vj) + eps)


class Adam:
    """``step(grads, decay=None)`` moves each parameter by Adam's bias-corrected step of its
    gradient plus ``decay[i] * param`` (classic L2: the decay goes through the moments)."""

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        for p in self.params:
            if not p.flags.c_contiguous:
                raise ValueError("Adam updates C-contiguous parameter arrays in place")
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [np.zeros_like(a) for a in self.params]
        self.v = [np.zeros_like(a) for a in self.params]
        self.t = 0

    def step(self, grads: Sequence[np.ndarray], decay: Sequence[float] | None = None) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scale = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        decay = decay if decay is not None else [0.0] * len(self.params)
        for a, g, m, v, d in zip(self.params, grads, self.m, self.v, decay):
            g = np.ascontiguousarray(g, dtype=a.dtype)
            t = a.dtype.type
            _adam_update(a.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(scale),
                         t(b1), t(1 - b1), t(b2), t(1 - b2), t(self.eps), t(d))  # fmt: skip
