"""The one table of ops and backends (issue #8): every backend module exports ops of the table
only, the reference implements every op, the host backends keep every op they had, and the
automatic order, backends() and show_config() derive from the table."""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil

import pytest

import recfast
from recfast import _registry as reg
from recfast._backends import _probe, implemented_ops

# What cpu and numba implemented when the registry was introduced: they must never lose an op.
TODAY = set(reg.OPS)


@pytest.mark.parametrize("spec", reg.BACKENDS, ids=[b.name for b in reg.BACKENDS])
def test_backend_modules_export_only_ops_of_the_table(spec):
    if _probe(spec.name)[0] is None:
        pytest.skip(f"{spec.name} not live: {_probe(spec.name)[1]}")
    pkg = importlib.import_module(spec.package)
    assert callable(pkg.probe) and pkg.probe() == ""
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        assert info.name in reg.FAMILIES, f"{spec.package}.{info.name} is no op family"
        mod = importlib.import_module(f"{spec.package}.{info.name}")
        public = {
            n for n, v in vars(mod).items()
            if not n.startswith("_") and inspect.isfunction(v) and v.__module__ == mod.__name__
        }  # fmt: skip
        ops_here = {op for op, fam in reg.OPS.items() if fam == info.name}
        assert public <= ops_here, f"{mod.__name__} exports {sorted(public - ops_here)}"


def test_reference_implements_every_op():
    assert set(implemented_ops("reference")) == set(reg.OPS)


@pytest.mark.parametrize("name", ["cpu", "numba"])
def test_host_backends_keep_their_ops(name):
    if _probe(name)[0] is None:
        pytest.skip(f"{name} not live")
    assert set(implemented_ops(name)) >= TODAY


def test_auto_order_derives_from_the_table():
    host = [b.name for b in reg.BACKENDS if b.device == "cpu"]
    assert reg.auto_order("cpu") == (*host, "reference")
    assert reg.auto_order("cuda") == tuple(b.name for b in reg.BACKENDS if b.device == "cuda")
    assert reg.auto_order("other") == ("reference",)


def test_backends_report_device_and_ops():
    infos = {b.name: b for b in recfast.backends()}
    assert tuple(infos) == reg.NAMES
    for b in infos.values():
        assert b.device == reg.BY_NAME[b.name].device
        assert set(b.ops) <= set(reg.OPS)
    assert set(infos["reference"].ops) == set(reg.OPS)


def test_show_config_prints_the_op_backend_matrix():
    buf = io.StringIO()
    recfast.show_config(file=buf)
    text = buf.getvalue()
    for op in reg.OPS:
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(op + " "))
        assert len(line.split()) == 1 + len(reg.BACKENDS) + 1, line  # op, a mark each, runs
    for b in reg.BACKENDS:
        assert b.name in text
