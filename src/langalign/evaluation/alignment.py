"""Intrinsic alignment quality: how close mapped vectors land to their targets."""
from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_matrix
from .sts import cosine_pairs

__all__ = ["alignment_scores", "orthogonality_deviation"]


def alignment_scores(mapped: Any, target: Any) -> dict[str, Any]:
    """Mean squared error (averaged over all entries) and mean row-wise cosine.

    ``mse`` is per coordinate, like ``torch.nn.MSELoss``, so it is comparable across
    dimensions; ``mean_cosine`` ignores norm and is usually the more telling number,
    since least-squares mappers shrink norms.
    """
    M = check_matrix(mapped, "mapped", allow_empty=False)
    T = check_matrix(target, "target", dim=M.shape[1])
    if M.shape[0] != T.shape[0]:
        raise ValueError(f"mapped and target must have the same number of rows: {M.shape[0]} != {T.shape[0]}")
    diff = M.astype(np.float64) - T.astype(np.float64)
    return {
        "mse": float(np.mean(diff * diff)),
        "mean_cosine": float(cosine_pairs(M, T).mean()),
        "n": int(M.shape[0]),
    }


def orthogonality_deviation(W: Any) -> float:
    """``||G - I||_F / sqrt(r)`` where G is the smaller Gram matrix of W (r x r).

    For a d_in x d_out matrix with d_in >= d_out, G = W^T W (columns orthonormal?);
    otherwise G = W W^T (rows orthonormal?). Using the smaller side makes a
    semi-orthogonal projection score 0, and dividing by sqrt(r) puts it on a
    per-dimension scale (1.0 means, e.g., W = 0). Square W: both sides agree.
    """
    A = np.asarray(W, dtype=np.float64)
    if A.ndim != 2 or A.size == 0:
        raise ValueError(f"W must be a non-empty 2-D matrix, got shape {A.shape}")
    if not np.isfinite(A).all():
        raise ValueError("W has NaN or inf entries")
    G = A.T @ A if A.shape[0] >= A.shape[1] else A @ A.T
    r = G.shape[0]
    return float(np.linalg.norm(G - np.eye(r), "fro") / np.sqrt(r))
