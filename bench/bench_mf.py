"""Full SGD-MF comparison for BENCHMARKS.md: the ``python -m recfast.bench mf`` suite plus peers
(Surprise SVD, the PyPI ``libmf`` binding; install them with ``pip install ".[bench]"``) and the
MovieLens 100K rows when ``../shared/data/ml-100k`` (or ``$RECFAST_DATA``) is there.

    python bench/bench_mf.py [--threads 2] [--repeats 3] [--json bench-results.jsonl]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from recfast.bench.__main__ import main

if __name__ == "__main__":
    args = sys.argv[1:]
    data = Path(
        os.environ.get("RECFAST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if (data / "ml-100k" / "u.data").is_file():
        data = data / "ml-100k"
    if (data / "u.data").is_file() and "--data" not in args:
        args += ["--data", str(data)]
    sys.exit(main(["mf", "--full", *args]))
