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


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)  # os.open: a third of the cost of open() for these files
    try:
        return os.read(fd, 1024)
    finally:
        os.close(fd)


def _runnable_elsewhere() -> int | None:
    """Threads of other processes runnable right now (Linux: the running count in
    /proc/loadavg, less this process's threads in state R, spinning OpenMP workers included);
    None where the counts cannot be read. About 10 us plus 10 us per thread of this process."""
    try:
        total = int(_read("/proc/loadavg").split()[3].split(b"/")[0])
        if total <= 1:  # only the caller itself: a quiet machine costs one read
            return 0
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                s = _read(f"/proc/self/task/{tid}/stat")
            except OSError:  # the thread ended meanwhile
                continue
            end = s.rindex(b")")  # the name field may hold spaces and parentheses
            own += s[end + 2 : end + 3] == b"R"
        return max(0, total - own)
    except (OSError, ValueError, IndexError):  # pragma: no cover - no procfs
        return None


def free_cores() -> int | None:
    """Cores of this process's affinity mask not taken by another process's runnable thread at
    this instant (None where it cannot be told). Like libgomp's OMP_DYNAMIC, but from the run
    queue rather than the one-minute load average, so a process that started a moment ago is
    seen; processes on cores outside the mask are not counted against it."""
    others = _runnable_elsewhere()
    if others is None:
        return None
    mine, machine = _cpu_count(), os.cpu_count() or 1
    return max(0, mine - max(0, others - max(0, machine - mine)))


def threads_for_load(num_threads: int) -> int:
    """``num_threads`` lowered to the cores no other process is running on right now (at least
    1), for kernels whose result does not depend on the count or is racy by design (FPSGD
    blocks, Hogwild): with another process on one of two cores, a second thread makes such an
    epoch slower than one (its share of the busy core holds back the rest).
    ``RECFAST_DYNAMIC_THREADS=0`` turns this off."""
    if num_threads <= 1 or os.environ.get("RECFAST_DYNAMIC_THREADS") == "0":
        return num_threads
    free = free_cores()
    return num_threads if free is None else max(1, min(num_threads, free))
