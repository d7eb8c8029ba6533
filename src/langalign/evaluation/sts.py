"""Semantic textual similarity: correlate predicted pair similarities with gold scores."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats

from .._validation import check_matrix

__all__ = ["sts_scores", "cosine_pairs"]


def cosine_pairs(U: Any, V: Any) -> np.ndarray:
    """Row-wise cosine similarity ``cos(U[i], V[i])`` as a float64 vector.

    A zero row has no direction; its cosine is defined as 0 rather than NaN so one
    degenerate embedding cannot poison a correlation.
    """
    U = check_matrix(U, "U")
    V = check_matrix(V, "V", dim=U.shape[1])
    if U.shape[0] != V.shape[0]:
        raise ValueError(f"U and V must have the same number of rows: {U.shape[0]} != {V.shape[0]}")
    U64 = U.astype(np.float64)
    V64 = V.astype(np.float64)
    dots = np.einsum("ij,ij->i", U64, V64)
    norms = np.linalg.norm(U64, axis=1) * np.linalg.norm(V64, axis=1)
    out = np.zeros_like(dots)
    np.divide(dots, norms, out=out, where=norms > 0)
    return out


def sts_scores(pred_sim: Any, gold: Any) -> dict[str, Any]:
    """Spearman and Pearson correlation between predicted similarities and gold scores.

    Spearman is the standard STS metric (scale-free); Pearson is reported too.
    A constant input has no defined correlation: that value is returned as NaN.
    """
    p = np.asarray(pred_sim, dtype=np.float64).ravel()
    g = np.asarray(gold, dtype=np.float64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"pred_sim and gold must have the same length: {p.size} != {g.size}")
    if p.size < 2:
        raise ValueError(f"need at least 2 pairs to correlate, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ValueError("pred_sim and gold must be finite (no NaN or inf)")
    if np.ptp(p) == 0 or np.ptp(g) == 0:
        return {"spearman": float("nan"), "pearson": float("nan"), "n": int(p.size)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spearman = stats.spearmanr(p, g).statistic
        pearson = stats.pearsonr(p, g).statistic
    return {"spearman": float(spearman), "pearson": float(pearson), "n": int(p.size)}
