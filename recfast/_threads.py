"""Thread count for the parallel kernels.

The count is passed into every kernel call explicitly (OpenMP limits are per calling thread, so a
limit set in one Python thread would not reach a kernel called from another). Precedence:
``num_threads=`` argument > :func:`set_num_threads` > the OpenMP limit of the calling thread
(``OMP_NUM_THREADS``, or ``threadpoolctl.threadpool_limits(n, user_api="openmp")``, which sets it)
> the number of usable cores.

Every count is checked here, once, for every op and backend: a positive int (bool, float and
None-like values are TypeErrors, 0 and negatives ValueErrors), and a count above the usable cores
(``os.sched_getaffinity``) is clamped to them: more threads than cores only slow the kernels
down, and a count such as 10**6 would make the OpenMP runtime fail to start them (or crash). The
clamp applies to ``OMP_NUM_THREADS`` and threadpoolctl limits too.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_default: int | None = None


def _cpu_count() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
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
    """Thread count a kernel called now, from this Python thread, would use (at most the usable
    cores)."""
    if _default is not None:
        return _default
    from recfast._backends import cpu_module

    mod = cpu_module()
    if mod is not None and mod.openmp:
        n = int(mod.omp_max_threads())  # honours OMP_NUM_THREADS and threadpoolctl
    else:
        env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
        n = int(env) if env.isdigit() and int(env) > 0 else _cpu_count()
    return max(1, min(n, _cpu_count()))


def _check_count(n: object, name: str) -> int:
    """A positive int, clamped to the usable cores."""
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{name} must be a positive int, got {type(n).__name__}")
    n = n.__index__()  # type: ignore[attr-defined]
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return min(n, _cpu_count())


def resolve_num_threads(num_threads: int | None) -> int:
    """The count a kernel gets: the argument when given, else :func:`get_num_threads`."""
    if num_threads is None:
        return get_num_threads()
    return _check_count(num_threads, "num_threads")
