"""Thread counts that follow the machine's load (recfast/_threads.py: ``free_cores``,
``threads_for_load``), and their use by the cpu SGD-MF epochs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest

import recfast
from recfast import _threads as th
from recfast.mf import prepare_sgd_mf_epoch
from recfast.testing import random_mf_problem

linux = pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="needs Linux procfs")


def _fake_proc(monkeypatch, running, states):
    """/proc as if ``running`` entities were runnable and this process's threads had
    ``states``."""
    tids = [str(1000 + j) for j in range(len(states))]

    def read(path):
        if path == "/proc/loadavg":
            return f"0.5 0.4 0.3 {running}/321 999\n".encode()
        tid = path.split("/")[4]
        return f"{tid} (odd) name) {states[tids.index(tid)]} 1 2 3".encode()

    monkeypatch.setattr(th, "_read", read)
    monkeypatch.setattr(th.os, "listdir", lambda p: tids)


def test_runnable_elsewhere_excludes_this_process_threads(monkeypatch):
    _fake_proc(monkeypatch, 3, ["R", "S", "R"])
    assert th._runnable_elsewhere() == 1
    _fake_proc(monkeypatch, 1, ["R"])
    assert th._runnable_elsewhere() == 0
    _fake_proc(monkeypatch, 5, ["S", "R"])
    assert th._runnable_elsewhere() == 4


def test_free_cores_counts_only_cores_of_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(th, "_runnable_elsewhere", lambda: 3)
    monkeypatch.setattr(th, "_cpu_count", lambda: 4)
    monkeypatch.setattr(th.os, "cpu_count", lambda: 4)
    assert th.free_cores() == 1
    monkeypatch.setattr(th.os, "cpu_count", lambda: 6)  # 2 cores outside the mask take 2 of 3
    assert th.free_cores() == 3
    monkeypatch.setattr(th, "_runnable_elsewhere", lambda: 9)
    assert th.free_cores() == 0
    monkeypatch.setattr(th, "_runnable_elsewhere", lambda: None)
    assert th.free_cores() is None


def test_threads_for_load(monkeypatch):
    monkeypatch.setattr(th, "free_cores", lambda: 1)
    assert th.threads_for_load(4) == 1 and th.threads_for_load(1) == 1
    monkeypatch.setattr(th, "free_cores", lambda: 0)
    assert th.threads_for_load(4) == 1  # never below one
    monkeypatch.setattr(th, "free_cores", lambda: 8)
    assert th.threads_for_load(4) == 4  # never above the count asked for
    monkeypatch.setattr(th, "free_cores", lambda: None)
    assert th.threads_for_load(3) == 3
    monkeypatch.setattr(th, "free_cores", lambda: 1)
    monkeypatch.setenv("RECFAST_DYNAMIC_THREADS", "0")
    assert th.threads_for_load(4) == 4


@linux
def test_free_cores_sees_a_spinning_process():
    n = th._cpu_count()
    code = "while True: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]
    try:
        time.sleep(0.5)
        seen = [th.free_cores() for _ in range(20)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # n spinners on n cores: the run queue shows every core taken most of the time
    assert min(seen) == 0, seen
    assert th.threads_for_load(n) == n or th.free_cores() < n


@pytest.mark.skipif("cpu" not in recfast.testing.live_backends("sgd_mf_epoch"),
                    reason="recfast._cpu not built")  # fmt: skip
@pytest.mark.parametrize("blocked", [True, False], ids=["blocks", "hogwild"])
def test_sgd_mf_epochs_run_on_the_free_cores(monkeypatch, blocked):
    """The epoch asks for the free cores before each pass and runs on that many threads; with
    the block layout the governor is not consulted while fewer cores are free."""
    from recfast import mf as mf_mod

    p = random_mf_problem(300, 200, 2000, 8, seed=1)
    kw = {}
    rows, cols, vals = p.rows, p.cols, p.values
    if blocked:
        rows, cols, vals, bp = recfast.mf_block_layout(rows, cols, vals, 300, 200, 4, seed=0)
        kw = dict(block_ptr=bp, n_blocks=4)
    U, V = p.user_factors.copy(), p.item_factors.copy()
    ep = prepare_sgd_mf_epoch(
        rows,
        cols,
        vals,
        U,
        V,
        learning_rate=0.01,
        regularization=0.01,
        num_threads=2,
        backend="cpu",
        **kw,
    )
    used, observed = [], []
    kernel = ep.kernel
    monkeypatch.setattr(ep, "kernel", lambda a: used.append(a.num_threads) or kernel(a))
    if blocked:
        monkeypatch.setattr(mf_mod._ThreadGovernor, "observe", lambda g: observed.append(1))
    free = iter([1, 2, 1])
    monkeypatch.setattr(mf_mod, "threads_for_load", lambda n: min(n, next(free)))
    for _ in range(3):
        assert np.isfinite(ep())
    assert used == [1, 2, 1]
    if blocked:
        assert observed == [1]  # only after the full-width epoch
