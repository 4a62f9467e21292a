"""Peer matrix-factorization libraries timed on the same ratings: Surprise's SVD and LIBMF.

Each adapter takes ``(rows, cols, values)`` 0-based arrays, builds the peer's input outside
the timed region, times only the peer's own fit call (median over ``repeats``) and reports
test RMSE of predictions clipped to the training ratings' range, like ``recfast``'s ``score``.
Peers are imported lazily: this module imports with neither installed, and a missing or broken
peer comes back as ``PeerResult(available=False, reason=...)``.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]

SURPRISE = "surprise.SVD"
LIBMF = "libmf (PyPI)"

_F32_EXACT = 1 << 24  # LIBMF's Python binding passes indices as float32


@dataclass
class PeerResult:
    """One peer's timing on one data set; the numbers are None when it could not run."""

    name: str
    available: bool
    reason: str
    fit_seconds: float | None
    updates_per_s: float | None
    test_rmse: float | None


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def _import_surprise() -> Any:
    import surprise

    return surprise


def _import_libmf() -> Any:
    # libmf prints the path of its shared library on import; the binding has `is` on literals.
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from libmf import mf
    return mf


def _try_import(fn: Callable[[], Any]) -> tuple[Any, str]:
    try:
        return fn(), ""
    except Exception as e:  # ImportError, or a NumPy ABI error / missing .so raised at import
        return None, _one_line(e)


def available_peers() -> dict[str, str]:
    """Peer name -> ``""`` when it imports, else a one-line reason."""
    return {SURPRISE: _try_import(_import_surprise)[1], LIBMF: _try_import(_import_libmf)[1]}


def _unavailable(name: str, reason: str) -> PeerResult:
    return PeerResult(name, False, reason, None, None, None)


def _triples(t: Any, what: str) -> Triples:
    rows, cols, vals = (np.asarray(a) for a in t)
    if not (rows.ndim == cols.ndim == vals.ndim == 1 and len(rows) == len(cols) == len(vals)):
        raise ValueError(f"{what}: rows, cols and values must be 1-D arrays of one length")
    return rows.astype(np.int64), cols.astype(np.int64), vals.astype(np.float64)


def _rmse(pred: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    if len(values) == 0:
        return float("nan")
    err = np.clip(pred.astype(np.float64), lo, hi) - values
    return float(np.sqrt(np.mean(err * err)))


def _timed(fit: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        out = fit()
        times.append(time.perf_counter() - t)
    return times, out


def _result(name: str, times: list[float], nnz: int, epochs: int, rmse: float | None) -> PeerResult:
    med = statistics.median(times)
    return PeerResult(name, True, "", med, nnz * epochs / med if med > 0 else None, rmse)


def surprise_svd(
    train: Triples,
    *,
    n_users: int,
    n_items: int,
    factors: int,
    epochs: int,
    test: Triples | None = None,
    repeats: int = 1,
    seed: int = 0,
) -> PeerResult:
    """Time ``surprise.SVD(n_factors=factors, n_epochs=epochs, random_state=seed).fit``.

    Surprise's defaults otherwise: biased, lr_all=0.005, reg_all=0.02, single-threaded. The
    ``Trainset`` is built directly with inner id == our 0-based index (no pandas) and is not
    timed; each timed fit starts from an uncached global mean, as a fresh ``fit`` would.
    Test predictions follow ``SVD.estimate`` (a user or item without training ratings is
    unknown: its bias and factor terms are dropped), computed with NumPy.
    """
    surprise, why = _try_import(_import_surprise)
    if surprise is None:
        return _unavailable(SURPRISE, why)
    rows, cols, vals = _triples(train, "train")
    if len(vals) == 0:
        return _unavailable(SURPRISE, "empty training set")

    def groups(keys: np.ndarray, other: np.ndarray) -> dict[int, list[tuple[int, float]]]:
        order = np.argsort(keys, kind="stable")
        k, o, v = keys[order], other[order].tolist(), vals[order].tolist()
        starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
        ends = np.r_[starts[1:], len(k)]
        return {
            int(k[s]): list(zip(o[s:e], v[s:e])) for s, e in zip(starts.tolist(), ends.tolist())
        }

    lo, hi = float(vals.min()), float(vals.max())
    trainset = surprise.Trainset(
        groups(rows, cols),
        groups(cols, rows),
        n_users,
        n_items,
        len(vals),
        (lo, hi),
        {u: u for u in range(n_users)},
        {i: i for i in range(n_items)},
    )

    def fit() -> Any:
        trainset._global_mean = None  # Surprise caches it on the trainset during fit
        algo = surprise.SVD(n_factors=factors, n_epochs=epochs, random_state=seed)
        algo.fit(trainset)
        return algo

    try:
        times, algo = _timed(fit, repeats)
    except Exception as e:
        return _unavailable(SURPRISE, f"fit failed: {_one_line(e)}")

    rmse = None
    if test is not None:
        tr, tc, tv = _triples(test, "test")
        ku = np.bincount(rows, minlength=n_users)[tr] > 0
        ki = np.bincount(cols, minlength=n_items)[tc] > 0
        both = ku & ki
        pred = np.full(len(tv), trainset.global_mean)
        pred[ku] += algo.bu[tr[ku]]
        pred[ki] += algo.bi[tc[ki]]
        u, i = tr[both], tc[both]
        dots = np.empty(len(u))
        for s in range(0, len(u), 1 << 18):
            sl = slice(s, s + (1 << 18))
            dots[sl] = np.einsum("ij,ij->i", algo.pu[u[sl]], algo.qi[i[sl]])
        pred[both] += dots
        rmse = _rmse(pred, tv, lo, hi)
    return _result(SURPRISE, times, len(vals), epochs, rmse)


def libmf_mf(
    train: Triples,
    *,
    n_users: int,
    n_items: int,
    factors: int,
    epochs: int,
    test: Triples | None = None,
    repeats: int = 1,
    seed: int = 0,
    num_threads: int = 2,
) -> PeerResult:
    """Time ``libmf.mf.MF(k=factors, nr_iters=epochs, nr_threads=num_threads).fit`` (LIBMF).

    LIBMF's defaults otherwise: squared loss (``fun=0``), no biases, eta=0.1 (AdaGrad),
    lambda_p2 = lambda_q2 = 0 and lambda_p1 = lambda_q1 = 0.04 as this binding sets them;
    ``nr_bins`` is 26, raised to ``2 * num_threads + 1`` when that is larger. ``seed`` has no
    effect: LIBMF seeds itself with fixed seeds. The timed call includes the binding's O(nnz)
    copy of the ``(nnz, 3)`` float32 input. Test predictions use ``MF.predict``; a user or
    item without training ratings gets LIBMF's global average.
    """
    mf, why = _try_import(_import_libmf)
    if mf is None:
        return _unavailable(LIBMF, why)
    if max(n_users, n_items) > _F32_EXACT:
        return _unavailable(LIBMF, "more than 2**24 users or items: the binding passes float32 ids")
    rows, cols, vals = _triples(train, "train")
    if len(vals) == 0:
        return _unavailable(LIBMF, "empty training set")
    X = np.empty((len(vals), 3), np.float32)  # C order: one [row, col, value] per line
    X[:, 0], X[:, 1], X[:, 2] = rows, cols, vals
    opts = dict(
        k=factors,
        nr_iters=epochs,
        nr_threads=num_threads,
        nr_bins=max(26, 2 * num_threads + 1),
        quiet=True,
    )

    def fit() -> Any:
        engine = mf.MF(**opts)
        try:
            engine.fit(X)
        except ValueError as e:  # `out.contents` of a NULL model: LIBMF rejected the options
            raise RuntimeError("LIBMF returned no model (options rejected, see stderr)") from e
        return engine

    try:
        times, engine = _timed(fit, repeats)
    except Exception as e:
        return _unavailable(LIBMF, f"fit failed: {_one_line(e)}")

    rmse = None
    if test is not None:
        tr, tc, tv = _triples(test, "test")
        # The binding's C side reads the (n, 2) index array column-major (X[i], X[i + n]),
        # so it must be Fortran-ordered; MF.predict's astype keeps that order.
        idx = np.asfortranarray(np.column_stack((tr, tc)).astype(np.float32))
        pred = engine.predict(idx) if len(tv) else np.empty(0, np.float32)
        rmse = _rmse(np.asarray(pred), tv, float(vals.min()), float(vals.max()))
    return _result(LIBMF, times, len(vals), epochs, rmse)
