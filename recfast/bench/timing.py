"""Timing helpers: warm-up, median and spread, machine metadata."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def measure(
    fn: Callable[[], Any], repeats: int = 3, warmup: int = 1, setup: Callable[[], Any] | None = None
) -> tuple[float, float]:
    """(median seconds, spread = (max - min) / median) of ``fn()`` over ``repeats`` runs."""
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    times = []
    for _ in range(repeats):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return med, (max(times) - min(times)) / med if med > 0 else 0.0


def measure_interleaved(
    fns: list[Callable[[], Any]], repeats: int = 3, warmup: int = 1
) -> list[tuple[float, float]]:
    """:func:`measure` for several calls at once, their runs interleaved (the order reversed on
    every other round), so a drift in the machine's load or clock reaches every call alike
    instead of whichever ran last. One ``(median, spread)`` per call."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for r in range(repeats):
        idx = list(range(len(fns)))
        for j in idx if r % 2 == 0 else idx[::-1]:
            t = time.perf_counter()
            fns[j]()
            times[j].append(time.perf_counter() - t)
    out = []
    for ts in times:
        med = statistics.median(ts)
        out.append((med, (max(ts) - min(ts)) / med if med > 0 else 0.0))
    return out


def machine() -> dict[str, Any]:
    import numpy as np

    import recfast
    from recfast._backends import cpu_module

    mod = cpu_module()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    from recfast._threads import _cpu_count

    out = {
        "recfast": recfast.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": _cpu_count(),
        "simd": mod.simd_level() if mod else None,
    }
    # Versions of the peers and of Numba, when this process imported them (importing torch just
    # for its version would cost seconds).
    for name in ("numba", "scipy", "torch", "surprise", "libmf"):
        m = sys.modules.get(name)
        if m is not None:
            out[name] = getattr(m, "__version__", "?")
    return out


def write_json(path: str | None, rows: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    if not path:
        return
    with open(path, "a") as f:
        for r in rows:
            f.write(json.dumps({**meta, **r}) + "\n")
