"""Command line: ``python -m recfast.bench [all|mf|dense|rnn|conv2d|implicit|overhead] [--quick] [--peers] [--threads N] [--json FILE]``."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recfast.bench", description=__doc__)
    parser.add_argument(
        "suite",
        nargs="?",
        default="all",
        choices=["all", "mf", "dense", "rnn", "conv", "conv2d", "implicit", "overhead"],
        help="which benchmark suite to run (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small data (a smoke run of a few seconds) instead of the full size",
    )
    parser.add_argument(
        "--peers", action="store_true", help="add peer libraries when installed (Surprise, libmf)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for parallel kernels")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument(
        "--data", default=None, help="MovieLens 100K folder for the real-data rows (default: skip)"
    )
    parser.add_argument("--json", default=None, help="append results as JSON lines to this file")
    args = parser.parse_args(argv)
    from recfast.bench import conv2d, dense, implicit, mf, overhead, rnn

    suites = {"mf": mf.run, "dense": dense.run, "rnn": rnn.run, "conv2d": conv2d.run,
              "overhead": overhead.run, "implicit": implicit.run}  # fmt: skip
    suite = "conv2d" if args.suite == "conv" else args.suite  # "conv": the old name
    names = ["mf", "dense", "rnn", "conv2d"] if suite == "all" else [suite]
    return max(suites[name](args) for name in names)


if __name__ == "__main__":
    sys.exit(main())
