import os
from pathlib import Path

import pytest

import recfast
from recfast.testing import live_backends

MF_BACKENDS = live_backends("sgd_mf_epoch")


def ml100k_dir() -> Path | None:
    env = os.environ.get("RECFAST_DATA")
    candidates = [Path(env), Path(env) / "ml-100k"] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k")
    for p in candidates:
        if (p / "u.data").is_file():
            return p
    return None


@pytest.fixture
def ml100k() -> Path:
    d = ml100k_dir()
    if d is None:
        pytest.skip("MovieLens 100K not found (set RECFAST_DATA or place it in ../shared/data)")
    return d


@pytest.fixture(autouse=True)
def _no_leaked_thread_setting():
    yield
    recfast.set_num_threads(None)


def pytest_report_header(config):
    return [f"recfast {recfast.__version__}; MF backends live: {', '.join(MF_BACKENDS)}"]
