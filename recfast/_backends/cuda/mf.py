"""``cuda`` matrix factorization: the warp-per-rating SGD kernel of ``recfast._cuda``."""

from __future__ import annotations

from recfast import _cuda  # type: ignore[attr-defined]
from recfast._backends import _device as dev
from recfast._kernel_args import SgdMfArgs


def sgd_mf_epoch(a: SgdMfArgs) -> float:
    p = dev.mf_pointers(a)
    U = a.user_factors
    nb = a.n_blocks if a.block_ptr is not None else 0
    with dev.on_device(U):
        work = dev.empty(U, (_cuda.mf_work_size(nb),), "float64")
        return _cuda.sgd_mf_epoch(
            dev.dtype_name(U), dev.dtype_name(a.rows), p["rows"], p["cols"], p["values"],
            a.values.shape[0], p["user_factors"], p["item_factors"], U.shape[0],
            a.item_factors.shape[0], U.shape[1], p["user_bias"], p["item_bias"], p["user_accum"],
            p["item_accum"], p["order"], 0 if a.order is None else a.order.shape[0],
            p["block_ptr"], nb, a.learning_rate, a.regularization, a.bias_regularization,
            a.global_mean, dev.pointer(work, "work", writable=True), work.shape[0],
            dev.current_stream(U),
        )  # fmt: skip
