"""Estimators built from recfast's kernels."""

from recfast.models.autorec import AutoRec
from recfast.models.cnn import ConvNet
from recfast.models.implicit import BPR, ImplicitALS
from recfast.models.mf import MatrixFactorization
from recfast.models.sequence import GRU4Rec, MostPopular

__all__ = [
    "BPR",
    "AutoRec",
    "ConvNet",
    "GRU4Rec",
    "ImplicitALS",
    "MatrixFactorization",
    "MostPopular",
]
