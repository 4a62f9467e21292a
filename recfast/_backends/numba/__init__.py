"""The ``numba`` backend: the CPU fallback when the C++ extension is not built; the same
algorithms and schedules as the ``cpu`` kernels, JIT-compiled once and cached in a user cache
folder (``$RECFAST_CACHE_DIR``, else ``$XDG_CACHE_HOME/recfast/numba``, else
``~/.cache/recfast/numba``), so the second process starts fast even where the installed package
is read-only. ``NUMBA_CACHE_DIR``, when set, wins (Numba's own switch)."""

from __future__ import annotations

import importlib
import os


def cache_dir() -> str:
    """Where recfast's compiled Numba kernels are cached."""
    env = os.environ.get("RECFAST_CACHE_DIR")
    if env:
        return os.path.join(env, "numba")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "recfast", "numba")


def _install_cache_locator() -> None:
    """Put recfast's functions (and only them) first in Numba's cache lookup, pointing at
    cache_dir(). Numba picks a cache locator per function at decoration time, so this runs when
    this package is imported, before any of its kernel modules; it must never break an import."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # renamed in 0.59
        base = getattr(caching, "UserWideCacheLocator", None) or caching._UserWideCacheLocator
    except Exception:  # no or broken numba: probe() reports it
        return
    if any(getattr(c, "_recfast", False) for c in impl._locator_classes):
        return

    class RecfastCacheLocator(base):
        _recfast = True

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(cache_dir(), self.get_suitable_cache_subpath(py_file))

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.environ.get("NUMBA_CACHE_DIR") or not (
                getattr(py_func, "__module__", "") or ""
            ).startswith("recfast."):
                return None
            return super().from_function(py_func, py_file)  # None if the folder is not writable

    impl._locator_classes.insert(0, RecfastCacheLocator)


def probe() -> str:
    try:
        importlib.import_module("numba")
    except Exception as exc:  # a broken llvmlite raises more than ImportError
        return f"numba not importable ({type(exc).__name__}: {exc})"
    return ""


_install_cache_locator()
