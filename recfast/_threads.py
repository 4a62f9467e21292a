"""Thread count for the parallel kernels.

The count is passed into every kernel call explicitly (OpenMP limits are per calling thread, so a
limit set in one Python thread would not reach a kernel called from another). Precedence:
``num_threads=`` argument > :func:`set_num_threads` > the OpenMP limit of the calling thread
(``OMP_NUM_THREADS``, or ``threadpoolctl.threadpool_limits(n, user_api="openmp")``, which sets it)
> the number of usable cores.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_default: int | None = None


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Set the default thread count of recfast's parallel kernels (``None`` restores the default).

    Process-wide and seen by calls from every Python thread.
    """
    global _default
    if n is not None:
        n = _check_count(n, "n")
    with _lock:
        _default = n


def get_num_threads() -> int:
    """Thread count a kernel called now, from this Python thread, would use."""
    if _default is not None:
        return _default
    from recfast._backends import cpu_module

    mod = cpu_module()
    if mod is not None and mod.openmp:
        return int(mod.omp_max_threads())  # honours OMP_NUM_THREADS and threadpoolctl
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return _cpu_count()


def _check_count(n: object, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
        raise TypeError(f"{name} must be a positive int, got {type(n).__name__}")
    n = int(n)  # type: ignore[call-overload]
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return n


def resolve_num_threads(num_threads: int | None) -> int:
    """The count a kernel gets: the argument when given, else :func:`get_num_threads`."""
    if num_threads is None:
        return get_num_threads()
    return _check_count(num_threads, "num_threads")
