"""Hybrid item features for cold-start items: item vectors from content (images through
:meth:`recfast.ConvNet.encode`, text through :class:`TextCNN`) mapped to a collaborative model's
item factors, so an item with no interactions can be scored and recommended.

* :class:`ItemFeatureMap` fits a ridge regression from item features to the factors (and bias) of
  the warm items of a fitted model and predicts factors for new items from their features.
* :class:`TextCNN` (Kim, "Convolutional Neural Networks for Sentence Classification", EMNLP 2014)
  encodes an item's token sequence: embeddings, 1-D convolutions of several widths over time
  (``recfast.conv2d`` with a (width, embedding) window), ReLU, max-pool over time
  (``recfast.max_pool2d``), then a linear layer; trained end to end to regress the warm items'
  factors, it is a feature map of its own.
* :func:`add_items` appends the predicted rows to a model's item factors (and biases), giving the
  new items the next ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import recfast
from recfast import _validate as check
from recfast.models._adam import Adam
from recfast.models._kinded import host

__all__ = ["ItemFeatureMap", "TextCNN", "add_items"]


def _factor_attrs(model: Any) -> tuple[str, str | None]:
    """Names of the model's item-factor and item-bias attributes (recfast's ``*_`` names, or
    implicit's ``item_factors``)."""
    for name in ("item_factors_", "item_factors"):
        if getattr(model, name, None) is not None:
            bias = next((b for b in ("item_bias_", "item_bias") if hasattr(model, b)), None)
            return name, bias
    raise TypeError(f"{type(model).__name__} has no fitted item factors (fit it first)")


def _features(name: str, X: Any, n: int | None = None) -> np.ndarray:
    X = np.asarray(host(X), dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_items, n_features), got shape {X.shape}")
    if n is not None and X.shape[1] != n:
        raise ValueError(f"{name} must have {n} feature columns (as in fit), got {X.shape[1]}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return X


class ItemFeatureMap:
    """Ridge regression ``[factors, bias] ~ [features, 1] B`` fitted on the warm items.

    Parameters
    ----------
    l2 : float
        Ridge penalty on the coefficients (not on the intercept); features are standardized
        first, so one value suits features of any scale.
    """

    def __init__(self, l2: float = 1.0) -> None:
        self.l2 = l2

    def fit(self, features: Any, model: Any, items: Any = None) -> ItemFeatureMap:
        """Fit on ``features`` (n_items, F) of the model's items (row i describes item i), or of
        the items ``items`` (m,) only (e.g. those with enough interactions)."""
        l2 = check.scalar("l2", self.l2, low=0.0)
        fa, ba = _factor_attrs(model)
        V = np.asarray(host(getattr(model, fa)), np.float64)
        b = getattr(model, ba) if ba else None
        b = None if b is None else np.asarray(host(b), np.float64)
        X = _features("features", features)
        if items is None:
            if X.shape[0] != V.shape[0]:
                raise ValueError(
                    f"features has {X.shape[0]} rows but the model has {V.shape[0]} items; pass "
                    "items= to say which items the rows describe"
                )
            idx = np.arange(V.shape[0])
        else:
            idx = check.index_array("items", np.atleast_1d(np.asarray(items)), V.shape[0])
            if idx.shape[0] != X.shape[0]:
                raise ValueError(f"items has {idx.size} ids but features has {X.shape[0]} rows")
        Y = V[idx] if b is None else np.column_stack([V[idx], b[idx]])
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0)
        self.scale_[self.scale_ == 0] = 1.0
        Z = (X - self.mean_) / self.scale_
        ym = Y.mean(axis=0)
        A = Z.T @ Z + l2 * np.eye(Z.shape[1])
        self.coef_ = np.linalg.solve(A, Z.T @ (Y - ym))
        self.intercept_ = ym
        self.k_, self.has_bias_ = V.shape[1], b is not None
        self.dtype_ = np.asarray(host(getattr(model, fa))).dtype
        return self

    def predict(self, features: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """``(factors (m, k), bias (m,) or None)`` for items described by ``features`` (m, F)."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("this ItemFeatureMap is not fitted yet; call fit() first")
        Z = (_features("features", features, self.coef_.shape[0]) - self.mean_) / self.scale_
        Y = (Z @ self.coef_ + self.intercept_).astype(self.dtype_)
        return (Y[:, :-1], Y[:, -1]) if self.has_bias_ else (Y, None)


def add_items(model: Any, factors: Any, bias: Any = None) -> np.ndarray:
    """Append items to a fitted model: ``factors`` (m, k) (and ``bias`` (m,) for a model with
    item biases) become items ``n_items .. n_items + m - 1``, whose ids are returned."""
    fa, ba = _factor_attrs(model)
    V = host(getattr(model, fa))
    F = np.asarray(factors, dtype=V.dtype)
    if F.ndim != 2 or F.shape[1] != V.shape[1]:
        raise ValueError(f"factors must be (m, {V.shape[1]}), got shape {F.shape}")
    n = V.shape[0]
    setattr(model, fa, np.vstack([V, F]))
    if ba is not None and getattr(model, ba) is not None:
        if bias is None:
            raise ValueError(f"{type(model).__name__} has item biases: pass bias= (m,)")
        bb = np.asarray(bias, dtype=V.dtype).reshape(-1)
        if bb.shape != (F.shape[0],):
            raise ValueError(f"bias must be ({F.shape[0]},), got shape {bb.shape}")
        setattr(model, ba, np.concatenate([host(getattr(model, ba)), bb]))
    if hasattr(model, "n_items_"):
        model.n_items_ = n + F.shape[0]
    return np.arange(n, n + F.shape[0])


class TextCNN:
    """Kim (2014)'s text CNN as an item encoder, trained to regress item factors.

    For an item's tokens ``t`` (T,) (``-1`` pads)::

        x = E[t]                                   (T, D), zero rows for padding
        c_w = relu(conv(x, K_w) + a_w)             (T - w + 1, C) for each width w
        f = concat_w max_over_time(c_w)            (len(widths) * C,)    the item's features
        y = f W^T + b                              (out,)                e.g. the factors

    Parameters
    ----------
    vocab_size : int
    embedding_dim : int (D)
    widths : tuple of int (the convolution windows, in tokens)
    channels : int (C, filters per width)
    epochs, learning_rate, batch_size, l2 : Adam's training of the regression
    dtype : float32 or float64
    random_state, num_threads, backend : as elsewhere
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 32,
        widths: tuple[int, ...] = (2, 3, 4),
        channels: int = 16,
        epochs: int = 30,
        learning_rate: float = 3e-3,
        batch_size: int = 64,
        l2: float = 1e-4,
        dtype: Any = np.float32,
        random_state: int | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
    ) -> None:
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.widths = widths
        self.channels = channels
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.l2 = l2
        self.dtype = dtype
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend

    @property
    def _ops(self) -> dict[str, Any]:
        return {"num_threads": self.num_threads, "backend": self.backend}

    def _tokens(self, tokens: Any) -> np.ndarray:
        t = np.asarray(host(tokens))
        if t.ndim != 2 or t.dtype.kind not in "iu":
            raise TypeError(f"tokens must be a 2-D integer array (n_items, T), got {t.dtype} "
                            f"of shape {t.shape}")  # fmt: skip
        if t.shape[1] < max(self.widths):
            raise ValueError(f"tokens must hold at least max(widths) = {max(self.widths)} "
                             f"positions, got {t.shape[1]}")  # fmt: skip
        if t.size and (t.min() < -1 or t.max() >= self.vocab_size):
            raise ValueError(f"tokens must lie in [0, {self.vocab_size}) (or -1 for padding)")
        return t.astype(np.int64)

    def _forward(self, t: np.ndarray):
        E = self.params_["E"]
        x = np.where((t >= 0)[..., None], E[np.maximum(t, 0)], 0).astype(E.dtype)
        x4 = x[..., None]  # (N, T, D, 1): NHWC, a one-channel "image" of height T, width D
        feats, cache = [], []
        for w in self.widths:
            c = recfast.conv2d(x4, self.params_[f"K{w}"], self.params_[f"a{w}"],
                               activation="relu", **self._ops)  # fmt: skip
            pooled, idx = recfast.max_pool2d(c, (c.shape[1], 1), **self._ops)
            feats.append(pooled.reshape(len(t), -1))
            cache.append((c, idx))
        return x4, np.concatenate(feats, axis=1), cache

    def _init_params(self, out: int, dt: np.dtype, rng: np.random.Generator) -> None:
        """He-normal convolutions, small embeddings, a 1/sqrt(F) linear layer."""
        D, C = (
            check.positive_int("embedding_dim", self.embedding_dim),
            check.positive_int("channels", self.channels),
        )
        p: dict[str, np.ndarray] = {
            "E": (rng.standard_normal((self.vocab_size, D)) * 0.1).astype(dt)
        }
        for w in self.widths:
            p[f"K{w}"] = (rng.standard_normal((w, D, 1, C)) * np.sqrt(2.0 / (w * D))).astype(dt)
            p[f"a{w}"] = np.zeros(C, dt)
        F = C * len(self.widths)
        p["W"] = (rng.standard_normal((out, F)) * np.sqrt(1.0 / F)).astype(dt)
        p["b"] = np.zeros(out, dt)
        self.params_ = p

    def fit(self, tokens: Any, targets: Any) -> TextCNN:
        """Train on ``tokens`` (n, T) and the vectors they should predict, ``targets`` (n, out)
        (for cold start: the warm items' factors, with their bias as an extra column)."""
        t = self._tokens(tokens)
        dt = np.dtype(self.dtype)
        if dt not in check.FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        Y = np.asarray(host(targets), dtype=dt)
        if Y.ndim != 2 or Y.shape[0] != t.shape[0]:
            raise ValueError(f"targets must be ({t.shape[0]}, out), got shape {Y.shape}")
        if not np.isfinite(Y).all():
            raise ValueError("targets hold NaN or infinite values")
        rng = np.random.default_rng(self.random_state)
        self._init_params(Y.shape[1], dt, rng)
        p = self.params_
        p["b"][:] = Y.mean(axis=0)  # start from the mean target
        names = list(p)
        adam = Adam([p[k] for k in names], check.scalar("learning_rate", self.learning_rate,
                                                        low=0.0, low_open=True))  # fmt: skip
        batch = check.positive_int("batch_size", self.batch_size)
        self.history_: dict[str, list[float]] = {"loss": []}
        for _ in range(check.positive_int("epochs", self.epochs)):
            order = rng.permutation(len(t))
            total = 0.0
            for lo in range(0, len(t), batch):
                idx = order[lo : lo + batch]
                loss, grads = self._loss_and_grads(t[idx], Y[idx])
                total += loss * len(idx)
                adam.step([grads[k] for k in names])
            self.history_["loss"].append(total / len(t))
        return self

    def _loss_and_grads(self, t: np.ndarray, Y: np.ndarray):
        """Mean over the batch of ``1/2 ||y - target||^2`` plus ``l2/2 ||W||^2``, and the
        gradients of every parameter."""
        p, ops = self.params_, self._ops
        x4, f, cache = self._forward(t)
        y = recfast.dense(f, p["W"], p["b"], **ops)
        m = len(t)
        err = (y - Y) / m
        loss = 0.5 * float(np.sum((y - Y) ** 2)) / m + 0.5 * self.l2 * float(np.sum(p["W"] ** 2))
        gf, gW, gb = recfast.dense_backward(err, f, p["W"], **ops)
        grads = {"W": gW + p["W"].dtype.type(self.l2) * p["W"], "b": gb}
        gx = np.zeros_like(x4)
        C = self.channels
        for j, w in enumerate(self.widths):
            c, idx = cache[j]
            gp = np.ascontiguousarray(gf[:, j * C : (j + 1) * C]).reshape(m, 1, 1, C)
            gc = recfast.max_pool2d_backward(gp, idx, c.shape, **ops)
            gxi, gK, ga = recfast.conv2d_backward(gc, x4, p[f"K{w}"], activation="relu",
                                                  output=c, **ops)  # fmt: skip
            gx += gxi
            grads[f"K{w}"], grads[f"a{w}"] = gK, ga
        gE = np.zeros_like(p["E"])
        keep = t >= 0
        np.add.at(gE, t[keep], gx[..., 0][keep])
        grads["E"] = gE
        return loss, grads

    def encode(self, tokens: Any) -> np.ndarray:
        """The max-pooled features (n, len(widths) * channels) of each token sequence."""
        if not hasattr(self, "params_"):
            raise RuntimeError("this TextCNN is not fitted yet; call fit() first")
        return self._forward(self._tokens(tokens))[1]

    def predict(self, tokens: Any) -> np.ndarray:
        """The regression's output (n, out): for cold start, the items' factors (and bias)."""
        f = self.encode(tokens)
        return recfast.dense(f, self.params_["W"], self.params_["b"], **self._ops)
