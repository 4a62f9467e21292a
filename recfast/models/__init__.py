"""Estimators built from recfast's kernels."""

from recfast.models.mf import MatrixFactorization
from recfast.models.sequence import GRU4Rec, MostPopular

__all__ = ["GRU4Rec", "MatrixFactorization", "MostPopular"]
