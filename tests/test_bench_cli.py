"""The benchmark command line (issue #11): per-suite help with defaults, argparse errors instead
of tracebacks, --threads defaulting to the usable cores, --repeats honoured, met/missed marks,
the spread re-run, rows printed as they are measured, --json and --plot."""

import json
from types import SimpleNamespace

import pytest

from recfast._threads import _cpu_count
from recfast.bench import report
from recfast.bench.__main__ import main, parse, plan


def test_default_suite_and_defaults():
    args = parse([])
    assert args.suite == "all" and args.size == "default"
    assert args.threads == _cpu_count() and args.repeats == 5 and args.peers
    args = parse(["--quick", "--repeats", "3"])  # options without a suite: the default suite
    assert args.suite == "all" and args.size == "quick" and args.repeats == 3
    assert parse(["conv", "--full"]).suite == "conv2d"  # the old name
    assert parse(["mf", "--no-peers"]).peers is False


@pytest.mark.parametrize(
    "argv",
    [["--threads", "0"], ["mf", "--threads", "-1"], ["rnn", "--repeats", "x"], ["nope"],
     ["dense", "--quick", "--full"]],
)  # fmt: skip
def test_bad_arguments_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_per_suite_help_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        parse(["mf", "--help"])
    out = capsys.readouterr().out
    assert "python -m recfast.bench mf" in out and "SGD matrix factorization" in out
    assert "(default: 5)" in out and f"(default: {_cpu_count()})" in out and "--no-peers" in out
    with pytest.raises(SystemExit):
        parse(["rnn", "--help"])
    assert "--no-peers" not in capsys.readouterr().out  # an MF-only option


def test_plan_says_what_runs_and_warns_on_few_repeats():
    names, lines = plan(parse(["--repeats", "2"]))
    assert names == ["mf", "dense", "rnn", "conv2d"]
    assert "about" in lines[0] and " s " in lines[0] and "median of 2" in lines[0]
    assert "warning" in lines[1]
    assert len(plan(parse(["dense"]))[1]) == 1


def test_target_marks():
    assert report.target_mark(0.4, 0.5) == "<=0.5 met"
    assert report.target_mark(0.6, 0.5) == "<=0.5 MISSED"
    assert report.target_mark(5.0, 4.0, higher_is_better=True) == ">=4 met"
    assert report.target_mark(3.0, 4.0, higher_is_better=True) == ">=4 MISSED"
    assert report.target_mark(None, 0.5) == "<=0.5 (no peer)"
    assert report.target_mark(0.4, None) == ""


def _report(tmp_path=None):
    args = SimpleNamespace(json=str(tmp_path / "r.jsonl") if tmp_path else None)
    cols = [
        report.Column("case", "case", 10, left=True),
        report.Column("seconds", "s", 8, report.ms),
    ]
    return report.Report(args, "t", cols, {"threads": 1})


def test_a_noisy_row_is_rerun_once_and_the_steadier_result_kept(capsys):
    rep = _report()
    results = iter([(1.0, 0.5), (1.1, 0.1)])
    assert rep.stable(lambda: next(results), "x") == (1.1, 0.1)
    assert "re-running" in capsys.readouterr().out
    results = iter([(1.0, 0.1)])  # steady: one call only (a second next() would raise)
    assert rep.stable(lambda: next(results), "x") == (1.0, 0.1)
    results = iter([(1.0, 0.5), (1.2, 0.9)])
    assert rep.stable(lambda: next(results), "x") == (1.0, 0.5)


def test_rows_print_at_once_with_marks_and_noise_flags(capsys, tmp_path):
    rep = _report(tmp_path)
    rep.add(case="a", seconds=0.001, spread=0.05, ratio=0.4, target=0.5)
    out = capsys.readouterr().out
    assert "case" in out and "1.000" in out and "<=0.5 met" in out  # printed before finish()
    rep.add(case="b", seconds=0.002, spread=0.5)
    assert "noisy" in capsys.readouterr().out
    rep.finish()
    rows = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["case"] for r in rows] == ["a", "b"]
    assert {"cpu", "cores", "usable_cores", "simd", "recfast", "numpy", "threads"} <= set(rows[0])
    assert rows[0]["mark"] == "<=0.5 met" and rows[1]["noisy"] is True


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
def test_plot_draws_the_peer_ratios(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [
        dict(suite="dense", case="fwd+bwd", impl="cpu", ratio=0.7, target=1.1),
        dict(suite="mf", case="fit", ratio=6.5, target=6.0, higher_is_better=True),
        dict(suite="conv2d", case="x", plot_bars=[("fwd", 0.9, 1.25), ("bwd", 1.2, 1.5)]),
        dict(suite="rnn", case="no peer", ratio=None),
    ]
    path = tmp_path / "bars.png"
    report.plot(rows, str(path), 2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # issue #11: outside the quick `-m 'not slow'` subset
def test_a_quick_suite_end_to_end(tmp_path, capsys):
    out = tmp_path / "dense.jsonl"
    assert main(["dense", "--quick", "--repeats", "1", "--threads", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.index("recfast.bench: dense") < text.index("dense fwd+bwd [")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["suite"] == "dense" and r["threads"] == 1 for r in rows)


@pytest.mark.slow
def test_mf_busy_runs_beside_a_spinner_and_stops_it(capsys):
    """`mf --busy`: 1- and n-thread rows with a spin loop on one core, which ends with the run."""
    from recfast.bench import mf as bench_mf

    procs = []
    enter = bench_mf._Spinner.__enter__

    def spy(self):
        procs.append(enter(self).proc)
        return self

    bench_mf._Spinner.__enter__ = spy
    try:
        assert main(["mf", "--busy", "--quick", "--repeats", "1", "--threads", "2"]) == 0
    finally:
        bench_mf._Spinner.__enter__ = enter
    text = capsys.readouterr().out
    assert "one core busy" in text and "sgd_mf_epoch, caller's order" in text
    assert procs and all(p.poll() is not None for p in procs)  # the spinner is gone
