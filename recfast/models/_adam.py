"""Adam (Kingma & Ba 2015) over a list of NumPy parameter arrays, updated in place; shared by the
autoencoder models."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class Adam:
    """``step(grads)`` moves each parameter by Adam's bias-corrected step of its gradient."""

    def __init__(
        self,
        params: Sequence[np.ndarray],
        lr: float,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params)
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m = [np.zeros_like(a) for a in self.params]
        self.v = [np.zeros_like(a) for a in self.params]
        self.t = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        scale = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for a, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            a -= scale * m / (np.sqrt(v) + self.eps)
