"""A small convolutional network (two conv + pool blocks, two dense layers), built from
recfast's kernels: an image classifier whose penultimate layer doubles as an item-image encoder
for recommenders.

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
from recfast import _kinds as kinds
from recfast import _validate as check
from recfast.models._kinded import Kinded, host, kinded

__all__ = ["ConvNet"]


class ConvNet(Kinded):
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

    ``params_`` and the outputs of ``predict_proba`` / ``encode`` are in the kind of the images
    given to ``fit`` (NumPy, or PyTorch CPU tensors sharing memory with the model).
    """

    params_ = kinded("params", "the weights: w1, b1, w2, b2 (conv), W3, b3, W4, b4 (dense)")

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
        p, kw = self._host("params"), dict(num_threads=self.num_threads, backend=self.backend)
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
        p, kw = self._host("params"), dict(num_threads=self.num_threads, backend=self.backend)
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
        X = np.asarray(host(X))
        if X.ndim == 3:  # (N, H, W): one channel
            X = X[..., None]
        if X.ndim != 4:
            raise ValueError(f"X must be (N, H, W, C) or (N, H, W), got shape {X.shape}")
        return np.ascontiguousarray(X, dtype=self.dtype)

    # -- public API ---------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Hyperparameters, checked at fit (scikit-learn's convention)."""
        check.positive_int("n_classes", self.n_classes)
        if not isinstance(self.channels, (tuple, list)) or len(self.channels) != 2:
            raise ValueError(f"channels must be a pair of ints, got {self.channels!r}")
        for c in self.channels:
            check.positive_int("channels", c)
        check.positive_int("hidden", self.hidden)
        check.scalar("lr", self.lr, low=0.0, low_open=True)
        check.positive_int("epochs", self.epochs)
        check.positive_int("batch_size", self.batch_size)
        if np.dtype(self.dtype) not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")

    def fit(self, X: Any, y: Any) -> ConvNet:
        """Train on images ``X`` (N, H, W, C) (or (N, H, W)) with integer labels ``y`` (N,).

        Raises ``FloatingPointError`` naming the epoch when the loss or the weights stop being
        finite (a learning rate too large), on every backend; a fit that raises leaves the model
        as it was."""
        self._check_params()
        kind = kinds.of((X, y), ("X", "y"))
        if not kind.host:
            raise TypeError(f"ConvNet trains on the host; got {kind.name} images")
        X = self._images(X)
        y = np.asarray(host(y))
        if y.shape != (len(X),) or y.dtype.kind not in "iu":
            raise ValueError(f"y must be ({len(X)},) integer labels, got {y.shape} {y.dtype}")
        if len(y) == 0:
            raise ValueError("X is empty: fit needs at least one image")
        if y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"labels must lie in [0, {self.n_classes})")
        with self._transaction():
            self._fit(X, y, kind)
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, kind: Any) -> None:
        rng = np.random.default_rng(self.random_state)
        self._init(X.shape[1:], rng)
        params = self._host("params")
        m = {k: np.zeros_like(v) for k, v in params.items()}
        v = {k: np.zeros_like(a) for k, a in params.items()}
        b1, b2, eps, step = 0.9, 0.999, 1e-8, 0
        baseline = None
        self.loss_history_ = []
        for epoch in range(self.epochs):
            order = rng.permutation(len(X))
            total = 0.0
            for s in range(0, len(X), self.batch_size):
                idx = order[s : s + self.batch_size]
                with np.errstate(all="ignore"):  # divergence is reported below, not warned
                    logits, cache = self._forward(X[idx])
                    prob = self._softmax(logits)
                    total += float(-np.log(prob[np.arange(len(idx)), y[idx]] + 1e-12).sum())
                dlogits = prob
                dlogits[np.arange(len(idx)), y[idx]] -= 1
                dlogits /= len(idx)
                batch_loss = total / (s + len(idx))
                if baseline is None:
                    baseline = max(batch_loss, float(np.log(self.n_classes)), 1.0)
                # As in GRU4Rec: not finite, or far above the untrained model's loss.
                if not np.isfinite(batch_loss) or batch_loss > 100 * baseline:
                    raise FloatingPointError(
                        f"ConvNet diverged in epoch {epoch + 1}: the loss is {batch_loss:.3g}, "
                        f"against {baseline:.3g} at the start (lower lr)"
                    )
                grads = self._backward(dlogits.astype(self.dtype), cache)
                step += 1
                lr_t = self.lr * np.sqrt(1 - b2**step) / (1 - b1**step)
                for k, g in grads.items():
                    m[k] = b1 * m[k] + (1 - b1) * g
                    v[k] = b2 * v[k] + (1 - b2) * g * g
                    params[k] -= (lr_t * m[k] / (np.sqrt(v[k]) + eps)).astype(self.dtype)
            self.loss_history_.append(total / len(X))
            if not all(np.isfinite(p.sum()) for p in params.values()):
                raise FloatingPointError(
                    f"ConvNet diverged in epoch {epoch + 1}: the weights hold inf/NaN (lower lr)"
                )
        self._kind = kind

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, n_classes)."""
        X = self._images(X)
        return self._show(self._softmax(self._forward(X)[0]))

    def predict(self, X: Any) -> Any:
        """Predicted class labels (N,)."""
        X = self._images(X)
        return self._show(self._forward(X)[0].argmax(axis=1))

    def score(self, X: Any, y: Any) -> float:
        """Accuracy on ``(X, y)``."""
        pred = self._forward(self._images(X))[0].argmax(axis=1)
        return float((pred == np.asarray(host(y))).mean())

    def encode(self, X: Any) -> np.ndarray:
        """The dense layer's activations (N, hidden): image features for a recommender."""
        X = self._images(X)
        return self._show(self._forward(X)[1]["h"])
