"""The crash-isolating bad-input suite (issue #9): every case of ``bad_inputs.CASES`` on every
backend that implements its ops, in a child process that is restarted after a crash or a hang,
so a segfault fails that case, not the run. The expected exception type and the argument named
in the message are checked, and the caller's arrays must be left as they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from bad_inputs import CASES

from recfast.testing import live_backends

HERE = Path(__file__).resolve().parent
TIMEOUT = 120.0  # seconds per case (the first Numba calls compile)


class Runner:
    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), *sys.path]))
        return subprocess.Popen(
            [sys.executable, str(HERE / "bad_inputs.py"), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env, cwd=str(HERE),
        )  # fmt: skip

    def run(self, cid: str, backend: str) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        p = self.proc
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write(f"{cid}\t{backend}\n")
        p.stdin.flush()
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(p.stdout.readline()), daemon=True)
        reader.start()
        reader.join(TIMEOUT)
        if not box:
            p.kill()
            self.proc = None
            return dict(status="hang", why=f"no answer within {TIMEOUT:.0f} s")
        if not box[0]:
            code = p.wait()
            err = p.stderr.read()[-2000:] if p.stderr else ""
            self.proc = None
            return dict(status="crash", why=f"the process died (exit code {code})\n{err}")
        return json.loads(box[0])

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def runner():
    r = Runner()
    yield r
    r.close()


def _params():
    out = []
    for c in CASES:
        backends = set(live_backends(c.ops[0]))
        for op in c.ops[1:]:
            backends &= set(live_backends(op))
        for be in sorted(backends):
            out.append(pytest.param(c.id, be, id=f"{c.id}-{be}"))
    return out


def test_the_table_covers_every_public_op_and_model():
    import recfast._registry as reg

    assert {op for c in CASES for op in c.ops} == set(reg.OPS)
    names = " ".join(c.id for c in CASES)
    for model in ("MF", "ConvNet", "GRU4Rec"):
        assert model in names


@pytest.mark.parametrize("cid,backend", _params())
def test_bad_input(runner, cid, backend):
    res = runner.run(cid, backend)
    assert res["status"] == "ok", f"{res['status']}: {res['why']}\n{res.get('tb', '')}"
