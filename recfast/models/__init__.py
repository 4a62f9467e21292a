"""Estimators built from recfast's kernels."""

from recfast.models.autorec import AutoRec
from recfast.models.cnn import ConvNet
from recfast.models.hybrid import ItemFeatureMap, TextCNN, add_items
from recfast.models.implicit import BPR, ImplicitALS
from recfast.models.mf import MatrixFactorization
from recfast.models.multdae import MultDAE
from recfast.models.sequence import GRU4Rec, MostPopular

__all__ = [
    "AutoRec",
    "BPR",
    "ConvNet",
    "GRU4Rec",
    "ImplicitALS",
    "ItemFeatureMap",
    "MatrixFactorization",
    "MostPopular",
    "MultDAE",
    "TextCNN",
    "add_items",
]
