"""Next-item recommendation from interaction sequences: ``GRU4Rec`` and a ``MostPopular`` baseline.

``GRU4Rec`` (Hidasi et al., 2016, in its simplest form) is built from recfast's ops only:

* item embedding lookup ``E[items]`` (NumPy indexing) and its scatter-add gradient;
* one GRU layer over the whole padded batch in one call, ``recfast.rnn_forward(..., cell="gru",
  lengths=..., return_cache=True)``, and backpropagation through time, ``recfast.rnn_backward``;
* full-softmax scores over every item, ``recfast.dense(h_t, V, c)`` / ``recfast.dense_backward``;
* cross-entropy of the next item at every step, and Adam (NumPy).

Sequences are lists of item indices, oldest first (:func:`recfast.datasets.user_sequences` builds
them from timestamped ratings). Training predicts item ``s[t + 1]`` from ``s[0..t]`` for the
``max_len + 1`` most recent items of each sequence; a recommendation runs the GRU over the
``max_len`` most recent items of a prefix and ranks the items by ``h_last V^T + c``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from recfast import _validate as check
from recfast.dense import dense, dense_backward
from recfast.mf import recommend_topk
from recfast.rnn import rnn_backward, rnn_forward

__all__ = ["GRU4Rec", "MostPopular", "leave_last_out", "recall_at_k"]


# --------------------------------------------------------------------------- helpers
def _as_sequences(sequences: Any, n_items: int | None = None) -> list[np.ndarray]:
    """A list of 1-D int64 arrays with entries in [0, n_items) (when n_items is given)."""
    if isinstance(sequences, np.ndarray) and sequences.ndim == 2:
        sequences = list(sequences)
    if not isinstance(sequences, Iterable) or isinstance(sequences, (str, bytes, np.ndarray)):
        raise TypeError(
            "sequences must be a list of 1-D integer arrays (item indices, oldest first), "
            f"got {type(sequences).__name__}"
        )
    out = []
    for k, s in enumerate(sequences):
        a = np.asarray(s)
        if a.size == 0:
            out.append(np.zeros(0, np.int64))
            continue
        if a.ndim != 1 or a.dtype.kind not in "iu":
            raise TypeError(
                f"sequences[{k}] must be a 1-D integer array, got {a.dtype} of shape {a.shape}"
            )
        if a.min() < 0 or (n_items is not None and a.max() >= n_items):
            bad = int(a.min()) if a.min() < 0 else int(a.max())
            raise ValueError(
                f"sequences[{k}] holds item {bad}, outside [0, {n_items if n_items else 'inf'})"
            )
        out.append(a.astype(np.int64, copy=False))
    return out


def _seen_matrix(sequences: Sequence[np.ndarray], n_items: int) -> Any:
    """(len(sequences), n_items) scipy.sparse CSR with an entry for every item a sequence holds."""
    import scipy.sparse as sp  # lazily, as in recfast.mf: `import recfast` stays light

    lens = np.array([len(s) for s in sequences], np.int64)
    cols = np.concatenate(sequences) if len(sequences) else np.zeros(0, np.int64)
    rows = np.repeat(np.arange(len(sequences)), lens)
    m = sp.csr_matrix((np.ones(cols.size, np.int8), (rows, cols)), (len(sequences), n_items))
    m.sum_duplicates()
    return m


def leave_last_out(sequences: Any) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Hold out the last item of every sequence with at least two items.

    Returns
    -------
    prefixes : list of (len - 1,) int64 arrays, one per kept sequence
    targets : (m,) int64, the held-out last items
    kept : (m,) int64, the indices (into ``sequences``) of the kept sequences
    """
    seqs = _as_sequences(sequences)
    kept = np.array([k for k, s in enumerate(seqs) if len(s) >= 2], np.int64)
    return [seqs[k][:-1] for k in kept], np.array([seqs[k][-1] for k in kept], np.int64), kept


def recall_at_k(recommended: np.ndarray, targets: np.ndarray) -> float:
    """Fraction of rows whose target is among the row's recommended items.

    recommended : (m, k) int item indices (``-1`` for empty slots); targets : (m,) int.
    """
    recommended = np.asarray(recommended)
    targets = np.asarray(targets)
    if recommended.ndim != 2 or targets.shape != (recommended.shape[0],):
        raise ValueError(
            f"recommended must be (m, k) and targets (m,), got {recommended.shape} and "
            f"{targets.shape}"
        )
    if targets.size == 0:
        return float("nan")
    return float((recommended == targets[:, None]).any(axis=1).mean())


def _check_fitted(model: Any) -> None:
    if getattr(model, "n_items_", None) is None:
        raise RuntimeError(f"this {type(model).__name__} is not fitted yet: call fit() first")


# --------------------------------------------------------------------------- baseline
class MostPopular:
    """Recommends the items seen most often in the training sequences (ties: lower index first)."""

    def __init__(self) -> None:
        self.n_items_: int | None = None
        self.counts_: np.ndarray | None = None

    def fit(self, sequences: Any, n_items: int | None = None) -> MostPopular:
        """sequences : list of 1-D int arrays; n_items : default ``max item + 1``."""
        seqs = _as_sequences(sequences, n_items)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        n = int(n_items) if n_items is not None else int(flat.max(initial=-1)) + 1
        self.counts_ = np.bincount(flat, minlength=n).astype(np.float64)
        self.n_items_ = n
        return self

    def score(self, prefixes: Any) -> np.ndarray:
        """(len(prefixes), n_items) float64: the training counts, the same for every prefix."""
        _check_fitted(self)
        assert self.counts_ is not None
        seqs = _as_sequences(prefixes, self.n_items_)
        return np.broadcast_to(self.counts_, (len(seqs), self.counts_.size)).copy()

    def recommend(
        self, prefixes: Any, n: int = 10, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` items per prefix; ``exclude_seen`` leaves out the prefix's own items.

        Returns items (m, n) int64 best first (``-1`` when fewer are left) and their counts.
        """
        _check_fitted(self)
        assert self.counts_ is not None and self.n_items_ is not None
        seqs = _as_sequences(prefixes, self.n_items_)
        m = len(seqs)
        # Rank by count, ties by index: a tiny decreasing offset keeps argpartition deterministic.
        tie = self.counts_ - np.arange(self.n_items_) / (2.0 * self.n_items_)
        return recommend_topk(
            np.ones((m, 1)), np.zeros((self.n_items_, 1)), np.arange(m), n,
            item_bias=tie, exclude=_seen_matrix(seqs, self.n_items_) if exclude_seen else None,
        )  # fmt: skip


# --------------------------------------------------------------------------- GRU4Rec
class GRU4Rec:
    """A next-item model: item embeddings -> one GRU layer -> full-softmax item scores.

    Parameters
    ----------
    hidden : int
        GRU state size H.
    embedding : int
        Item embedding size D.
    epochs : int
        Passes over the training sequences.
    learning_rate : float
        Adam's step size.
    batch_size : int
        Sequences per step (padded to the longest one in the batch; lengths mask the rest).
    max_len : int
        Only the ``max_len + 1`` most recent items of a training sequence (``max_len`` steps) and
        the ``max_len`` most recent items of a prefix are used.
    l2 : float
        Weight decay added to every gradient (Adam's classic L2, not AdamW).
    init_std : float
        Standard deviation of the normal initial embeddings and output weights.
    dtype : float32 or float64
    random_state : int, Generator or None
        Initialisation and the order of the sequences; equal seeds (and thread counts) give equal
        models.
    num_threads : int, optional
        Passed to every recfast op.
    backend : str, optional
        Passed to every recfast op (e.g. "numba" or "reference").
    verbose : bool
        Print the mean training loss of every epoch.

    Attributes (after fit)
    ----------------------
    n_items_ : int
    item_embeddings_ : (n_items, D)
    gru_params_ : dict with "W" (3H, D), "U" (3H, H), "b_ih", "b_hh" (3H,), gates r, z, n
    output_weights_ : (n_items, H); output_bias_ : (n_items,)
    loss_history_ : list of the mean cross-entropy per epoch
    fit_time_ : seconds spent in fit
    """

    def __init__(
        self,
        hidden: int = 64,
        embedding: int = 64,
        epochs: int = 10,
        learning_rate: float = 0.005,
        batch_size: int = 64,
        max_len: int = 50,
        l2: float = 0.0,
        init_std: float = 0.1,
        dtype: Any = np.float32,
        random_state: int | np.random.Generator | None = None,
        num_threads: int | None = None,
        backend: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden = check.positive_int("hidden", hidden)
        self.embedding = check.positive_int("embedding", embedding)
        self.epochs = check.positive_int("epochs", epochs)
        self.batch_size = check.positive_int("batch_size", batch_size)
        self.max_len = check.positive_int("max_len", max_len)
        lr, l2, std = float(learning_rate), float(l2), float(init_std)
        if not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}")
        if not (np.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a non-negative number, got {l2!r}")
        if not (np.isfinite(std) and std > 0):
            raise ValueError(f"init_std must be a positive number, got {init_std!r}")
        self.learning_rate, self.l2, self.init_std = lr, l2, std
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        self.random_state = random_state
        self.num_threads = num_threads
        self.backend = backend
        self.verbose = bool(verbose)
        self.n_items_: int | None = None
        self.loss_history_: list[float] = []
        self.fit_time_ = 0.0

    # -- parameters -----------------------------------------------------------------------------
    def _init_params(self, n_items: int, counts: np.ndarray, rng: np.random.Generator) -> None:
        D, H, dt = self.embedding, self.hidden, self.dtype
        k = 1 / np.sqrt(H)  # PyTorch's GRU initialisation
        self.item_embeddings_ = rng.normal(0, self.init_std, (n_items, D)).astype(dt)
        self.gru_params_ = {
            "W": rng.uniform(-k, k, (3 * H, D)).astype(dt),
            "U": rng.uniform(-k, k, (3 * H, H)).astype(dt),
            "b_ih": rng.uniform(-k, k, 3 * H).astype(dt),
            "b_hh": rng.uniform(-k, k, 3 * H).astype(dt),
        }
        self.output_weights_ = rng.normal(0, self.init_std, (n_items, H)).astype(dt)
        # Start the output bias at the log popularity: the model begins as the popularity ranking
        # and learns the sequence-dependent part from there.
        logp = np.log(counts + 1.0)
        self.output_bias_ = (logp - logp.mean()).astype(dt)

    def _param_list(self) -> list[np.ndarray]:
        p = self.gru_params_
        return [self.item_embeddings_, p["W"], p["U"], p["b_ih"], p["b_hh"],
                self.output_weights_, self.output_bias_]  # fmt: skip

    def _ops(self) -> dict[str, Any]:
        return {"num_threads": self.num_threads, "backend": self.backend}

    # -- forward / backward ---------------------------------------------------------------------
    def _batch(self, seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Time-first padded item indices (T, N) and lengths (N,)."""
        lens = np.array([len(s) for s in seqs], np.int64)
        T = int(lens.max(initial=0))
        idx = np.zeros((T, len(seqs)), np.int64)
        for n, s in enumerate(seqs):
            idx[: len(s), n] = s
        return idx, lens

    def _encode(self, seqs: Sequence[np.ndarray], cache: bool):
        idx, lens = self._batch(seqs)
        xs = self.item_embeddings_[idx]  # (T, N, D)
        h0 = np.zeros((len(seqs), self.hidden), self.dtype)
        res = rnn_forward(xs, h0, self.gru_params_, cell="gru", lengths=lens,
                          return_sequences=cache, return_cache=cache, **self._ops())  # fmt: skip
        return idx, lens, res

    def _loss_and_grads(self, seqs: Sequence[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        inputs = [s[:-1] for s in seqs]
        idx, lens, res = self._encode(inputs, cache=True)
        T = idx.shape[0]
        mask = np.arange(T)[:, None] < lens[None, :]  # (T, N) steps inside a sequence
        targets = np.zeros_like(idx)
        for n, s in enumerate(seqs):
            targets[: len(s) - 1, n] = s[1:]
        tgt = targets[mask]
        hv = np.ascontiguousarray(res.outputs[mask])  # (M, H)
        logits = dense(hv, self.output_weights_, self.output_bias_, **self._ops())  # (M, n_items)
        M = hv.shape[0]
        # softmax cross-entropy, in place on the logits
        rows = np.arange(M)
        logits -= logits.max(axis=1, keepdims=True)
        picked = logits[rows, tgt]  # the targets' shifted logits (a copy)
        np.exp(logits, out=logits)
        z = logits.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(z[:, 0], dtype=np.float64) - picked))
        logits /= z
        logits[rows, tgt] -= 1
        logits /= M
        # The bias gradient is a column sum; asking dense_backward for it would copy the
        # (M, n_items) gradient once more on the cpu backend.
        g_c = logits.sum(axis=0)
        g_h, g_V, _ = dense_backward(logits, hv, self.output_weights_, needs=("x", "W"),
                                     **self._ops())  # fmt: skip
        g_out = np.zeros_like(res.outputs)
        g_out[mask] = g_h
        g = rnn_backward(g_out, None, res.cache, self.gru_params_, **self._ops())
        g_E = np.zeros_like(self.item_embeddings_)
        np.add.at(g_E, idx[mask], g["xs"][mask])
        return loss, [g_E, g["W"], g["U"], g["b_ih"], g["b_hh"], g_V, g_c]

    # -- public API -----------------------------------------------------------------------------
    def fit(self, sequences: Any, n_items: int | None = None) -> GRU4Rec:
        """Train on item sequences (oldest first).

        Parameters
        ----------
        sequences : list of 1-D int arrays
            Item indices in [0, n_items); sequences shorter than 2 items give no training pairs.
        n_items : int, optional
            Size of the catalogue (default: largest item index + 1).

        Returns
        -------
        self
        """
        t0 = time.perf_counter()
        seqs = _as_sequences(sequences, n_items)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        n = int(n_items) if n_items is not None else int(flat.max(initial=-1)) + 1
        if n < 1:
            raise ValueError("fit needs at least one item (empty sequences and no n_items)")
        train = [s[-(self.max_len + 1) :] for s in seqs if len(s) >= 2]
        if not train:
            raise ValueError("fit needs at least one sequence with two or more items")
        rng = np.random.default_rng(self.random_state)
        self._init_params(n, np.bincount(flat, minlength=n).astype(np.float64), rng)
        params = self._param_list()
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, self.learning_rate
        step = 0
        self.loss_history_ = []
        for epoch in range(self.epochs):
            order = rng.permutation(len(train))
            losses = []
            for lo in range(0, len(train), self.batch_size):
                batch = [train[k] for k in order[lo : lo + self.batch_size]]
                loss, grads = self._loss_and_grads(batch)
                if not np.isfinite(loss):
                    raise FloatingPointError(f"GRU4Rec diverged in epoch {epoch + 1}")
                losses.append(loss)
                step += 1
                c1, c2 = 1 - b1**step, 1 - b2**step
                for p, g, a, v in zip(params, grads, m1, m2):
                    if self.l2:
                        g += self.l2 * p
                    a *= b1
                    a += (1 - b1) * g
                    v *= b2
                    v += (1 - b2) * g * g
                    p -= (lr / c1) * a / (np.sqrt(v / c2) + eps)
            self.loss_history_.append(float(np.mean(losses)))
            if self.verbose:
                print(f"epoch {epoch + 1}: loss {self.loss_history_[-1]:.4f}")
        self.n_items_ = n
        self.fit_time_ = time.perf_counter() - t0
        return self

    def encode(self, prefixes: Any, batch_size: int = 1024) -> np.ndarray:
        """(m, H) GRU state after the ``max_len`` most recent items of each prefix (zeros for an
        empty prefix)."""
        _check_fitted(self)
        seqs = [s[-self.max_len :] if len(s) else s for s in _as_sequences(prefixes, self.n_items_)]
        out = np.zeros((len(seqs), self.hidden), self.dtype)
        for lo in range(0, len(seqs), batch_size):
            res = self._encode(seqs[lo : lo + batch_size], cache=False)[2]
            out[lo : lo + batch_size] = res.h_last
        return out

    def score(self, prefixes: Any) -> np.ndarray:
        """(m, n_items) next-item scores ``h V^T + c`` (logits of the softmax) for each prefix."""
        h = self.encode(prefixes)
        return dense(h, self.output_weights_, self.output_bias_, **self._ops())

    def recommend(
        self, prefixes: Any, n: int = 10, *, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``n`` next items per prefix.

        Parameters
        ----------
        prefixes : list of 1-D int arrays (oldest first), e.g. each user's history
        n : int
        exclude_seen : leave out the items of the prefix itself

        Returns
        -------
        items : (m, n) int64, best first (``-1`` when fewer than ``n`` are left)
        scores : (m, n) their scores
        """
        _check_fitted(self)
        assert self.n_items_ is not None
        seqs = _as_sequences(prefixes, self.n_items_)
        h = self.encode(seqs)
        return recommend_topk(
            h, self.output_weights_, np.arange(len(seqs)), n, item_bias=self.output_bias_,
            exclude=_seen_matrix(seqs, self.n_items_) if exclude_seen else None,
        )  # fmt: skip
