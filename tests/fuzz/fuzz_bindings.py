"""Coverage-guided fuzzing of the native bindings (issue #9), with atheris.

``recfast._cpu`` can be imported and called directly, so its bindings check again what the
Python layer checks. This target drives every binding with arrays whose ranks, shapes, dtypes,
contiguity and index values come from the fuzzer (including out-of-range, negative and huge
values, None for optional arrays, thread counts up to 2**31 - 1). A Python exception is the
expected answer to bad input; a crash (or an ASan/UBSan report, under the sanitizer build) is a
bug: add the input that found it to ``tests/fuzz/corpus/`` and a regression test.

Run (CI does, for a bounded time, under the ASan+UBSan build)::

    python tests/fuzz/fuzz_bindings.py -max_total_time=60 tests/fuzz/corpus
    python tests/fuzz/fuzz_bindings.py --replay tests/fuzz/corpus    # without atheris
"""

from __future__ import annotations

import os
import sys

import numpy as np

# Python exceptions are the bindings' answer to bad input; anything else (a crash) is a bug.
EXPECTED = (ValueError, TypeError, IndexError, OverflowError, RuntimeError, MemoryError)

FLOATS = (np.float32, np.float64)
INDEX = (np.int32, np.int64)


class Source:
    """Draws values from fuzzer bytes (atheris.FuzzedDataProvider, or a plain byte reader)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def int(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        v = self.byte() | (self.byte() << 8)
        return lo + v % span

    def pick(self, seq):
        return seq[self.byte() % len(seq)]

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def size(self) -> int:
        """A dimension: mostly small, sometimes 0, sometimes huge (which must be refused)."""
        b = self.byte()
        if b < 8:
            return 0
        if b > 250:
            return self.pick((2**31 - 1, 2**31, 2**40))
        return 1 + b % 7

    def shape(self, rank: int) -> tuple[int, ...]:
        return tuple(self.size() for _ in range(rank))

    def array(self, shape, dtype, *, index_hi: int | None = None):
        """An array of ``shape`` (None when the fuzzer says so, or the size is absurd), perhaps
        Fortran-ordered, strided or read-only, perhaps of a wrong rank or dtype."""
        if self.byte() < 10:
            return None
        if self.byte() < 12:
            shape = shape + (2,)  # wrong rank
        if self.byte() < 12:
            dtype = self.pick((np.float16, np.int8, np.uint64, np.complex64, np.float64))
        n = 1
        for s in shape:
            n *= s
        if n > 4096:
            return np.zeros(0, dtype)  # too big to build: a wrong shape instead
        if np.issubdtype(dtype, np.integer) and index_hi is not None:
            kind = self.byte()
            lo, hi = (0, max(index_hi, 1)) if kind < 200 else (-(2**31), 2**31 - 1)
            a = np.array([self.int(0, 65535) for _ in range(n)], np.int64)
            a = (lo + a % max(hi - lo, 1)).astype(dtype, copy=False)
        else:
            a = (np.array([self.int(0, 2000) for _ in range(n)], np.float64) / 100 - 10).astype(
                dtype
            )
        a = a.reshape(shape)
        t = self.byte()
        if t < 16 and a.ndim >= 2:
            a = np.asfortranarray(a)
        elif t < 28 and a.ndim >= 1 and a.shape[0] > 1:
            a = a[::2]
        elif t < 36:
            a.flags.writeable = False
        return a

    def threads(self) -> int:
        return self.pick((1, 2, 0, -1, 10**6, 2**31 - 1))


def fuzz_one(cpu, s: Source) -> None:
    f = s.pick(FUNCS)
    try:
        f(cpu, s)
    except EXPECTED:
        pass


def t_sgd(cpu, s):
    nu, ni, nnz, k = s.size(), s.size(), s.size(), s.pick((0, 1, 3, 16, 64))
    dt, it = s.pick(FLOATS), s.pick(INDEX)
    rows = s.array((nnz,), it, index_hi=nu + s.int(0, 2))
    cols = s.array((nnz,), it, index_hi=ni + s.int(0, 2))
    vals = s.array((nnz,), dt)
    U, V = s.array((nu, k), dt), s.array((ni, k), dt)
    opt = [s.array((n,), dt) if s.flag() else None for n in (nu, ni, nu, ni)]
    order = s.array((s.size(),), np.int64, index_hi=nnz + 1) if s.flag() else None
    nb = s.int(0, 4)
    bp = s.array((nb * nb + 1,), np.int64, index_hi=nnz + 1) if s.flag() else None
    cpu.sgd_mf_epoch(rows, cols, vals, U, V, *opt, order, bp, nb, learning_rate=0.01,
                     regularization=0.01, bias_regularization=0.01, global_mean=0.0,
                     num_threads=s.threads())  # fmt: skip


def t_layout(cpu, s):
    nnz, dt, it = s.size(), s.pick(FLOATS), s.pick(INDEX)
    nu, ni = s.int(-1, 9), s.int(-1, 9)
    cpu.mf_block_layout(s.array((nnz,), it, index_hi=nu + 1), s.array((nnz,), it, index_hi=ni + 1),
                        s.array((nnz,), dt), nu, ni, s.int(-1, 5000),
                        s.int(0, 9) if s.flag() else None, s.threads())  # fmt: skip


def t_dense(cpu, s):
    n, h, dt = s.size(), s.size(), s.pick(FLOATS)
    if s.flag():
        cpu.bias_activation(s.array((n, h), dt), s.array((h,), dt), s.int(-2, 6), s.threads())
    else:
        cpu.activation_backward(s.array((n, h), dt), s.array((n, h), dt), s.array((n, h), dt),
                                s.array((h,), dt), s.int(-2, 6), s.threads())  # fmt: skip


def t_rnn(cpu, s):
    T, N, D, H = s.size(), s.size(), s.size(), s.size()
    cell, dt = s.int(-1, 3), s.pick(FLOATS)
    G = (1, 3, 4)[cell] if 0 <= cell <= 2 else 2
    lens = s.array((N,), np.int64, index_hi=T + 2) if s.flag() else None
    if s.flag():
        cpu.rnn_forward(
            cell, s.int(-1, 5), s.array((T, N, D), dt), s.array((N, H), dt), s.array((N, H), dt),
            s.array((G * H, D), dt), s.array((G * H, H), dt), s.array((G * H,), dt),
            s.array((G * H,), dt), lens, s.array((T, N, H), dt), s.array((N, H), dt),
            s.array((N, H), dt), s.array((T + 1, N, H), dt), s.array((T + 1, N, H), dt),
            s.array((T, N, 4 * H), dt), s.threads(),
        )  # fmt: skip
    else:
        cpu.rnn_backward(
            cell, s.int(-1, 5), s.array((T, N, D), dt), s.array((G * H, D), dt),
            s.array((G * H, H), dt), lens, s.array((T + 1, N, H), dt),
            s.array((T + 1, N, H), dt), s.array((T, N, 4 * H), dt), s.array((T, N, H), dt),
            s.array((N, H), dt), s.array((N, H), dt), s.array((T, N, D), dt),
            s.array((N, H), dt), s.array((N, H), dt), s.array((G * H, D), dt),
            s.array((G * H, H), dt), s.array((G * H,), dt), s.array((G * H,), dt), s.threads(),
        )  # fmt: skip


def t_conv(cpu, s):
    n, h, w, c, co, kh, kw = (s.size() for _ in range(7))
    dt = s.pick(FLOATS)
    geo = [s.int(-1, 4) for _ in range(6)]  # sh, sw, dh, dw, pt, pl
    oh, ow = s.int(0, 8), s.int(0, 8)
    x, wt = s.array((n, h, w, c), dt), s.array((kh, kw, c, co), dt)
    if s.flag():
        cpu.conv2d_forward(x, wt, s.array((co,), dt), s.array((n, oh, ow, co), dt), *geo,
                           s.int(-1, 5), s.threads())  # fmt: skip
    else:
        cpu.conv2d_backward(s.array((n, oh, ow, co), dt), x, wt, s.array((n, h, w, c), dt),
                            s.array((kh, kw, c, co), dt), *geo, s.threads())  # fmt: skip


def t_pool(cpu, s):
    n, h, w, c = s.size(), s.size(), s.size(), s.size()
    oh, ow, dt = s.int(0, 6), s.int(0, 6), s.pick(FLOATS)
    if s.flag():
        cpu.max_pool2d_forward(s.array((n, h, w, c), dt), s.array((n, oh, ow, c), dt),
                               s.array((n, oh, ow, c), np.int64, index_hi=0),
                               *(s.int(-1, 4) for _ in range(6)), s.threads())  # fmt: skip
    else:
        cpu.max_pool2d_backward(s.array((n, oh, ow, c), dt),
                                s.array((n, oh, ow, c), np.int64, index_hi=h * w + 2),
                                s.array((n, h, w, c), dt), s.threads())  # fmt: skip


def t_gemm(cpu, s):
    m, k, n, dt = s.size(), s.size(), s.size(), s.pick(FLOATS)
    ta, tb = s.flag(), s.flag()
    a = s.array((k, m) if ta else (m, k), dt)
    b = s.array((n, k) if tb else (k, n), dt)
    cpu.blas_gemm(a, b, s.array((m, n), dt), ta, tb, 1.0, 0.0)


FUNCS = (t_sgd, t_layout, t_dense, t_rnn, t_conv, t_pool, t_gemm)


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    from recfast import _cpu  # noqa: PLC0415  (the module under test)

    if "--replay" in sys.argv:  # run the corpus once, without atheris
        folder = sys.argv[sys.argv.index("--replay") + 1]
        names = sorted(os.listdir(folder))
        for name in names:
            with open(os.path.join(folder, name), "rb") as fh:
                fuzz_one(_cpu, Source(fh.read()))
        print(f"replayed {len(names)} inputs: no crash")
        return
    import atheris

    def test_one(data: bytes) -> None:
        fuzz_one(_cpu, Source(data))

    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
