"""``cupy`` matrix factorization: recfast/_kernels/mf.cuh compiled by NVRTC (the `cuda`
extension's kernels), launched with the same grid and pre-check as csrc/cuda/mf_cuda.cu."""

from __future__ import annotations

import numpy as np

from recfast._backends import _device as dev
from recfast._backends.cupy import _compile as jit
from recfast._backends.cupy import _sources
from recfast._kernel_args import SgdMfArgs

THREADS = 256  # as csrc/cuda/mf_cuda.cu: 8 warps per block


def sgd_mf_epoch(a: SgdMfArgs) -> float:
    p = dev.mf_pointers(a)
    U, V = a.user_factors, a.item_factors
    dt, ix = dev.dtype_name(U), dev.dtype_name(a.rows)
    k = U.shape[1]
    kpl = _sources.kpl_for(k)
    half = dt == "float16"  # factor storage; the arithmetic (and every other array) is float32
    vec = not half and kpl > 0 and p["user_factors"] % 16 == 0 and p["item_factors"] % 16 == 0
    device = dev.device_id(U)
    kern = jit.kernels("mf", _sources.mf_names(dt, ix, kpl, vec), device)
    T, P, i64 = np.dtype("float32" if half else dt).type, jit.ptr, np.int64
    nnz, nu, ni = a.values.shape[0], U.shape[0], V.shape[0]
    nb = a.n_blocks if a.block_ptr is not None else 0
    with jit.stream_of(U):
        work = dev.empty(U, (5 + nb * nb,), "float64", zero=True)
        w = dev.pointer(work, "work", writable=True)
        # The range check on the device before any update; three counts come to the host.
        g = jit.grid_for(nnz, THREADS, device)
        kern["count_index"]((g,), (THREADS,), (P(p["rows"]), i64(nnz), i64(nu), P(w + 16)))
        kern["count_index"]((g,), (THREADS,), (P(p["cols"]), i64(nnz), i64(ni), P(w + 24)))
        n_order = 0 if a.order is None else a.order.shape[0]
        if n_order:
            go = jit.grid_for(n_order, THREADS, device)
            kern["count_order"]((go,), (THREADS,), (P(p["order"]), i64(n_order), i64(nnz),
                                                     P(w + 32)))  # fmt: skip
        counts = dev.host_values(work[2:5]).view(np.uint64)
        for name, c, bound in zip(("rows", "cols", "order"), counts, ("n_users", "n_items", "nnz")):
            if c:
                size = {"n_users": nu, "n_items": ni, "nnz": nnz}[bound]
                raise ValueError(f"{name} holds {c} entries outside [0, {bound}={size})")
        common = (P(p["user_factors"]), P(p["item_factors"]), i64(k), i64(nu), i64(ni),
                  P(p["user_bias"]), P(p["item_bias"]), P(p["user_accum"]), P(p["item_accum"]),
                  T(a.learning_rate), T(a.regularization), T(a.bias_regularization),
                  T(a.global_mean))  # fmt: skip
        head = (P(p["rows"]), P(p["cols"]), P(p["values"]))
        if nb:
            grid = -(-nb * 32 // THREADS)
            for s in range(nb):
                kern["stratum"]((grid,), (THREADS,), (*head, P(p["block_ptr"]), i64(s), i64(nb),
                                                      *common, P(w + 40), P(w + 8)))  # fmt: skip
            kern["sum"]((1,), (1,), (P(w + 40), i64(nb * nb), P(w)))
        else:
            n = n_order or nnz
            # As csrc/cuda/mf_cuda.cu: warps in flight <= a quarter of the smaller matrix's rows.
            cap = -(-max(32, min(nu, ni) // 4) // (THREADS // 32))
            grid = min(jit.grid_for(n, THREADS // 32, device), cap)
            kern["hogwild"]((grid,), (THREADS,),
                            (*head, P(p["order"]), i64(n), i64(nnz), *common, P(w), P(w + 8)))  # fmt: skip
        out = dev.host_values(work[:2])
    skipped = int(out[1:2].view(np.uint64)[0])
    if skipped:
        raise ValueError(
            f"rows, cols or order changed while the kernel ran: {skipped} ratings had indices "
            "out of range and were skipped"
        )
    return float(out[0])
