"""Backend probing and selection, thread settings, show_config (issue #2, section 1)."""

import io
import os
import subprocess
import sys
import threading

import pytest
from conftest import MF_BACKENDS

import recfast
from recfast.testing import random_mf_problem


def call(backend=None, **kw):
    p = random_mf_problem(5, 5, 10, 2, seed=0)
    return recfast.sgd_mf_epoch(
        p.rows,
        p.cols,
        p.values,
        p.user_factors,
        p.item_factors,
        learning_rate=0.1,
        regularization=0.1,
        backend=backend,
        **kw,
    )


def test_backends_lists_every_backend_with_reasons():
    infos = {b.name: b for b in recfast.backends()}
    assert set(infos) == {"cpu", "cuda", "numba", "cupy", "reference"}
    assert infos["reference"].available
    for b in infos.values():
        assert b.available == (b.reason == "")


def test_explicit_unavailable_backend_raises_with_reason():
    dead = [b for b in recfast.backends() if not b.available]
    for b in dead:
        with pytest.raises(recfast.BackendUnavailableError):
            call(backend=b.name)


def test_use_backend_context_and_argument(monkeypatch):
    import recfast._backends as be

    seen = []
    real = be.select

    def spy(op, backend=None, kind="numpy"):
        name, fn = real(op, backend, kind)
        seen.append(name)
        return name, fn

    monkeypatch.setattr("recfast.mf.select", spy)
    with recfast.use_backend("reference"):
        call()
        call(backend=MF_BACKENDS[0])
    monkeypatch.setenv("RECFAST_BACKEND", "reference")
    call()
    assert seen == ["reference", MF_BACKENDS[0], "reference"]
    with pytest.raises(ValueError):
        with recfast.use_backend("nope"):
            pass


def test_default_prefers_compiled_backend():
    import recfast._backends as be

    name, _ = be.select("sgd_mf_epoch")
    assert name == MF_BACKENDS[0]


def test_set_num_threads_reaches_other_threads():
    recfast.set_num_threads(1)
    got = []
    t = threading.Thread(target=lambda: got.append(recfast.get_num_threads()))
    t.start()
    t.join()
    assert got == [1] and recfast.get_num_threads() == 1
    recfast.set_num_threads(None)
    with pytest.raises(ValueError):
        recfast.set_num_threads(0)
    with pytest.raises(TypeError):
        recfast.set_num_threads(1.5)


def test_threadpoolctl_limit_is_honoured():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if "cpu" not in MF_BACKENDS:
        pytest.skip("cpu backend not built")
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert recfast.get_num_threads() == 1


def test_show_config_mentions_each_backend():
    buf = io.StringIO()
    recfast.show_config(file=buf)
    text = buf.getvalue()
    for name in ("cpu", "cuda", "numba", "cupy", "reference", "threads"):
        assert name in text


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
def test_extension_disabled_falls_back_to_numba():
    code = (
        "import recfast, recfast._backends as b; print(b.select('sgd_mf_epoch')[0]); "
        "print([x.reason for x in recfast.backends() if x.name == 'cpu'][0])"
    )
    env = dict(os.environ, RECFAST_DISABLE_EXT="1")
    env.pop("RECFAST_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "numba"
    assert "RECFAST_DISABLE_EXT" in out[1]


def test_reference_fallback_warns_once(monkeypatch):
    import recfast._backends as be
    import recfast._registry as reg

    monkeypatch.setattr(reg, "auto_order", lambda device: ("reference",))
    monkeypatch.setattr(be, "_warned", set())
    monkeypatch.setattr(be, "_auto", {})
    with pytest.warns(RuntimeWarning, match="reference"):
        call()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call()


def test_gpu_backend_rejects_numpy_arrays():
    with pytest.raises(recfast.BackendUnavailableError):
        call(backend="cuda")


def test_version_matches_extension():
    cpu = pytest.importorskip("recfast._cpu")
    assert cpu.__version__ == recfast.__version__
    assert cpu.simd_level() in ("avx512", "avx2", "baseline")


def test_thread_counts_above_the_cores_are_clamped():
    """Issue #9: num_threads=10**6 (or set_num_threads, or OMP_NUM_THREADS) crashed libgomp."""
    cores = len(os.sched_getaffinity(0))
    recfast.set_num_threads(10**6)
    assert recfast.get_num_threads() == cores
    recfast.set_num_threads(None)
    from recfast._threads import resolve_num_threads

    assert resolve_num_threads(2**31 - 1) == cores
    for bad, exc in ((0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError)):
        with pytest.raises(exc, match="num_threads"):
            resolve_num_threads(bad)
    call(num_threads=10**6)  # runs on the usable cores instead of crashing


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
def test_omp_num_threads_huge_in_a_fresh_process():
    code = (
        "import recfast, numpy as np; print(recfast.get_num_threads()); "
        "x = np.ones((300, 300), np.float32); recfast.dense(x, x, activation='relu'); print('ok')"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1000000")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    n, ok = out.stdout.split()
    assert int(n) == len(os.sched_getaffinity(0)) and ok == "ok"


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
def test_threadpoolctl_limit_entered_right_after_import():
    """Issue #9: the limit was ignored when entered before the extension was first loaded."""
    pytest.importorskip("threadpoolctl")
    if "cpu" not in MF_BACKENDS:
        pytest.skip("cpu backend not built")
    code = (
        "import recfast\n"
        "from threadpoolctl import threadpool_limits\n"
        "with threadpool_limits(1, user_api='openmp'):\n"
        "    print(recfast.get_num_threads())\n"
    )
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
