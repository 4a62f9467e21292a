"""Estimators built from recfast's kernels."""

from recfast.models.mf import MatrixFactorization

__all__ = ["MatrixFactorization"]
