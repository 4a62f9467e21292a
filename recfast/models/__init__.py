"""Estimators built from recfast's kernels."""

from recfast.models.cnn import ConvNet
from recfast.models.mf import MatrixFactorization

__all__ = ["ConvNet", "MatrixFactorization"]
