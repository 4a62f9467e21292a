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

import functools
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recfast import _kinds as kinds
from recfast import _validate as check
from recfast.dense import dense, dense_backward
from recfast.mf import recommend_topk
from recfast.models import _io
from recfast.models._kinded import Kinded, host, kinded
from recfast.rnn import gru_step, rnn_backward, rnn_forward

__all__ = ["GRU4Rec", "GRU4RecSession", "MostPopular", "leave_last_out", "recall_at_k"]

_LOSSES = ("sampled", "softmax")
FORMAT_VERSION = 1


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
        a = np.asarray(host(s))
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
class GRU4Rec(Kinded):
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
    loss : {"sampled", "softmax"}
        "sampled" (the default): cross-entropy over the batch's own target items plus
        ``n_sample`` items drawn with probability proportional to popularity**``sample_alpha``,
        with the logQ correction (each candidate's logit minus the log of its sampling
        probability; Hidasi & Karatzoglou 2018, Jean et al. 2015), so a step scores a few hundred
        items instead of the whole catalogue. "softmax": the full softmax over every item.
    n_sample : int
        Extra negatives per batch (shared by all of its positions) for ``loss="sampled"``.
    sample_alpha : float
        Popularity exponent of the negative sampling (0: uniform, 1: proportional).

    Attributes (after fit)
    ----------------------
    n_items_ : int
    item_embeddings_ : (n_items, D)
    gru_params_ : dict with "W" (3H, D), "U" (3H, H), "b_ih", "b_hh" (3H,), gates r, z, n
    output_weights_ : (n_items, H); output_bias_ : (n_items,)
    loss_history_ : list of the mean cross-entropy per epoch
    fit_time_ : seconds spent in fit

    The arrays are in the kind of the training sequences: NumPy, or PyTorch CPU tensors that
    share memory with the model when the sequences are tensors.
    """

    item_embeddings_ = kinded("item_embeddings", "(n_items, D)")
    gru_params_ = kinded("gru_params", "dict of W (3H, D), U (3H, H), b_ih, b_hh (3H,)")
    output_weights_ = kinded("output_weights", "(n_items, H)")
    output_bias_ = kinded("output_bias", "(n_items,)")

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
        loss: str = "sampled",
        n_sample: int = 256,
        sample_alpha: float = 1.0,
    ) -> None:
        if loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {loss!r}")
        self.loss = loss
        self.n_sample = check.positive_int("n_sample", n_sample)
        self.sample_alpha = check.scalar("sample_alpha", sample_alpha, low=0.0, high=2.0)
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
        p = self._host("gru_params")
        return [self._host("item_embeddings"), p["W"], p["U"], p["b_ih"], p["b_hh"],
                self._host("output_weights"), self._host("output_bias")]  # fmt: skip

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
        xs = self._host("item_embeddings")[idx]  # (T, N, D)
        h0 = np.zeros((len(seqs), self.hidden), self.dtype)
        res = rnn_forward(xs, h0, self._host("gru_params"), cell="gru", lengths=lens,
                          return_sequences=cache, return_cache=cache, **self._ops())  # fmt: skip
        return idx, lens, res

    def _loss_and_grads(
        self, seqs: Sequence[np.ndarray], rng: np.random.Generator | None = None
    ) -> tuple[float, list[np.ndarray]]:
        inputs = [s[:-1] for s in seqs]
        idx, lens, res = self._encode(inputs, cache=True)
        T = idx.shape[0]
        mask = np.arange(T)[:, None] < lens[None, :]  # (T, N) steps inside a sequence
        targets = np.zeros_like(idx)
        for n, s in enumerate(seqs):
            targets[: len(s) - 1, n] = s[1:]
        V, c = self._host("output_weights"), self._host("output_bias")
        if self.loss == "sampled":
            assert rng is not None
            extra = rng.choice(V.shape[0], size=self.n_sample, p=self._sample_p)
            loss, g_out, g_V, g_c = self._sampled_xent(res.outputs, targets, mask, extra, V, c)
        else:
            hv = np.ascontiguousarray(res.outputs[mask])  # (M, H)
            M = hv.shape[0]
            loss, g_h, g_V, g_c = self._softmax_xent(hv, V, c, targets[mask], M)
            loss /= M
            g_out = np.zeros_like(res.outputs)
            g_out[mask] = g_h
        g = rnn_backward(g_out, None, res.cache, self._host("gru_params"), **self._ops())
        # The embedding gradient: a scatter-add of each step's input gradient to its item, as
        # one sparse (n_items x M) product (np.add.at is ~10x slower here).
        import scipy.sparse as sp

        E = self._host("item_embeddings")
        items = idx[mask]
        onehot = sp.csr_matrix(
            (np.ones(items.size, E.dtype), (items, np.arange(items.size))),
            shape=(E.shape[0], items.size),
        )
        g_E = np.asarray(onehot @ g["xs"][mask], dtype=E.dtype)
        return loss, [g_E, g["W"], g["U"], g["b_ih"], g["b_hh"], g_V, g_c]

    def _softmax_xent(self, hv, V, c, tgt, M):
        """Softmax cross-entropy of the rows of ``hv V^T + c`` against ``tgt``: (summed loss,
        dL/dhv, dL/dV, dL/dc), the loss averaged over ``M`` positions in the gradients."""
        logits = dense(hv, V, c, **self._ops())
        rows = np.arange(hv.shape[0])
        logits -= logits.max(axis=1, keepdims=True)  # in place: the logits become the gradient
        picked = logits[rows, tgt]
        np.exp(logits, out=logits)
        z = logits.sum(axis=1, keepdims=True)
        loss = float(np.sum(np.log(z[:, 0], dtype=np.float64) - picked))
        logits /= z
        logits[rows, tgt] -= 1
        logits /= M
        # The bias gradient is a column sum; asking dense_backward for it would copy the
        # gradient once more on the cpu backend.
        g_c = logits.sum(axis=0)
        g_h, g_V, _ = dense_backward(logits, hv, V, needs=("x", "W"), **self._ops())
        return loss, g_h, g_V, g_c

    def _sampled_xent(self, Hs, targets, mask, extra, V, c):
        """Session-parallel sampled softmax over all T steps at once: the N positions of step t
        score the distinct items among the N targets of step t (the other sequences' next items
        are its in-batch negatives) and the ``extra`` items drawn by popularity for the whole
        batch, each logit minus the log of its sampling probability (the logQ correction; Hidasi
        & Karatzoglou 2018, Jean et al. 2015). Each item counts once per step: repeated columns
        and those of finished sequences are masked.

        Hs (T, N, H) GRU outputs, targets / mask (T, N), extra (S,). Returns (mean loss over the
        M active positions, dL/dHs (T, N, H), dL/dV, dL/dc)."""
        T, N, H = Hs.shape
        dt = Hs.dtype
        cand = np.concatenate([targets, np.broadcast_to(extra, (T, extra.size))], axis=1)
        K = cand.shape[1]
        Vc = V[cand]  # (T, K, H)
        # Per-step products on recfast's dense kernels (NumPy's stacked matmul leaves BLAS for
        # a loop 15-40x slower, and a bare np.matmul ignores num_threads).
        ops = self._ops()
        logits = np.empty((T, N, K), dt)
        for t in range(T):
            dense(Hs[t], Vc[t], out=logits[t], **ops)
        logits += (c[cand] - self._log_q[cand]).astype(dt)[:, None, :]
        # Distinct candidates per step: sort each step's items (finished sequences' columns get
        # the key n_items, past every item), mask all but the first column of each item, and
        # point each position at the first column of its target.
        key = cand.copy()
        key[:, :N][~mask] = V.shape[0]
        order = np.argsort(key, axis=1, kind="stable")
        sk = np.take_along_axis(key, order, axis=1)
        first = np.ones((T, K), bool)
        first[:, 1:] = sk[:, 1:] != sk[:, :-1]
        start = np.maximum.accumulate(np.where(first, np.arange(K), 0), axis=1)
        inv = np.empty_like(order)
        np.put_along_axis(inv, order, np.arange(K)[None, :].repeat(T, 0), axis=1)
        tcol = np.take_along_axis(order, np.take_along_axis(start, inv[:, :N], axis=1), axis=1)
        drop = np.empty((T, K), bool)
        np.put_along_axis(drop, order, ~first | (sk == V.shape[0]), axis=1)
        logits[np.broadcast_to(drop[:, None, :], logits.shape)] = -np.inf
        M = int(mask.sum())
        logits -= logits.max(axis=2, keepdims=True)
        tt, nn = np.arange(T)[:, None], np.arange(N)[None, :]
        picked = logits[tt, nn, tcol]  # (T, N)
        np.exp(logits, out=logits)
        z = logits.sum(axis=2)
        loss = float(np.sum((np.log(z, dtype=np.float64) - picked)[mask]))
        logits /= z[:, :, None]
        logits[tt, nn, tcol] -= 1
        logits *= (mask / dt.type(M)).astype(dt)[:, :, None]  # the gradient (T, N, K)
        g_out = np.empty((T, N, H), dt)
        g_Vc = np.empty((T, K, H), dt)
        for t in range(T):
            g_out[t], g_Vc[t], _ = dense_backward(logits[t], Hs[t], Vc[t], needs=("x", "W"), **ops)
        # Scatter-add of the candidates' gradients into the catalogue's rows, as one sparse
        # (n_items x T K) product.
        import scipy.sparse as sp

        onehot = sp.csr_matrix(
            (np.ones(T * K, dt), (cand.ravel(), np.arange(T * K))), shape=(V.shape[0], T * K)
        )
        g_V = np.asarray(onehot @ g_Vc.reshape(T * K, H), dtype=dt)
        g_c = np.asarray(onehot @ logits.sum(axis=1).reshape(T * K), dtype=dt).ravel()
        return loss / M, g_out, g_V, g_c

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
        kind = kinds.of(tuple(sequences), ()) if isinstance(sequences, (list, tuple)) else None
        if kind is not None and not kind.host:
            raise TypeError(f"GRU4Rec trains on the host; got {kind.name} sequences")
        seqs = _as_sequences(sequences, n_items)
        flat = np.concatenate(seqs) if seqs else np.zeros(0, np.int64)
        n = int(n_items) if n_items is not None else int(flat.max(initial=-1)) + 1
        if n < 1:
            raise ValueError("fit needs at least one item (empty sequences and no n_items)")
        train = [s[-(self.max_len + 1) :] for s in seqs if len(s) >= 2]
        if not train:
            raise ValueError("fit needs at least one sequence with two or more items")
        with self._transaction():  # a fit that raises leaves the model as it was
            self._fit(train, flat, n, t0)
            self._kind = kind if kind is not None else kinds.NUMPY
        return self

    def _fit(self, train: list[np.ndarray], flat: np.ndarray, n: int, t0: float) -> None:
        rng = np.random.default_rng(self.random_state)
        counts = np.bincount(flat, minlength=n).astype(np.float64)
        self._init_params(n, counts, rng)
        q = (counts + 1.0) ** self.sample_alpha
        self._sample_p = q / q.sum()
        self._log_q = np.log(self._sample_p)
        params = self._param_list()
        m1 = [np.zeros_like(p) for p in params]
        m2 = [np.zeros_like(p) for p in params]
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, self.learning_rate
        step = 0
        baseline = None
        self.loss_history_ = []
        for epoch in range(self.epochs):
            order = rng.permutation(len(train))
            losses = []
            for lo in range(0, len(train), self.batch_size):
                batch = [train[k] for k in order[lo : lo + self.batch_size]]
                with np.errstate(all="ignore"):  # divergence is reported below, not warned
                    loss, grads = self._loss_and_grads(batch, rng)
                if baseline is None:
                    baseline = max(float(loss), float(np.log(n)), 1.0)
                # Diverged: a loss that is not finite, or far above that of the untrained model
                # (cross-entropy over n items starts near log n; a saturated network can keep
                # its loss finite while the weights run away, and backends saturate differently).
                if not np.isfinite(loss) or loss > 100 * baseline:
                    raise FloatingPointError(
                        f"GRU4Rec diverged in epoch {epoch + 1}: the loss is {loss:.3g}, against "
                        f"{baseline:.3g} at the start (lower learning_rate)"
                    )
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
            # The same check on every backend: a kernel that saturates (tanh, sigmoid) can keep
            # the loss finite while the weights are already inf/NaN.
            if not all(np.isfinite(p.sum()) for p in params):
                raise FloatingPointError(
                    f"GRU4Rec diverged in epoch {epoch + 1}: the weights hold inf/NaN "
                    "(lower learning_rate)"
                )
            self.loss_history_.append(float(np.mean(losses)))
            if self.verbose:
                print(f"epoch {epoch + 1}: loss {self.loss_history_[-1]:.4f}")
        self.n_items_ = n
        self.fit_time_ = time.perf_counter() - t0

    def encode(self, prefixes: Any, batch_size: int = 1024) -> Any:
        """(m, H) GRU state after the ``max_len`` most recent items of each prefix (zeros for an
        empty prefix), in the fitted kind."""
        return self._show(self._encode_prefixes(prefixes, batch_size))

    def _encode_prefixes(self, prefixes: Any, batch_size: int = 1024) -> np.ndarray:
        _check_fitted(self)
        seqs = [s[-self.max_len :] if len(s) else s for s in _as_sequences(prefixes, self.n_items_)]
        out = np.zeros((len(seqs), self.hidden), self.dtype)
        for lo in range(0, len(seqs), batch_size):
            res = self._encode(seqs[lo : lo + batch_size], cache=False)[2]
            out[lo : lo + batch_size] = res.h_last
        return out

    def score(self, prefixes: Any) -> Any:
        """(m, n_items) next-item scores ``h V^T + c`` (logits of the softmax) for each prefix."""
        h = self._encode_prefixes(prefixes)
        V, c = self._host("output_weights"), self._host("output_bias")
        return self._show(dense(h, V, c, **self._ops()))

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
        h = self._encode_prefixes(seqs)
        items, scores = recommend_topk(
            h, self._host("output_weights"), np.arange(len(seqs)), n,
            item_bias=self._host("output_bias"),
            exclude=_seen_matrix(seqs, self.n_items_) if exclude_seen else None,
        )  # fmt: skip
        return self._show(items), self._show(scores)

    # -- serving and persistence --------------------------------------------------------------
    def session(self, n: int = 20, *, exclude_seen: bool = True) -> GRU4RecSession:
        """A real-time serving helper: it keeps each user's GRU state and, for each new event,
        advances it by one :func:`recfast.gru_step` and returns the next top-``n`` items."""
        _check_fitted(self)
        return GRU4RecSession(self, n, exclude_seen)

    def save(self, path: str | Path) -> None:
        """Save the fitted model to ``path`` (.npz, format version 1, NumPy arrays whatever the
        fitted kind; written atomically); :meth:`load` restores it."""
        _check_fitted(self)
        p = self._host("gru_params")
        arrays = {"item_embeddings": self._host("item_embeddings"), "W": p["W"], "U": p["U"],
                  "b_ih": p["b_ih"], "b_hh": p["b_hh"],
                  "output_weights": self._host("output_weights"),
                  "output_bias": self._host("output_bias")}  # fmt: skip
        params = {k: getattr(self, k) for k in _GRU4REC_PARAMS}
        params["dtype"] = self.dtype.name
        params["random_state"] = (
            self.random_state if isinstance(self.random_state, (int, type(None))) else None
        )
        meta = {"model": "GRU4Rec", "format_version": FORMAT_VERSION, "params": params,
                "n_items": self.n_items_, "loss_history": self.loss_history_}  # fmt: skip
        _io.save_npz(path, meta, arrays)

    @classmethod
    def load(cls, path: str | Path, *, array_kind: str = "numpy") -> GRU4Rec:
        """Load a model written by :meth:`save` (every field checked; ``ValueError`` naming the
        file and field otherwise); ``array_kind`` is the kind its attributes are shown in."""
        target = kinds.kind_named(array_kind)
        if not target.host:
            raise ValueError(f"array_kind={array_kind!r}: GRU4Rec lives on the host")
        meta, arrays = _io.load_npz(path, "GRU4Rec", FORMAT_VERSION)
        params = _io.meta_value(path, meta, "params", (dict,))
        try:
            model = cls(**params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: field 'params' is not valid ({exc})") from None
        n = _io.meta_value(path, meta, "n_items", (int,))
        D, H, dt = model.embedding, model.hidden, model.dtype
        f = functools.partial(_io.field, path, arrays, dtype=dt)
        model.item_embeddings_ = f("item_embeddings", (n, D))
        model.gru_params_ = {"W": f("W", (3 * H, D)), "U": f("U", (3 * H, H)),
                             "b_ih": f("b_ih", (3 * H,)), "b_hh": f("b_hh", (3 * H,))}  # fmt: skip
        model.output_weights_ = f("output_weights", (n, H))
        model.output_bias_ = f("output_bias", (n,))
        model.n_items_ = n
        model.loss_history_ = list(meta.get("loss_history", []))
        model._kind = target
        return model


_GRU4REC_PARAMS = ("hidden", "embedding", "epochs", "learning_rate", "batch_size", "max_len",
                   "l2", "init_std", "loss", "n_sample", "sample_alpha")  # fmt: skip


class GRU4RecSession:
    """Per-user GRU states for real-time next-item recommendation (see :meth:`GRU4Rec.session`).

    ``add(user, item)`` folds one event into the user's state with one GRU step (a user seen for
    the first time starts from zeros) and returns ``(items (n,), scores (n,))`` for that user,
    best first; items the user has interacted with are left out when ``exclude_seen``. An item
    outside the fitted catalogue raises ``ValueError`` and leaves the user's state unchanged.
    ``reset(user)`` forgets a user. Users are any hashable keys.
    """

    def __init__(self, model: GRU4Rec, n: int, exclude_seen: bool) -> None:
        self.model = model
        self.n = check.positive_int("n", n)
        self.exclude_seen = bool(exclude_seen)
        self._h: dict[Any, np.ndarray] = {}
        self._seen: dict[Any, set[int]] = {}
        p = model._host("gru_params")
        self._p = (p["W"], p["U"], p["b_ih"], p["b_hh"])
        self._E = model._host("item_embeddings")
        self._V, self._c = model._host("output_weights"), model._host("output_bias")

    def add(self, user: Any, item: int) -> tuple[Any, Any]:
        n_items = self._E.shape[0]
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"item must be an int item index, got {type(item).__name__}")
        if not 0 <= int(item) < n_items:
            raise ValueError(f"item {item} is outside the fitted catalogue [0, {n_items})")
        m = self.model
        h = self._h.get(user)
        if h is None:
            h = np.zeros(m.hidden, m.dtype)
        W, U, b_ih, b_hh = self._p
        h = gru_step(self._E[int(item)], h, W, U, b_ih, b_hh, num_threads=1, backend=m.backend)
        self._h[user] = h
        seen = self._seen.setdefault(user, set())
        seen.add(int(item))
        scores = dense(h, self._V, self._c, num_threads=1, backend=m.backend)  # (n_items,)
        if self.exclude_seen:
            scores[list(seen)] = -np.inf
        k = min(self.n, n_items)
        top = np.argpartition(-scores, k - 1)[:k] if k < n_items else np.arange(n_items)
        top = top[np.argsort(-scores[top], kind="stable")]
        top = top[np.isfinite(scores[top])]
        return m._show(top.astype(np.int64)), m._show(scores[top])

    def state(self, user: Any) -> Any:
        """The user's current GRU state (H,), or None for an unknown user."""
        h = self._h.get(user)
        return None if h is None else self.model._show(h)

    def reset(self, user: Any) -> None:
        self._h.pop(user, None)
        self._seen.pop(user, None)
