"""The seed's convolutional network, built from recfast's kernels: an image classifier whose
penultimate layer doubles as an item-image encoder for recommenders.

Architecture (NHWC, "same" padding so small images fit)::

    conv 3x3, 32 channels, relu -> max-pool 2 -> conv 3x3, 64 channels, relu -> max-pool 2
    -> flatten -> dense 128, relu -> dense n_classes, softmax

Forward and backward run on :func:`recfast.conv2d`, :func:`recfast.max_pool2d`,
:func:`recfast.dense` and their ``*_backward``; the softmax cross-entropy and the Adam update are
plain NumPy. Read it as the worked example of how the ops chain: each backward call takes the
forward call's output (for the activation's derivative) and the pooling indices.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import recfast

__all__ = ["ConvNet"]


class ConvNet:
    """Small CNN classifier / image encoder trained with mini-batch Adam.

    Parameters
    ----------
    n_classes : number of output classes
    channels : output channels of the two conv layers
    hidden : width of the dense layer (the encoder's feature size, see :meth:`encode`)
    lr, epochs, batch_size : Adam step size, passes over the data, mini-batch size
    dtype : float32 (fast path) or float64
    random_state : seed of the initialisation and the shuffling
    num_threads, backend : passed to every recfast call
    """

    def __init__(
        self,
        n_classes: int = 10,
        *,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        lr: float = 2e-3,
        epochs: int = 20,
        batch_size: int = 64,
        dtype: Any = np.float32,
        random_state: int | None = 0,
        num_threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.n_classes = n_classes
        self.channels = channels
        self.hidden = hidden
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.dtype = np.dtype(dtype)
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.params_: dict[str, np.ndarray] = {}
        self.loss_history_: list[float] = []

    # -- parameters ---------------------------------------------------------------------------
    def _init(self, image_shape: tuple[int, int, int], rng: np.random.Generator) -> None:
        h, w, c = image_shape
        c1, c2 = self.channels
        flat = (h // 4) * (w // 4) * c2
        if flat == 0:
            raise ValueError(f"images must be at least 4x4, got {h}x{w}")

        def he(shape, fan_in):
            return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(self.dtype)

        self.params_ = {
            "w1": he((3, 3, c, c1), 9 * c),
            "b1": np.zeros(c1, self.dtype),
            "w2": he((3, 3, c1, c2), 9 * c1),
            "b2": np.zeros(c2, self.dtype),
            "W3": he((self.hidden, flat), flat),  # dense: (out, in), like nn.Linear
            "b3": np.zeros(self.hidden, self.dtype),
            "W4": he((self.n_classes, self.hidden), self.hidden),
            "b4": np.zeros(self.n_classes, self.dtype),
        }

    # -- forward / backward -------------------------------------------------------------------
    def _forward(self, X: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        p, kw = self.params_, dict(num_threads=self.num_threads, backend=self.backend)
        a1 = recfast.conv2d(X, p["w1"], p["b1"], padding="same", activation="relu", **kw)
        p1, i1 = recfast.max_pool2d(a1, 2, **kw)
        a2 = recfast.conv2d(p1, p["w2"], p["b2"], padding="same", activation="relu", **kw)
        p2, i2 = recfast.max_pool2d(a2, 2, **kw)
        f = p2.reshape(len(X), -1)
        h = recfast.dense(f, p["W3"], p["b3"], activation="relu", **kw)
        logits = recfast.dense(h, p["W4"], p["b4"], **kw)
        cache = dict(X=X, a1=a1, p1=p1, i1=i1, a2=a2, p2=p2, i2=i2, f=f, h=h)
        return logits, cache

    def _backward(self, dlogits: np.ndarray, c: dict[str, Any]) -> dict[str, np.ndarray]:
        p, kw = self.params_, dict(num_threads=self.num_threads, backend=self.backend)
        dh, dW4, db4 = recfast.dense_backward(dlogits, c["h"], p["W4"], **kw)
        df, dW3, db3 = recfast.dense_backward(
            dh, c["f"], p["W3"], output=c["h"], activation="relu", **kw
        )
        dp2 = df.reshape(c["p2"].shape)
        da2 = recfast.max_pool2d_backward(dp2, c["i2"], c["a2"].shape, **kw)
        dp1, dw2, db2 = recfast.conv2d_backward(
            da2, c["p1"], p["w2"], padding="same", activation="relu", output=c["a2"], **kw
        )
        da1 = recfast.max_pool2d_backward(dp1, c["i1"], c["a1"].shape, **kw)
        _, dw1, db1 = recfast.conv2d_backward(
            da1,
            c["X"],
            p["w1"],
            padding="same",
            activation="relu",
            output=c["a1"],
            needs=("w", "bias"),  # no gradient for the images themselves
            **kw,
        )
        return dict(w1=dw1, b1=db1, w2=dw2, b2=db2, W3=dW3, b3=db3, W4=dW4, b4=db4)

    @staticmethod
    def _softmax(logits: np.ndarray) -> np.ndarray:
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _images(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 3:  # (N, H, W): one channel
            X = X[..., None]
        if X.ndim != 4:
            raise ValueError(f"X must be (N, H, W, C) or (N, H, W), got shape {X.shape}")
        return np.ascontiguousarray(X, dtype=self.dtype)

    # -- public API ---------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> ConvNet:
        """Train on images ``X`` (N, H, W, C) (or (N, H, W)) with integer labels ``y`` (N,)."""
        X = self._images(X)
        y = np.asarray(y)
        if y.shape != (len(X),) or y.dtype.kind not in "iu":
            raise ValueError(f"y must be ({len(X)},) integer labels, got {y.shape} {y.dtype}")
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"labels must lie in [0, {self.n_classes})")
        rng = np.random.default_rng(self.random_state)
        self._init(X.shape[1:], rng)
        m = {k: np.zeros_like(v) for k, v in self.params_.items()}
        v = {k: np.zeros_like(a) for k, a in self.params_.items()}
        b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
        self.loss_history_ = []
        for _ in range(self.epochs):
            order = rng.permutation(len(X))
            total = 0.0
            for s in range(0, len(X), self.batch_size):
                idx = order[s : s + self.batch_size]
                logits, cache = self._forward(X[idx])
                prob = self._softmax(logits)
                total += float(-np.log(prob[np.arange(len(idx)), y[idx]] + 1e-12).sum())
                dlogits = prob
                dlogits[np.arange(len(idx)), y[idx]] -= 1
                dlogits /= len(idx)
                grads = self._backward(dlogits.astype(self.dtype), cache)
                step += 1
                lr_t = self.lr * np.sqrt(1 - b2**step) / (1 - b1**step)
                for k, g in grads.items():
                    m[k] = b1 * m[k] + (1 - b1) * g
                    v[k] = b2 * v[k] + (1 - b2) * g * g
                    self.params_[k] -= (lr_t * m[k] / (np.sqrt(v[k]) + eps)).astype(self.dtype)
            self.loss_history_.append(total / len(X))
            if not np.isfinite(self.loss_history_[-1]):
                raise FloatingPointError(f"training diverged at epoch {len(self.loss_history_)}")
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes)."""
        X = self._images(X)
        return self._softmax(self._forward(X)[0])

    def predict(self, X: Any) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        return float((self.predict(X) == np.asarray(y)).mean())

    def encode(self, X: Any) -> np.ndarray:
        """The dense layer's activations (N, hidden): image features for a recommender."""
        X = self._images(X)
        return self._forward(X)[1]["h"]
