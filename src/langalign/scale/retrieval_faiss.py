"""Nearest-neighbour and CSLS retrieval through FAISS, with the numpy scan as fallback.

Same inputs, outputs and scores as :mod:`langalign.evaluation.retrieval`
(cosine of unit-normalised rows; zero rows stay zero), exact by default: a flat
inner-product index (``IndexFlatIP``) searched ``chunk_size`` queries at a time.

CSLS goes through FAISS twice: the neighbourhood terms ``r_C(x)``, ``r_Q(y)`` are
k-NN searches, and the final ranking is one more inner-product search over
augmented vectors: ``[2x, -1] . [y, r_Q(y)] = 2 cos(x, y) - r_Q(y)``, from which
the per-query constant ``r_C(x)`` is subtracted. So every step is exact.
The ratio margin is not an inner product and always takes the numpy path.

``backend="auto"`` uses FAISS when ``faiss`` is importable (``pip install
langalign[faiss]``), numpy otherwise; both give the same answers up to float32
rounding (~1e-6), so near-exact ties may order differently.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_matrix
from ..evaluation import retrieval as _np_retrieval
from ..evaluation.retrieval import DEFAULT_CHUNK, DEFAULT_NEIGHBOURHOOD_K, METHODS, TopK

__all__ = ["faiss_available", "knn", "neighbourhood_means", "retrieve", "BACKENDS"]

BACKENDS = ("auto", "faiss", "numpy")
# Queries per FAISS search call: bounds the (chunk x k) result buffers and FAISS's scratch.
FAISS_CHUNK = 16384


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _resolve(backend: str, method: str = "cosine") -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "faiss":
        if not faiss_available():
            raise ImportError("backend='faiss' needs the faiss package: pip install 'langalign[faiss]' "
                              "(or faiss-cpu); backend='numpy' works without it")
        if method == "margin":
            raise ValueError("the ratio margin is not an inner product; use backend='numpy' or 'auto' for it")
        return "faiss"
    if backend == "auto":
        return "faiss" if method != "margin" and faiss_available() else "numpy"
    return "numpy"


def _normalize(X: np.ndarray) -> np.ndarray:
    # Identical to the numpy path's normalisation, so both see the same unit vectors.
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    out = np.zeros_like(X)
    np.divide(X, norms, out=out, where=norms > 0)
    return out


def _inputs(Q: Any, C: Any) -> tuple[np.ndarray, np.ndarray]:
    Qm = check_matrix(Q, "Q", allow_empty=False)
    Cm = check_matrix(C, "C", dim=Qm.shape[1], allow_empty=False)
    return _normalize(Qm), _normalize(Cm)


def _check_k(k: int, name: str = "k") -> int:
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"{name} must be a positive integer, got {k!r}")
    return int(k)


def _flat_search(base: np.ndarray, queries: np.ndarray, k: int, chunk: int) -> TopK:
    import faiss

    index = faiss.IndexFlatIP(base.shape[1])
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    k = min(k, base.shape[0])
    scores = np.empty((queries.shape[0], k), dtype=np.float32)
    idx = np.empty((queries.shape[0], k), dtype=np.int64)
    for s in range(0, queries.shape[0], chunk):
        D, I = index.search(np.ascontiguousarray(queries[s : s + chunk], dtype=np.float32), k)
        scores[s : s + chunk], idx[s : s + chunk] = D, I
    return TopK(scores, idx)


def knn(Q: Any, C: Any, k: int, backend: str = "auto", chunk_size: int | None = None,
        show_progress: bool | None = None) -> TopK:
    """The k rows of C with the highest cosine to each row of Q, best first (``TopK``)."""
    k = _check_k(k)
    if _resolve(backend) == "numpy":
        return _np_retrieval.knn(Q, C, k, chunk_size=chunk_size or DEFAULT_CHUNK, show_progress=show_progress)
    Qn, Cn = _inputs(Q, C)
    return _flat_search(Cn, Qn, k, int(chunk_size or FAISS_CHUNK))


def _neigh_means(Qn: np.ndarray, Cn: np.ndarray, k: int, chunk: int) -> np.ndarray:
    top = _flat_search(Cn, Qn, k, chunk)
    return top.scores.mean(axis=1, dtype=np.float64).astype(np.float32)


def neighbourhood_means(Q: Any, C: Any, k: int = DEFAULT_NEIGHBOURHOOD_K, backend: str = "auto",
                        chunk_size: int | None = None, show_progress: bool | None = None) -> np.ndarray:
    """Mean cosine of each row of Q to its k nearest rows of C (CSLS's ``r_C``), float32 (n,)."""
    k = _check_k(k)
    if _resolve(backend) == "numpy":
        return _np_retrieval.neighbourhood_means(Q, C, k, chunk_size=chunk_size or DEFAULT_CHUNK,
                                                 show_progress=show_progress)
    Qn, Cn = _inputs(Q, C)
    return _neigh_means(Qn, Cn, k, int(chunk_size or FAISS_CHUNK))


def retrieve(Q: Any, C: Any, k: int = 10, method: str = "cosine", neighbourhood_k: int = DEFAULT_NEIGHBOURHOOD_K,
             backend: str = "auto", chunk_size: int | None = None, show_progress: bool | None = None) -> TopK:
    """Top-k candidates per query under ``method`` ("cosine", "csls", "margin"), on the chosen backend.

    Same contract as :func:`langalign.evaluation.retrieval.retrieve`; ``backend``
    picks FAISS or the numpy scan (see module docstring).
    """
    k = _check_k(k)
    if method not in METHODS:
        raise ValueError(f"unknown retrieval method {method!r}; choose from {', '.join(METHODS)}")
    if _resolve(backend, method) == "numpy":
        return _np_retrieval.retrieve(Q, C, k=k, method=method, neighbourhood_k=neighbourhood_k,
                                      chunk_size=chunk_size or DEFAULT_CHUNK, show_progress=show_progress)
    chunk = int(chunk_size or FAISS_CHUNK)
    Qn, Cn = _inputs(Q, C)
    if method == "cosine":
        return _flat_search(Cn, Qn, k, chunk)
    kk = _check_k(neighbourhood_k, "neighbourhood_k")
    r_q = _neigh_means(Qn, Cn, kk, chunk)  # r_C(x): each query's k nearest candidates
    r_c = _neigh_means(Cn, Qn, kk, chunk)  # r_Q(y): each candidate's k nearest queries
    # [2x, -1] . [y, r_Q(y)] = 2cos(x, y) - r_Q(y); r_C(x) is constant per query.
    Qa = np.hstack([2.0 * Qn, -np.ones((Qn.shape[0], 1), dtype=np.float32)])
    Ca = np.hstack([Cn, r_c[:, None]])
    top = _flat_search(Ca, Qa, k, chunk)
    return TopK((top.scores - r_q[:, None]).astype(np.float32), top.indices)
