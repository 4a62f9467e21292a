"""Estimators built from recfast's kernels."""

from recfast.models.autorec import AutoRec
from recfast.models.cnn import ConvNet
from recfast.models.hybrid import ItemFeatureMap, TextCNN, add_items
from recfast.models.mf import MatrixFactorization
from recfast.models.multdae import MultDAE
from recfast.models.sequence import GRU4Rec, MostPopular

__all__ = [
    "AutoRec",
    "ConvNet",
    "GRU4Rec",
    "ItemFeatureMap",
    "MatrixFactorization",
    "MostPopular",
    "MultDAE",
    "TextCNN",
    "add_items",
]
