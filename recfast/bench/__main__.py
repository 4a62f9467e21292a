"""Command line: ``python -m recfast.bench [SUITE] [options]``; ``python -m recfast.bench SUITE
--help`` lists a suite's options and defaults.

Every suite times recfast against peers in the same run (a plain Numba loop, Surprise and libmf
for MF; PyTorch for the layers) and prints each row as soon as it is measured. Sizes: the default
(all suites in about a minute on 2 cores), ``--quick`` (a smoke run of seconds) and ``--full``
(the sizes of BENCHMARKS.md, several minutes)."""

from __future__ import annotations

import argparse
import sys
import time

# suite -> (one line, rough seconds on a 2-core machine for quick / default / full)
SUITES = {
    "mf": (
        "SGD matrix factorization: updates/s vs a plain Numba loop, Surprise, libmf",
        (6, 20, 150),
    ),
    "dense": ("AutoRec dense layers forward+backward vs PyTorch", (2, 4, 8)),
    "rnn": ("RNN/GRU/LSTM steps and sequences vs PyTorch", (5, 20, 40)),
    "conv2d": ("conv2d forward/backward on CNN shapes vs PyTorch (oneDNN)", (3, 10, 60)),
    "overhead": ("per-call overhead of the small ops, NumPy and torch inputs", (5, 20, 40)),
    "implicit": (
        "implicit-feedback ALS/BPR, top-k and ranking metrics vs implicit 0.7.3",
        (15, 60, 120),
    ),
    "models": (
        "AutoRec and Mult-DAE vs the same models in PyTorch; GRU4Rec sampled vs full softmax",
        (15, 90, 90),
    ),
    "distributed": (
        "DSGD matrix factorization on a 2-worker Dask LocalCluster vs the single-machine fit",
        (20, 90, 90),
    ),
    "gpu": ("the CUDA kernels vs the cupy fallback vs PyTorch/cuDNN (needs a GPU)", (30, 90, 90)),
}
ALL = ("mf", "dense", "rnn", "conv2d")  # what "all" (the default) runs
ALIASES = {"conv": "conv2d"}  # the old name


def _usable_cores() -> int:
    from recfast._threads import _cpu_count

    return _cpu_count()


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer (>= 1), got {n}")
    return n


def _common(p: argparse.ArgumentParser, suite: str) -> None:
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small data: a smoke run of seconds")
    size.add_argument("--full", action="store_true", help="the long run at BENCHMARKS.md's sizes")
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=_usable_cores(),
        help="threads for the parallel kernels and the peers; the default is the usable cores",
    )
    p.add_argument(
        "--repeats",
        type=_positive_int,
        default=5,
        help="timed repeats per row, after a warm-up; the median is reported (fewer than 5 warns)",
    )
    p.add_argument(
        "--json", metavar="PATH", help="append the rows, with machine metadata, as JSON lines"
    )
    p.add_argument(
        "--plot",
        metavar="PATH",
        help='bar chart (PNG/SVG/PDF by suffix) of the ratios against peers (pip install "recfast[plot]")',
    )
    if suite in ("mf", "all", "models", "gpu"):
        p.add_argument("--data", metavar="DIR", help="MovieLens 100K folder for the real-data rows")
        p.add_argument(
            "--no-peers",
            dest="peers",
            action="store_false",
            help="MF: skip Surprise and libmf even when installed (they run by default)",
        )
        p.add_argument("--peers", dest="peers", action="store_true", help=argparse.SUPPRESS)
    if suite == "mf":
        p.add_argument(
            "--busy",
            action="store_true",
            help="MF under load: a spin loop pinned to one core runs beside 1- and n-thread fits "
            "and epochs (target: n threads no slower than 1)",
        )


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows '(default: ...)' for options with a value, not for on/off flags."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, True) or action.nargs == 0:
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    fmt = _Defaults
    parser = argparse.ArgumentParser(
        prog="python -m recfast.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="suite", metavar="SUITE")
    all_p = sub.add_parser(
        "all",
        help=f"the default: {', '.join(ALL)}",
        description=f"Run the suites {', '.join(ALL)} one after the other.",
        formatter_class=fmt,
    )
    _common(all_p, "all")
    for name, (line, secs) in SUITES.items():
        p = sub.add_parser(
            name,
            aliases=[a for a, n in ALIASES.items() if n == name],
            help=line,
            description=f"{line}. About {secs[1]} s at the default size on 2 cores "
            f"({secs[0]} s with --quick, {secs[2]} s with --full).",
            formatter_class=fmt,
        )
        _common(p, name)
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    names = {"all", *SUITES, *ALIASES}
    if not argv or (argv[0] not in names and argv[0] not in ("-h", "--help")):
        argv = ["all", *argv]  # no suite named: the default suite
    parser = build_parser()
    args = parser.parse_args(argv)
    args.suite = ALIASES.get(args.suite, args.suite)
    args.size = "quick" if args.quick else "full" if args.full else "default"
    args.peers = getattr(args, "peers", True)
    args.data = getattr(args, "data", None)
    return args


def plan(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(the suites to run, the header lines saying what runs and about how long)."""
    names = list(ALL) if args.suite == "all" else [args.suite]
    col = {"quick": 0, "default": 1, "full": 2}[args.size]
    est = sum(SUITES[n][1][col] for n in names)
    lines = [
        f"recfast.bench: {', '.join(names)} at the {args.size} size, {args.threads} threads, "
        f"median of {args.repeats} repeats; about {est} s on a 2-core machine "
        f"({'--full: BENCHMARKS.md sizes' if args.full else 'use --full for the long run'})"
    ]
    if args.repeats < 5:
        lines.append(f"warning: --repeats {args.repeats} < 5: medians and spreads are rough")
    return names, lines


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else list(argv))
    from recfast.bench import conv2d, dense, mf, overhead, report, rnn

    suites = {"mf": mf.run, "dense": dense.run, "rnn": rnn.run, "conv2d": conv2d.run,
              "overhead": overhead.run}  # fmt: skip
    if args.suite in (
        "implicit",
        "models",
        "distributed",
        "gpu",
    ):  # heavier imports: loaded when asked for
        import importlib

        suites[args.suite] = importlib.import_module(f"recfast.bench.{args.suite}").run
    names, lines = plan(args)
    for line in lines:
        report.say(line)
    args.collected_rows = []
    start = time.perf_counter()
    rc = max(suites[name](args) for name in names)
    report.say(f"\nrecfast.bench: done in {time.perf_counter() - start:.0f} s")
    if args.plot:
        report.plot(args.collected_rows, args.plot, args.threads)
    return rc


if __name__ == "__main__":
    sys.exit(main())
