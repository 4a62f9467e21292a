"""Full conv2d comparison for BENCHMARKS.md: the ``python -m recfast.bench conv`` suite (issue #3's
shapes, "same" padding, float32) with PyTorch CPU (oneDNN, channels_last) as the peer when torch is
installed (``pip install torch``; it is never a runtime dependency).

    python bench/bench_conv2d.py [--threads 2] [--repeats 7] [--json bench-results.jsonl]
"""

from __future__ import annotations

import sys

from recfast.bench.__main__ import main

if __name__ == "__main__":
    sys.exit(main(["conv2d", "--full", *sys.argv[1:]]))
