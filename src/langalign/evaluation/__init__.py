"""Evaluation: classification, STS, bitext retrieval and intrinsic alignment metrics.

Pure numpy/scipy; every result is a JSON-serialisable dict.
"""
from .alignment import alignment_scores, orthogonality_deviation
from .classification import classification_report, cohen_kappa, format_report, mcnemar
from .retention import best_reference, like_for_like_retention
from .retrieval import METHODS, TopK, knn, neighbourhood_means, retrieval_scores, retrieve
from .sts import cosine_pairs, sts_scores

__all__ = [
    "classification_report", "format_report", "mcnemar", "cohen_kappa",
    "sts_scores", "cosine_pairs",
    "knn", "neighbourhood_means", "retrieve", "retrieval_scores", "TopK", "METHODS",
    "like_for_like_retention", "best_reference",
    "alignment_scores", "orthogonality_deviation",
]
