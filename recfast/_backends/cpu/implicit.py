"""``cpu`` implicit-feedback kernels: native top-k, iALS half-sweep and BPR epoch."""

from __future__ import annotations

from recfast._backends.cpu._native import cpu
from recfast._kernel_args import AlsArgs, BprArgs, TopkArgs


def topk(a: TopkArgs) -> None:
    cpu.topk(*a)


def als_half_sweep(a: AlsArgs) -> int:
    return cpu.als_half_sweep(*a)


def bpr_epoch(a: BprArgs) -> tuple[float, int, int, int]:
    return cpu.bpr_epoch(*a)
