"""Model files: versioned ``.npz`` (NumPy arrays + a JSON ``meta`` field), written atomically and
read with ``allow_pickle=False``, every field checked before a model is built from it.

Writing goes to a temporary file in the target's folder and is renamed over the target only when
complete (``os.replace`` is atomic on POSIX and Windows), so a failed save never truncates an
existing model file. Reading turns every way a file can be foreign, truncated or crafted into a
``ValueError`` that names the file and the field.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def _json_default(o: Any) -> Any:
    """NumPy scalars and dtypes in hyperparameters (``factors=np.int64(64)``) are saved as the
    Python values they stand for."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.dtype):
        return o.name
    if isinstance(o, type) and issubclass(o, np.generic):
        return np.dtype(o).name
    raise TypeError(f"cannot save a {type(o).__name__} ({o!r}) in a model file")


def save_npz(path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write ``meta`` (JSON) and ``arrays`` to ``path`` atomically."""
    blob = json.dumps(meta, default=_json_default).encode()  # fails before any file is touched
    path = Path(path)
    folder = path.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: numpy would append ".npz" to a name
            np.savez(f, meta=np.frombuffer(blob, np.uint8), **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_npz(
    path: str | Path, model: str, version: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of a file written by :func:`save_npz` for ``model`` (its class name)."""
    try:
        z = np.load(path, allow_pickle=False)
        if not hasattr(z, "files"):
            raise ValueError(f"{path} is a bare .npy array, not a recfast {model} file")
        with z:
            if "meta" not in z.files:
                raise ValueError(f"{path} is not a recfast {model} file (no 'meta' field)")
            raw = z["meta"]
            if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8:
                raise ValueError(f"{path}: the 'meta' field is not a recfast metadata array")
            try:
                meta = json.loads(raw.tobytes().decode())
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{path}: the 'meta' field is not valid JSON ({exc})") from None
            if not isinstance(meta, dict):
                raise ValueError(f"{path}: the 'meta' field is not a JSON object")
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise ValueError(f"{path} is not a readable recfast {model} file ({exc})") from None
    except ValueError as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"{path} is not a readable recfast {model} file ({exc})") from None
    kind = meta.get("model", model)
    if kind != model:
        raise ValueError(f"{path} holds a recfast {kind}, not a {model}")
    if meta.get("format_version") != version:
        raise ValueError(
            f"{path} has format version {meta.get('format_version')}; this recfast reads "
            f"version {version}"
        )
    return meta, arrays


def field(
    path: str | Path,
    arrays: dict[str, np.ndarray],
    name: str,
    shape: tuple[int | None, ...],
    *,
    dtype: Any = None,
    required: bool = True,
    finite: bool = True,
) -> np.ndarray | None:
    """``arrays[name]`` checked: present (when ``required``), a float array of ``dtype`` (or
    float32/float64; float16 only when ``dtype`` asks for it), of ``shape`` (None matches any
    size), all finite."""
    if name not in arrays:
        if required:
            raise ValueError(f"{path}: field {name!r} is missing")
        return None
    a = arrays[name]
    allowed = (np.float32, np.float64, *((np.float16,) if dtype == np.float16 else ()))
    if a.dtype not in allowed or (dtype is not None and a.dtype != dtype):
        want = np.dtype(dtype).name if dtype is not None else "float32 or float64"
        raise ValueError(f"{path}: field {name!r} has dtype {a.dtype}, expected {want}")
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{path}: field {name!r} has shape {a.shape}, expected {want}")
    if finite and a.size and not np.isfinite(a).all():
        raise ValueError(f"{path}: field {name!r} holds NaN or inf")
    return np.ascontiguousarray(a)


def meta_value(path: str | Path, meta: dict[str, Any], key: str, types: tuple[type, ...]) -> Any:
    if key not in meta:
        raise ValueError(f"{path}: meta field {key!r} is missing")
    v = meta[key]
    if not isinstance(v, types) or isinstance(v, bool) and bool not in types:
        raise ValueError(f"{path}: meta field {key!r} has the wrong type ({type(v).__name__})")
    return v
