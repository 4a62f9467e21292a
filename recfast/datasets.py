"""Rating data sets: a container, MovieLens loaders and a synthetic generator.

All ratings are stored as coordinate triplets ``(rows, cols, values)`` with
0-based contiguous user / item indices plus the maps back to the raw ids.

Public API
----------
Ratings
    Immutable container of ``nnz`` ratings with id maps.
load_movielens
    Read a MovieLens ratings file (ml-100k, ml-1m/10m, ml-latest/20m/25m)
    or a directory holding one.
synthetic_ratings
    Ratings with a planted low-rank structure, for tests and benchmarks.
user_sequences
    Each user's items in time order, for sequence (next-item) models.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import DTypeLike

__all__ = ["Ratings", "load_movielens", "synthetic_ratings", "user_sequences"]

_INT32_LIMIT = 2**31


def _index_dtype(n: int) -> type[np.signedinteger]:
    """Smallest index dtype (int32 or int64) for indices in ``[0, n)``."""
    return np.int64 if n >= _INT32_LIMIT else np.int32


# --------------------------------------------------------------------------
# Container
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class Ratings:
    """Explicit ratings in coordinate form with maps back to raw ids.

    Attributes
    ----------
    rows : np.ndarray, shape (nnz,), int32 (int64 for >= 2**31 users)
        0-based user index of each rating.
    cols : np.ndarray, shape (nnz,), int32 (int64 for >= 2**31 items)
        0-based item index of each rating.
    values : np.ndarray, shape (nnz,), float32 (or another float dtype)
        Rating values.
    timestamps : np.ndarray of shape (nnz,), int64, or None
        Unix time of each rating, ``None`` when unknown (synthetic data).
    user_ids : np.ndarray, shape (n_users,)
        Raw id of each user index: ``user_ids[rows[j]]`` is the raw user id
        of rating ``j``.
    item_ids : np.ndarray, shape (n_items,)
        Raw id of each item index.
    n_users, n_items : int
        Matrix shape; may exceed the largest index present (e.g. a test
        split read in the index space of its training split).

    Notes
    -----
    Arrays are not copied; do not modify them in place. Equality is
    identity (``eq=False``) since element-wise array comparison is ambiguous.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    timestamps: np.ndarray | None
    user_ids: np.ndarray
    item_ids: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        # Coerce to arrays / ints (frozen: bypass __setattr__), then validate.
        for name in ("rows", "cols", "values", "user_ids", "item_ids"):
            object.__setattr__(self, name, np.asarray(getattr(self, name)))
        if self.timestamps is not None:
            object.__setattr__(self, "timestamps", np.asarray(self.timestamps))
        object.__setattr__(self, "n_users", int(self.n_users))
        object.__setattr__(self, "n_items", int(self.n_items))

        nnz = self.values.shape[0] if self.values.ndim == 1 else -1
        arrays = {"rows": self.rows, "cols": self.cols, "values": self.values}
        if self.timestamps is not None:
            arrays["timestamps"] = self.timestamps
        for name, arr in arrays.items():
            if arr.ndim != 1 or arr.shape[0] != nnz:
                raise ValueError(
                    f"Ratings.{name} must be 1-D of the same length as values; "
                    f"got shape {arr.shape}, values shape {self.values.shape}"
                )
        for name in ("rows", "cols"):
            if getattr(self, name).dtype.kind not in "iu":
                raise TypeError(f"Ratings.{name} must have an integer dtype")
        if self.values.dtype.kind != "f":
            raise TypeError("Ratings.values must have a floating dtype")
        if self.n_users < 0 or self.n_items < 0:
            raise ValueError("Ratings.n_users and n_items must be >= 0")
        if self.user_ids.shape != (self.n_users,):
            raise ValueError(
                f"Ratings.user_ids must have shape ({self.n_users},), got {self.user_ids.shape}"
            )
        if self.item_ids.shape != (self.n_items,):
            raise ValueError(
                f"Ratings.item_ids must have shape ({self.n_items},), got {self.item_ids.shape}"
            )
        if nnz:
            for name, n in (("rows", self.n_users), ("cols", self.n_items)):
                idx = getattr(self, name)
                if idx.min() < 0 or idx.max() >= n:
                    raise ValueError(f"Ratings.{name} out of range [0, {n})")

    # -- basic properties ---------------------------------------------------

    @property
    def nnz(self) -> int:
        """Number of ratings."""
        return int(self.values.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Matrix shape ``(n_users, n_items)``."""
        return (self.n_users, self.n_items)

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        ts = "yes" if self.timestamps is not None else "None"
        return (
            f"Ratings(n_users={self.n_users}, n_items={self.n_items}, "
            f"nnz={self.nnz}, values={self.values.dtype}, timestamps={ts})"
        )

    # -- conversions --------------------------------------------------------

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(rows, cols, values)``, each of shape (nnz,)."""
        return self.rows, self.cols, self.values

    def to_coo(self, dtype: DTypeLike = np.float32) -> sp.coo_matrix:
        """Sparse matrix of shape (n_users, n_items) in COO format.

        Parameters
        ----------
        dtype : dtype, default float32
            dtype of the matrix data.

        Returns
        -------
        scipy.sparse.coo_matrix, shape (n_users, n_items)
            Copy of the ratings (duplicate pairs are kept as is).
        """
        data = self.values.astype(dtype, copy=True)
        return sp.coo_matrix((data, (self.rows, self.cols)), shape=self.shape, copy=True)

    def to_csr(self, dtype: DTypeLike = np.float32) -> sp.csr_matrix:
        """Sparse matrix of shape (n_users, n_items) in CSR format.

        Duplicate ``(user, item)`` pairs, if any, are summed.
        """
        return self.to_coo(dtype).tocsr()

    # -- selection ----------------------------------------------------------

    def subset(self, mask_or_index: np.ndarray | slice) -> Ratings:
        """Ratings selected by a boolean mask or an index array.

        Parameters
        ----------
        mask_or_index : np.ndarray or slice
            Boolean mask of shape (nnz,), integer indices of shape (k,), or a
            slice.

        Returns
        -------
        Ratings
            Selected ratings with the same id maps and shape.
        """
        key = mask_or_index
        if not isinstance(key, slice):
            key = np.asarray(key)
            if key.dtype == bool:
                if key.shape != (self.nnz,):
                    raise ValueError(f"boolean mask must have shape ({self.nnz},), got {key.shape}")
            elif key.dtype.kind not in "iu":
                raise TypeError("subset expects a boolean mask or integer indices")
            elif key.ndim != 1:
                raise ValueError("index array must be 1-D")
        ts = self.timestamps[key] if self.timestamps is not None else None
        return Ratings(
            rows=self.rows[key],
            cols=self.cols[key],
            values=self.values[key],
            timestamps=ts,
            user_ids=self.user_ids,
            item_ids=self.item_ids,
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def train_test_split(
        self,
        test_fraction: float = 0.1,
        seed: int | np.random.Generator | None = None,
    ) -> tuple[Ratings, Ratings]:
        """Random split of the ratings into train and test parts.

        Parameters
        ----------
        test_fraction : float, default 0.1
            Fraction in [0, 1] of ratings put in the test part (rounded to the
            nearest count).
        seed : int, Generator or None
            Seed for ``np.random.default_rng``.

        Returns
        -------
        train, test : Ratings
            Disjoint parts covering all ratings, each keeping the original
            order, with the same id maps and shape as ``self``.
        """
        f = float(test_fraction)
        if not 0.0 <= f <= 1.0:
            raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
        rng = np.random.default_rng(seed)
        n_test = round(f * self.nnz)
        is_test = np.zeros(self.nnz, dtype=bool)
        is_test[rng.permutation(self.nnz)[:n_test]] = True
        return self.subset(~is_test), self.subset(is_test)


# --------------------------------------------------------------------------
# MovieLens
# --------------------------------------------------------------------------

_Format = Literal["100k", "dat", "csv"]
_DIR_CANDIDATES = ("u.data", "ratings.dat", "ratings.csv")
_100K_NAME = re.compile(r"u[0-9a-z]*\.(data|base|test)", re.IGNORECASE)
_SEPARATORS: dict[str, bytes] = {"100k": b"\t", "dat": b"::", "csv": b","}
_CHUNK_BYTES = 8 << 20  # parse in ~8 MB pieces to bound temporary memory

# Lookup table of the ASCII whitespace bytes used by bytes.split().
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True


def _resolve_path(path: Path) -> Path:
    """Map a directory to the ratings file inside it."""
    if not path.exists():
        raise FileNotFoundError(f"MovieLens path does not exist: {path}")
    if path.is_dir():
        for name in _DIR_CANDIDATES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"no MovieLens ratings file in directory {path}: looked for "
            + ", ".join(_DIR_CANDIDATES)
        )
    return path


def _first_line(data: bytes) -> tuple[bytes, int, int]:
    """First non-blank line, its 0-based line number and end offset."""
    pos, lineno = 0, 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        line = data[pos:end]
        if line.strip():
            return line, lineno, end
        pos, lineno = end, lineno + 1
    return b"", lineno, len(data)


def _detect_format(path: Path, first: bytes) -> _Format:
    """File format from the file name, else from the first line."""
    name = path.name.lower()
    if name.endswith(".dat"):
        return "dat"
    if name.endswith(".csv"):
        return "csv"
    if _100K_NAME.fullmatch(name) or path.suffix.lower() in (".data", ".base", ".test"):
        return "100k"
    if b"userid" in first.lower() or b"," in first:
        return "csv"
    if b"::" in first:
        return "dat"
    if b"\t" in first or len(first.split()) == 4:
        return "100k"
    raise ValueError(
        f"{path}: cannot detect the MovieLens format (expected tab-separated "
        "u.data, '::'-separated ratings.dat or comma-separated ratings.csv)"
    )


def _is_number(tok: bytes) -> bool:
    """Whether ``tok`` is a plain decimal number (as np.fromstring reads it)."""
    if b"_" in tok:
        return False
    try:
        float(tok)
    except ValueError:
        return False
    return True


def _scan_for_error(chunk: bytes, fname: str, line0: int, sep: str) -> None:
    """Python line-by-line check of ``chunk``; raises on the first bad line.

    ``line0`` is the 1-based file line number of the chunk's first line.
    """
    for k, line in enumerate(chunk.split(b"\n")):
        toks = line.split()
        if not toks:
            continue
        lineno = line0 + k
        if len(toks) != 4:
            raise ValueError(
                f"{fname}, line {lineno}: expected 4 fields separated by {sep!r}, got {len(toks)}"
            )
        for name, tok in zip(("user", "item", "rating", "timestamp"), toks):
            if not _is_number(tok):
                raise ValueError(
                    f"{fname}, line {lineno}: non-numeric {name} field "
                    f"{tok.decode(errors='replace')!r}"
                )


def _parse_body(body: bytes, fname: str, line0: int, sep: str, engine: str) -> np.ndarray:
    """Parse normalised (space separated) records into a (n, 4) float64 array.

    Parameters
    ----------
    body : bytes
        File content after the header, separators replaced by spaces.
    line0 : int
        1-based file line number of the first line of ``body``.

    Returns
    -------
    np.ndarray, shape (n, 4), float64
        Columns user, item, rating, timestamp.
    """
    parts: list[np.ndarray] = []
    pos, line, total = 0, line0, 0
    while pos < len(body):
        # Cut the next chunk at a line end.
        end = min(pos + _CHUNK_BYTES, len(body))
        if end < len(body):
            nl = body.find(b"\n", end)
            end = len(body) if nl < 0 else nl + 1
        chunk = body[pos:end]
        arr = np.frombuffer(chunk, dtype=np.uint8)

        # Fields per line, vectorised: count token starts between newlines.
        ws = _WS[arr]
        start = ~ws
        start[1:] &= ws[:-1]
        newlines = np.flatnonzero(arr == 10)
        per_line = np.bincount(
            np.searchsorted(newlines, np.flatnonzero(start)),
            minlength=newlines.size + 1,
        )
        bad = np.flatnonzero((per_line != 0) & (per_line != 4))
        if bad.size:
            b = int(bad[0])
            raise ValueError(
                f"{fname}, line {line + b}: expected 4 fields separated by "
                f"{sep!r}, got {per_line[b]}"
            )
        n_rec = int(np.count_nonzero(per_line))

        if n_rec and engine == "numpy":
            try:
                vals = np.fromstring(chunk, dtype=np.float64, sep=" ")
            except ValueError:
                vals = None
            if vals is None or vals.size != 4 * n_rec:
                _scan_for_error(chunk, fname, line, sep)
                raise ValueError(
                    f"{fname}, lines {line}-{line + newlines.size}: "
                    "could not parse the numeric fields"
                )
            parts.append(vals.reshape(n_rec, 4))
        total += n_rec
        line += newlines.size
        pos = end

    if total == 0:
        return np.empty((0, 4))
    if engine == "pandas":
        return _parse_pandas(body, fname, line0, sep, total)
    return np.concatenate(parts)


def _parse_pandas(body: bytes, fname: str, line0: int, sep: str, n_rec: int) -> np.ndarray:
    """Parse with pandas' C reader; falls back to NumPy on any failure."""
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(body),
            sep=r"\s+",
            header=None,
            dtype=np.float64,
            na_filter=False,
            engine="c",
        )
        vals = frame.to_numpy(dtype=np.float64)
        if vals.shape == (n_rec, 4):
            return vals
    except (ValueError, TypeError, pd.errors.ParserError, pd.errors.EmptyDataError):
        pass
    # NumPy path gives precise error messages (or the same result).
    return _parse_body(body, fname, line0, sep, "numpy")


def _record_lines(body: bytes, line0: int) -> np.ndarray:
    """1-based file line numbers of the non-blank lines of ``body``."""
    return np.array(
        [line0 + k for k, ln in enumerate(body.split(b"\n")) if ln.strip()],
        dtype=np.int64,
    )


def _map_ids(raw: np.ndarray, id_map: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``raw`` ids in ``id_map`` and a mask of known ids.

    Returns
    -------
    idx : np.ndarray, shape (n,), int64
        Index into ``id_map`` (meaningless where ``known`` is False).
    known : np.ndarray, shape (n,), bool
    """
    if id_map.ndim != 1:
        raise ValueError(f"id_maps: {what} ids must be 1-D")
    if id_map.size == 0:
        return np.zeros(raw.shape, np.int64), np.zeros(raw.shape, bool)
    if np.all(id_map[1:] > id_map[:-1]):  # sorted & unique (np.unique output)
        order, sorted_ids = None, id_map
    else:
        order = np.argsort(id_map, kind="stable")
        sorted_ids = id_map[order]
        if np.any(sorted_ids[1:] == sorted_ids[:-1]):
            raise ValueError(f"id_maps: {what} ids contain duplicates")
    pos = np.minimum(np.searchsorted(sorted_ids, raw), sorted_ids.size - 1)
    known = sorted_ids[pos] == raw
    idx = pos if order is None else order[pos]
    return idx.astype(np.int64, copy=False), known


def load_movielens(
    path: str | Path,
    *,
    id_maps: tuple[np.ndarray, np.ndarray] | None = None,
    unknown: Literal["error", "drop"] = "error",
    engine: Literal["auto", "numpy", "pandas"] = "auto",
) -> Ratings:
    """Load MovieLens ratings from a file or a data-set directory.

    Supported formats (columns user, item, rating, timestamp):

    - ml-100k ``u.data``, ``u1.base``, ``u1.test``, ``ua.base``, ...:
      tab-separated, no header.
    - ml-1m / ml-10m ``ratings.dat``: ``user::item::rating::timestamp``.
    - ml-latest / ml-20m / ml-25m ``ratings.csv``: comma-separated with the
      header ``userId,movieId,rating,timestamp``; ratings in 0.5 steps.

    The format is detected from the file name (``*.dat``, ``*.csv``,
    ``u*.data|base|test``) and otherwise from the first line (a ``userId``
    header or a comma: csv; ``::``: dat; a tab or 4 whitespace-separated
    fields: 100k).

    Parameters
    ----------
    path : str or Path
        A ratings file, or a directory holding ``u.data``, ``ratings.dat`` or
        ``ratings.csv`` (tried in that order).
    id_maps : (user_ids, item_ids) or None
        Existing raw-id maps, e.g. ``(train.user_ids, train.item_ids)``, to
        read a file in the index space of another one (``u1.test`` with the
        maps of ``u1.base``). ``None`` builds new maps: raw ids are mapped to
        0-based indices in sorted order of raw id.
    unknown : {"error", "drop"}, default "error"
        With ``id_maps``: what to do with ratings whose user or item is not
        in the maps, raise ValueError or drop those ratings.
    engine : {"auto", "numpy", "pandas"}, default "auto"
        Number parser: pandas' C reader if importable ("auto"), else a
        NumPy-based one. Results are identical.

    Returns
    -------
    Ratings
        ``rows``/``cols`` int32 of shape (nnz,), ``values`` float32,
        ``timestamps`` int64, ``user_ids``/``item_ids`` int64 raw ids (or the
        given ``id_maps``). An empty file (or a header only) gives an empty
        Ratings with ``n_users = n_items = 0`` (or the sizes of ``id_maps``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist, or a directory holds no ratings file.
    ValueError
        Malformed content (wrong field count, non-numeric field, non-finite
        rating, non-integer id or timestamp), naming the file and line; or
        unknown ids with ``unknown="error"``.

    Notes
    -----
    Raw ids and timestamps go through float64, so they must be integers
    below 2**53 (true of all MovieLens releases). Duplicate (user, item)
    pairs are kept as they are.
    """
    if unknown not in ("error", "drop"):
        raise ValueError(f"unknown must be 'error' or 'drop', got {unknown!r}")
    if engine not in ("auto", "numpy", "pandas"):
        raise ValueError(f"engine must be 'auto', 'numpy' or 'pandas', got {engine!r}")
    if engine == "auto":
        try:
            import pandas  # noqa: F401

            engine = "pandas"
        except ImportError:
            engine = "numpy"

    file = _resolve_path(Path(path))
    fname = str(file)
    data = file.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
        data = data[3:]

    first, first_no, first_end = _first_line(data)
    fmt = _detect_format(file, first)
    sep = _SEPARATORS[fmt]

    # Skip a csv header line (first field not numeric).
    body_start, line0 = 0, 1
    if fmt == "csv" and first.strip():
        head = first.replace(b",", b" ").split()
        if not _is_number(head[0]):
            body_start, line0 = first_end, first_no + 2
    body = data[body_start:]
    if fmt != "100k":  # any whitespace already separates 100k fields
        body = body.replace(sep, b" ")

    rec = _parse_body(body, fname, line0, sep.decode(), engine)
    users, items, ratings, stamps = rec.T

    # Value checks; line numbers are only computed on error.
    def fail(mask: np.ndarray, msg: str) -> None:
        j = int(np.flatnonzero(mask)[0])
        lineno = _record_lines(body, line0)[j]
        raise ValueError(f"{fname}, line {lineno}: {msg}")

    bad = ~np.isfinite(ratings)
    if bad.any():
        fail(bad, "rating is not a finite number")
    for name, col in (("user id", users), ("item id", items), ("timestamp", stamps)):
        bad = ~np.isfinite(col) | (col != np.floor(col)) | (np.abs(col) >= 2.0**53)
        if bad.any():
            fail(bad, f"{name} is not an integer")

    users = users.astype(np.int64)
    items = items.astype(np.int64)
    stamps = stamps.astype(np.int64)
    values = ratings.astype(np.float32)

    if id_maps is None:
        user_ids, u_idx = np.unique(users, return_inverse=True)
        item_ids, i_idx = np.unique(items, return_inverse=True)
    else:
        if len(id_maps) != 2:
            raise ValueError("id_maps must be a pair (user_ids, item_ids)")
        user_ids, item_ids = (np.asarray(m) for m in id_maps)
        u_idx, u_known = _map_ids(users, user_ids, "user")
        i_idx, i_known = _map_ids(items, item_ids, "item")
        known = u_known & i_known
        if not known.all():
            if unknown == "error":
                msgs = []
                for what, raw, ok in (
                    ("user", users, u_known),
                    ("item", items, i_known),
                ):
                    if not ok.all():
                        ex = np.unique(raw[~ok])
                        more = " ..." if ex.size > 5 else ""
                        msgs.append(f"{what} ids {ex[:5].tolist()}{more}")
                raise ValueError(
                    f"{fname}: {int((~known).sum())} ratings have ids not in "
                    f"id_maps ({'; '.join(msgs)}); pass unknown='drop' to "
                    "discard them"
                )
            u_idx, i_idx = u_idx[known], i_idx[known]
            values, stamps = values[known], stamps[known]

    n_users, n_items = int(user_ids.size), int(item_ids.size)
    return Ratings(
        rows=u_idx.astype(_index_dtype(n_users)),
        cols=i_idx.astype(_index_dtype(n_items)),
        values=values,
        timestamps=stamps,
        user_ids=user_ids,
        item_ids=item_ids,
        n_users=n_users,
        n_items=n_items,
    )


# --------------------------------------------------------------------------
# Sequences
# --------------------------------------------------------------------------


def user_sequences(ratings: Ratings) -> list[np.ndarray]:
    """Each user's rated items sorted by timestamp: the input of a next-item model.

    Parameters
    ----------
    ratings : Ratings
        With ``timestamps`` (as :func:`load_movielens` returns them).

    Returns
    -------
    list of ``n_users`` int64 arrays
        ``sequences[u]`` holds the item indices user ``u`` rated, oldest first (empty for a user
        without ratings). Ratings with equal timestamps keep their order in ``ratings`` (a stable
        sort), so the result is deterministic for a given file.

    Raises
    ------
    ValueError
        If ``ratings.timestamps`` is None (e.g. synthetic ratings): there is no time order.
    """
    if ratings.timestamps is None:
        raise ValueError(
            "user_sequences needs ratings with timestamps (synthetic ratings have none)"
        )
    order = np.lexsort((ratings.timestamps, ratings.rows))  # by user, then time; stable
    items = ratings.cols[order].astype(np.int64)
    bounds = np.cumsum(np.bincount(ratings.rows, minlength=ratings.n_users))[:-1]
    return list(np.split(items, bounds))


# --------------------------------------------------------------------------
# Synthetic data
# --------------------------------------------------------------------------

_BIAS_STD = 0.3


def _check_pos_int(name: str, value: object) -> int:
    """``value`` as int, or ValueError naming ``name`` if not a positive int."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not (ok and value > 0):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _sorted_unique(x: np.ndarray) -> np.ndarray:
    """Sorted distinct values of ``x`` (sort-based; much faster than the
    hash-based ``np.unique`` of recent NumPy on large int64 arrays)."""
    x = np.sort(x)
    keep = np.empty(x.size, dtype=bool)
    keep[:1] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


def _sample_pairs(total: int, nnz: int, rng: np.random.Generator) -> np.ndarray:
    """``nnz`` distinct flat indices in ``[0, total)`` in random order."""
    if 4 * nnz >= total:
        # Dense: a permutation of all cells is cheap enough.
        return rng.permutation(total)[:nnz]
    # Sparse: oversample so that ~all needed distinct values come in one go
    # (m draws give total * (1 - exp(-m / total)) distinct values on average).
    target = nnz + 4.0 * math.sqrt(nnz) + 16.0
    draws = math.ceil(-total * math.log1p(-min(target, 0.9 * total) / total))
    flat = _sorted_unique(rng.integers(0, total, size=draws, dtype=np.int64))
    while flat.size < nnz:  # rare top-up
        short = nnz - flat.size
        extra = rng.integers(0, total, size=2 * short + 16, dtype=np.int64)
        flat = _sorted_unique(np.concatenate([flat, extra]))
    # Random subset of size nnz, in random order.
    return flat[rng.permutation(flat.size)[:nnz]]


def synthetic_ratings(
    n_users: int,
    n_items: int,
    nnz: int,
    *,
    rank: int = 10,
    noise: float = 0.1,
    seed: int | np.random.Generator | None = None,
    dtype: DTypeLike = np.float32,
    rating_scale: tuple[float, float] = (1.0, 5.0),
) -> Ratings:
    """Random ratings with a planted low-rank structure.

    Model: ``U ~ N(0, 1/sqrt(rank))`` of shape (n_users, rank) and ``V`` of
    shape (n_items, rank) (variance ``1/sqrt(rank)``, so ``U_u . V_i`` has
    unit variance), user / item biases ``~ N(0, 0.3**2)``. The signal
    ``s = (U_u . V_i + b_u + b_i) / sqrt(1 + 2 * 0.3**2)`` has unit variance and

        ``r = mid + (hi - lo) / 4 * (s + noise * eps)``,  ``eps ~ N(0, 1)``,

    clipped to ``[lo, hi]`` where ``(lo, hi) = rating_scale`` and ``mid`` is
    its middle, so ``s`` within +-2 standard deviations spans the scale.
    Values are continuous (not rounded).

    Parameters
    ----------
    n_users, n_items : int
        Matrix shape, positive.
    nnz : int
        Number of distinct (user, item) pairs, ``1 <= nnz <= n_users*n_items``.
    rank : int, default 10
        Rank of the planted structure.
    noise : float, default 0.1
        Noise standard deviation relative to the signal's (>= 0).
    seed : int, Generator or None
        Seed for ``np.random.default_rng``; equal seeds give equal output.
    dtype : float dtype, default float32
        dtype of ``values``.
    rating_scale : (float, float), default (1.0, 5.0)
        Bounds ``lo < hi`` of the ratings.

    Returns
    -------
    Ratings
        ``rows``/``cols`` of shape (nnz,) (int32; int64 if a dimension is
        >= 2**31) in random order with no duplicate pairs, ``values`` of shape
        (nnz,) and the given dtype, ``timestamps=None``, ``user_ids =
        arange(n_users)``, ``item_ids = arange(n_items)``.

    Raises
    ------
    ValueError
        Invalid arguments, naming the argument.
    """
    n_users = _check_pos_int("n_users", n_users)
    n_items = _check_pos_int("n_items", n_items)
    nnz = _check_pos_int("nnz", nnz)
    rank = _check_pos_int("rank", rank)
    total = n_users * n_items
    if nnz > total:
        raise ValueError(f"nnz must be <= n_users * n_items = {total}, got {nnz}")
    if total >= 2**63:
        raise ValueError(f"n_users * n_items = {total} must be < 2**63")
    try:
        noise = float(noise)
    except (TypeError, ValueError):
        raise ValueError(f"noise must be a non-negative number, got {noise!r}") from None
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a non-negative number, got {noise!r}")
    try:
        lo, hi = (float(x) for x in rating_scale)
    except (TypeError, ValueError):
        raise ValueError(f"rating_scale must be a pair (lo, hi), got {rating_scale!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"rating_scale must satisfy lo < hi, got {rating_scale!r}")
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")

    rng = np.random.default_rng(seed)
    flat = _sample_pairs(total, nnz, rng)
    rows = (flat // n_items).astype(_index_dtype(n_users))
    cols = (flat % n_items).astype(_index_dtype(n_items))
    del flat

    std = rank**-0.25  # variance 1/sqrt(rank) -> unit-variance dot products
    u = rng.normal(0.0, std, size=(n_users, rank))
    v = rng.normal(0.0, std, size=(n_items, rank))
    bu = rng.normal(0.0, _BIAS_STD, size=n_users)
    bi = rng.normal(0.0, _BIAS_STD, size=n_items)
    eps = rng.standard_normal(nnz)

    # values = mid + scale * (signal + noise * eps), in chunks to bound memory.
    mid, scale = 0.5 * (lo + hi), 0.25 * (hi - lo)
    norm = 1.0 / math.sqrt(1.0 + 2.0 * _BIAS_STD**2)
    values = np.empty(nnz, dtype=dtype)
    step = 1 << 14  # small chunks stay in cache
    for s in range(0, nnz, step):
        r, c = rows[s : s + step], cols[s : s + step]
        ur, vc = np.take(u, r, axis=0), np.take(v, c, axis=0)
        sig = np.einsum("ij,ij->i", ur, vc) + np.take(bu, r) + np.take(bi, c)
        out = mid + scale * (norm * sig + noise * eps[s : s + step])
        np.clip(out, lo, hi, out=out)
        values[s : s + step] = out

    return Ratings(
        rows=rows,
        cols=cols,
        values=values,
        timestamps=None,
        user_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
        n_users=n_users,
        n_items=n_items,
    )
