"""``cpu`` matrix factorization: the OpenMP SGD kernels and the block layout."""

from __future__ import annotations

from recfast._backends.cpu._native import cpu
from recfast._kernel_args import BlockLayoutArgs, SgdMfArgs


def sgd_mf_epoch(a: SgdMfArgs) -> float:
    return cpu.sgd_mf_epoch(*a)


def mf_block_layout(a: BlockLayoutArgs):
    return cpu.mf_block_layout(*a)
