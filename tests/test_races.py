"""Index arrays rewritten by another thread during the call (issue #9): the check in Python runs
before the kernel, so a kernel that trusted it could address memory out of bounds. Every backend
must survive (each call returns, or raises ValueError naming the rewritten input). Each run is a
child process, bounded in time, so a crash fails the test instead of the run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from recfast.testing import live_backends

SECONDS = 1.5

PROGRAM = textwrap.dedent(
    """
    import sys, threading, time
    import numpy as np
    import recfast

    op, backend, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rng = np.random.default_rng(0)
    stop = threading.Event()
    if op == "sgd_mf_epoch":
        nu, ni, nnz = 200, 100, 40000
        rows = rng.integers(0, nu, nnz)
        cols = rng.integers(0, ni, nnz)
        vals = rng.uniform(1, 5, nnz).astype(np.float32)
        U = np.zeros((nu, 16), np.float32)
        V = np.zeros((ni, 16), np.float32)
        target = rows
        good = rows.copy()
        def call():
            recfast.sgd_mf_epoch(rows, cols, vals, U, V, learning_rate=1e-3, regularization=0.0,
                                 num_threads=2, backend=backend)
    elif op == "mf_block_layout":
        rows = rng.integers(0, 200, 40000)
        cols = rng.integers(0, 100, 40000)
        vals = rng.uniform(1, 5, 40000).astype(np.float32)
        target = rows
        good = rows.copy()
        def call():
            recfast.mf_block_layout(rows, cols, vals, 200, 100, 4, backend=backend)
    else:
        x = rng.standard_normal((8, 32, 32, 16)).astype(np.float32)
        out, idx = recfast.max_pool2d(x, 2, backend=backend)
        g = np.ones_like(out)
        target = idx
        good = idx.copy()
        def call():
            recfast.max_pool2d_backward(g, idx, x.shape, backend=backend)

    def vandal():
        flat = target.reshape(-1)
        bad = np.int64(10**12) if flat.dtype == np.int64 else np.int32(2**31 - 1)
        k = 0
        while not stop.is_set():
            j = k % flat.size
            flat[j] = bad
            flat[j] = good.reshape(-1)[j]
            k += 7919

    t = threading.Thread(target=vandal)
    t.start()
    calls = errors = 0
    end = time.perf_counter() + seconds
    try:
        while time.perf_counter() < end:
            try:
                call()
            except ValueError:
                errors += 1
            calls += 1
    finally:
        stop.set()
        t.join()
    print(calls, errors)
    """
)


def cases():
    for op, reg_op in (("sgd_mf_epoch", "sgd_mf_epoch"), ("mf_block_layout", "mf_block_layout"),
                       ("max_pool2d_backward", "max_pool2d_backward")):  # fmt: skip
        for be in live_backends(reg_op):
            yield pytest.param(op, be, id=f"{op}-{be}")


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
@pytest.mark.parametrize("op,backend", list(cases()))
def test_rewritten_indices_never_crash(op, backend):
    proc = subprocess.run(
        [sys.executable, "-c", PROGRAM, op, backend, str(SECONDS)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stderr[-3000:]}"
    calls, _ = (int(v) for v in proc.stdout.split())
    assert calls > 0
