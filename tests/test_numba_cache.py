"""Issue #11: Numba's compiled kernels go to a user cache folder (not next to the installed
sources, which may be read-only), so the second process does not compile again."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

SCRIPT = """
import numpy as np, recfast
from recfast.testing import random_mf_problem
p = random_mf_problem(20, 10, 50, 4, dtype=np.float32, seed=0)
U, V, ub, ib = p.copy_state()
recfast.sgd_mf_epoch(p.rows, p.cols, p.values, U, V, user_bias=ub, item_bias=ib,
                     learning_rate=0.01, regularization=0.01, num_threads=1, backend="numba")
"""


def _run(env_extra, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "RECFAST_CACHE_DIR")}
    env.update(env_extra)
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, check=True, timeout=600)


def _cached(folder):
    return sorted(f for _, _, files in os.walk(folder) for f in files if f.endswith(".nbi"))


def _stamps(folder):
    return {
        f: os.stat(os.path.join(d, f)).st_mtime_ns for d, _, files in os.walk(folder) for f in files
    }


@pytest.mark.slow
def test_kernels_are_cached_in_the_user_cache_folder(tmp_path):
    cache = tmp_path / "cache"
    _run({"RECFAST_CACHE_DIR": str(cache)}, tmp_path)
    first = _cached(cache / "numba")
    assert any(name.startswith("mf.") for name in first), first
    stamps = _stamps(cache)
    _run({"RECFAST_CACHE_DIR": str(cache)}, tmp_path)  # loads the kernels: rewrites nothing
    assert _stamps(cache) == stamps


@pytest.mark.slow
def test_numba_cache_dir_wins(tmp_path):
    ours, numbas = tmp_path / "ours", tmp_path / "numba-own"
    _run({"RECFAST_CACHE_DIR": str(ours), "NUMBA_CACHE_DIR": str(numbas)}, tmp_path)
    assert not _cached(ours)
    assert _cached(numbas)


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    from recfast._backends.numba import cache_dir

    monkeypatch.delenv("RECFAST_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == os.path.join(str(tmp_path), "recfast", "numba")
    monkeypatch.setenv("RECFAST_CACHE_DIR", str(tmp_path / "x"))
    assert cache_dir() == os.path.join(str(tmp_path / "x"), "numba")
