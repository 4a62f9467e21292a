"""Backend probing and selection: the one place that decides which implementation runs.

Probing never raises: each backend is live or carries the reason it is not. Selection order:
``backend=`` argument > :func:`use_backend` context > ``RECFAST_BACKEND`` environment variable >
the array's kind (NumPy: cpu > numba > reference; CuPy: cuda > cupy > reference).
An explicitly requested backend is honoured or raises :class:`BackendUnavailableError`; an
automatic fall back to ``reference`` warns once.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

BACKENDS = ("cpu", "cuda", "numba", "cupy", "reference")
_AUTO_ORDER = {"numpy": ("cpu", "numba", "reference"), "cupy": ("cuda", "cupy", "reference")}
_GPU = {"cuda", "cupy"}


class BackendUnavailableError(RuntimeError):
    """A requested backend is not live here, or does not implement the operation."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    reason: str  # "" when available


def _version() -> str:
    from recfast import __version__

    return __version__


@functools.cache
def _probe(name: str) -> tuple[ModuleType | None, str]:
    """(module or None, reason). Imports lazily and caches; never raises."""
    if name == "reference":
        return importlib.import_module("recfast.reference"), ""
    if name == "cpu":
        if os.environ.get("RECFAST_DISABLE_EXT", "") == "1":
            return None, "disabled by RECFAST_DISABLE_EXT=1"
        try:
            mod = importlib.import_module("recfast._cpu")
        except ImportError as exc:
            return None, f"C++ extension recfast._cpu not built or not importable ({exc})"
        if mod.__version__ != _version():
            return (
                None,
                f"recfast._cpu is version {mod.__version__}, package is {_version()}: rebuild",
            )
        return importlib.import_module("recfast._cpu_backend"), ""
    if name == "numba":
        try:
            importlib.import_module("numba")
        except Exception as exc:  # broken llvmlite raises more than ImportError
            return None, f"numba not importable ({exc})"
        return importlib.import_module("recfast._numba"), ""
    if name == "cuda":
        return None, "the CUDA extension recfast._cuda is not part of this build yet"
    if name == "cupy":
        try:
            cupy = importlib.import_module("cupy")
        except Exception as exc:
            return None, f"cupy not importable ({type(exc).__name__})"
        try:
            if not cupy.is_available():
                return None, "cupy is installed but sees no CUDA device"
        except Exception as exc:  # pragma: no cover - driver trouble
            return None, f"cupy cannot reach a device ({exc})"
        return None, "no CuPy kernels in this build yet"
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


@functools.cache
def cpu_module() -> Any:
    """The compiled ``recfast._cpu`` module, or None."""
    return importlib.import_module("recfast._cpu") if _probe("cpu")[0] is not None else None


def backends() -> list[BackendInfo]:
    """Every backend, whether it is live, and why not when it is not."""
    return [BackendInfo(n, _probe(n)[0] is not None, _probe(n)[1]) for n in BACKENDS]


_context: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "recfast_backend", default=None
)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return name


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager: calls inside it use backend ``name`` unless they pass ``backend=``."""
    token = _context.set(_check_name(name))
    try:
        yield
    finally:
        _context.reset(token)


_warned: set[str] = set()
# Automatic choices, per (op, array kind): probing is cached, so the choice cannot change. Saves
# the search on every call of the per-step ops, whose whole budget is a few microseconds.
_auto: dict[tuple[str, str], tuple[str, Callable[..., Any]]] = {}


def select(
    op: str, backend: str | None = None, kind: str = "numpy"
) -> tuple[str, Callable[..., Any]]:
    """Return ``(backend name, implementation of op)``.

    ``kind`` is the array kind of the inputs ("numpy" or "cupy").
    """
    name = backend if backend is not None else _context.get()
    if name is None:
        name = os.environ.get("RECFAST_BACKEND") or None
    if name is None:
        hit = _auto.get((op, kind))
        if hit is not None:
            return hit
    if name is not None:
        _check_name(name)
        if (name in _GPU) != (kind == "cupy") and name != "reference":
            raise BackendUnavailableError(
                f"backend {name!r} cannot take {kind} arrays; use "
                f"{'a GPU' if kind == 'cupy' else 'a CPU'} backend or convert the arrays"
            )
        mod, reason = _probe(name)
        if mod is None:
            raise BackendUnavailableError(f"backend {name!r} is not available: {reason}")
        fn = getattr(mod, op, None)
        if fn is None:
            raise BackendUnavailableError(f"backend {name!r} does not implement {op}")
        return name, fn
    for name in _AUTO_ORDER[kind]:
        mod, _ = _probe(name)
        fn = getattr(mod, op, None) if mod is not None else None
        if fn is not None:
            if name == "reference" and op not in _warned:
                _warned.add(op)
                warnings.warn(
                    f"recfast.{op}: no fast backend is available for {kind} arrays; running the "
                    "slow NumPy reference (see recfast.show_config())",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _auto[(op, kind)] = (name, fn)
            return name, fn
    raise BackendUnavailableError(f"no backend implements {op} for {kind} arrays")
